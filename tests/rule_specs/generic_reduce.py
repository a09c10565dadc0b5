"""Rows for the generic ``reduce`` (funcgrad/rules/generic_reduce.py): ``lax.reduce`` with a custom
computation, one or several operands, one or several axes, odd and even lengths. The reducers are
associative with the init values as identities, as XLA requires (JAX's ``jax.vjp`` computes the primal
through its own tree of combines, so other reducers would make even the forward values differ).

Kinks: ties in a max-like reducer (JAX's tree of pairwise combines decides which entry gets the gradient).
"""

import jax.numpy as jnp
import numpy as np
from jax import lax

from tests.rule_specs import RuleSpec

# variants of the primitive run in float64 only; its first row also runs in float32
F64 = ("float64",)


def operands(shape, count=1, empty_shape=None):
    """Builder: ``count`` uniform arrays of ``shape`` ('random') or of ``empty_shape`` ('empty', when given)."""

    def build(rng, dt, case):
        shp = {"random": shape, "empty": empty_shape}.get(case)
        return None if shp is None else [rng.uniform(0.5, 1.5, shp).astype(dt) for _ in range(count)]

    return build


def _mul_add(a, b):
    # (product, sum) of pairs: an associative reducer of two operands
    return a[0] * b[0], a[1] + b[1]


def _max_with_value(a, b):
    # keeps the value paired with the larger key (ties keep the first): an argmax-like reducer
    pick = a[0] >= b[0]
    return jnp.where(pick, a[0], b[0]), jnp.where(pick, a[1], b[1])


def _two_ops(x, y):
    return lax.reduce((x, y), (np.ones((), x.dtype), np.zeros((), y.dtype)), _mul_add, (1,))


def _value_at_max(k, v):
    init = (np.asarray(-np.inf, k.dtype), np.zeros((), v.dtype))
    return lax.reduce((k, v), init, _max_with_value, (0,))[1]


SPECS = [
    RuleSpec("reduce", _two_ops, operands((2, 5), 2, empty_shape=(2, 0))),
    RuleSpec(
        "reduce",
        lambda x: lax.reduce(x, np.asarray(-np.inf, x.dtype), jnp.logaddexp, (0, 2)),
        operands((3, 2, 2)),
        name="reduce_logaddexp_two_axes",
        dtypes=F64,
    ),
    RuleSpec(
        "reduce",
        _value_at_max,
        operands((5, 3), 2),
        name="reduce_argmax_like",
        dtypes=F64,
        kinks=[
            ([[1.0, 2.0, 0.0], [1.0, 2.0, 3.0], [1.0, 0.0, 3.0], [0.0, 2.0, 3.0], [1.0, 2.0, 3.0]], np.ones((5, 3)))
        ],
    ),
]
