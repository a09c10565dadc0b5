"""Rows for ``sort`` and ``top_k`` (funcgrad/rules/sort.py).

Kinks: tied keys (a stable sort keeps their order, and the values sorted along
with them follow), ties inside ``top_k`` (the lower index comes first).
"""

import jax.numpy as jnp
import numpy as np
from jax import lax

from tests.rule_specs import RuleSpec, fixed

TIES = [[1.0, 3.0, 1.0, 2.0, 3.0], [0.0, 0.0, 0.0, -1.0, 0.0]]

# variants of a primitive run in float64 only; its first row also runs in float32
F64 = ("float64",)


def sortable(shape, empty_shape=None):
    """Builder: a normal array ('random'), or an empty one ('empty') when ``empty_shape`` is given."""

    def build(rng, dt, case):
        shp = {"random": shape, "empty": empty_shape}.get(case)
        return None if shp is None else [rng.normal(size=shp).astype(dt)]

    return build


def keys_and_values(key_shape):
    return fixed(lambda rng, dt: [rng.normal(size=key_shape).astype(dt), rng.normal(size=key_shape).astype(dt)])


SPECS = [
    RuleSpec(
        "sort",
        lambda x: jnp.sort(x, axis=0),
        sortable((4, 3), (0, 3)),
        name="sort_axis0",
        kinks=[(np.transpose(TIES),)],
    ),
    RuleSpec(
        "sort",
        lambda x: jnp.sort(x) * jnp.arange(5.0),
        sortable((2, 5)),
        name="sort_last_axis",
        dtypes=F64,
        kinks=[(TIES,)],
    ),
    RuleSpec(
        "sort",
        lambda k, v: lax.sort((k, v), dimension=1, num_keys=1)[1],
        keys_and_values((2, 5)),
        name="sort_values_by_key",
        dtypes=F64,
        kinks=[(TIES, np.arange(10.0).reshape(2, 5))],
    ),
    RuleSpec(
        "sort",
        lambda a, b: lax.sort((a, b), num_keys=2),
        keys_and_values((2, 5)),
        name="sort_two_keys",
        dtypes=F64,
        kinks=[(TIES, [[2.0, 0.0, 1.0, 1.0, 0.0], [3.0, 0.0, 0.0, 1.0, 0.0]])],
    ),
    RuleSpec(
        "sort",
        lambda k, v: lax.sort((k, v), num_keys=1, is_stable=False)[1],
        fixed(lambda rng, dt: [rng.permutation(6).astype(np.int32), rng.normal(size=6).astype(dt)]),
        name="sort_by_int_key",
        dtypes=F64,
    ),
    RuleSpec("top_k", lambda x: lax.top_k(x, 3)[0], sortable((2, 5)), kinks=[(TIES,)]),
    RuleSpec(
        "top_k",
        lambda x: lax.top_k(x, 2, axis=0)[0] * jnp.arange(1.0, 5.0),
        sortable((3, 4)),
        name="top_k_axis0",
        dtypes=F64,
        kinks=[([[1.0, 2.0, 2.0, 0.0], [1.0, 1.0, 2.0, 0.0], [0.0, 2.0, 2.0, 0.0]],)],
    ),
]

SPECS += [
    RuleSpec("approx_top_k", lambda x: lax.approx_max_k(x, 2)[0], sortable((2, 5)), kinks=[(TIES,)]),
    RuleSpec(
        "approx_top_k",
        lambda x: lax.approx_min_k(x, 2, reduction_dimension=0)[0] * jnp.arange(1.0, 5.0),
        sortable((3, 4)),
        name="approx_min_k_axis0",
        dtypes=F64,
        kinks=[([[1.0, 2.0, 2.0, 0.0], [1.0, 1.0, 2.0, 0.0], [0.0, 2.0, 2.0, 0.0]],)],
    ),
]
