"""Rows for cumulative reductions (funcgrad/rules/cumulative.py), forward and reverse.

Kinks: ties in ``cummax``/``cummin`` (shared as JAX's prefix-scan tree shares
them), zeros in ``cumprod``, equal entries in ``cumlogsumexp``.
"""

import jax.numpy as jnp
import numpy as np
from jax import lax

from tests.rule_specs import RuleSpec

# variants of a primitive run in float64 only; its first row also runs in float32
F64 = ("float64",)


def along(shape=(2, 5), empty_shape=None, low=-2.0, high=2.0):
    """Builder: uniform values of ``shape`` ('random') or of ``empty_shape`` ('empty', when given).

    The rows share one shape: JAX compiles each small op of its prefix scan once per shape.
    """

    def build(rng, dt, case):
        shp = {"random": shape, "empty": empty_shape}.get(case)
        return None if shp is None else [rng.uniform(low, high, shp).astype(dt)]

    return build


TIES = [[1.0, 1.0, 1.0, 1.0, 1.0], [3.0, 1.0, 3.0, 2.0, 3.0]]
ZEROS = [[2.0, 0.0, 3.0, 0.0, -1.0], [0.0, 1.5, 2.0, 0.5, 1.0]]

SPECS = [
    RuleSpec("cumsum", lambda x: jnp.cumsum(x, axis=1), along(empty_shape=(2, 0))),
    RuleSpec("cumsum", lambda x: lax.cumsum(x, axis=0, reverse=True), along(), name="cumsum_reverse", dtypes=F64),
    RuleSpec("cumprod", lambda x: jnp.cumprod(x, axis=1), along(empty_shape=(0, 5)), kinks=[(ZEROS,)]),
    RuleSpec(
        "cumprod",
        lambda x: lax.cumprod(x, axis=1, reverse=True),
        along(),
        name="cumprod_reverse",
        dtypes=F64,
        kinks=[(ZEROS,)],
    ),
    RuleSpec("cummax", lambda x: lax.cummax(x, axis=1), along(), kinks=[(TIES,), (np.ones((2, 5)),)]),
    RuleSpec(
        "cummax",
        lambda x: lax.cummax(x, axis=1, reverse=True),
        along(),
        name="cummax_reverse",
        dtypes=F64,
        kinks=[(TIES,)],
    ),
    RuleSpec("cummin", lambda x: lax.cummin(x, axis=1), along(), kinks=[(TIES,)]),
    RuleSpec(
        "cummin",
        lambda x: lax.cummin(x, axis=1, reverse=True),
        along(),
        name="cummin_reverse",
        dtypes=F64,
        kinks=[([[0.0, 2.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0]],)],
    ),
    RuleSpec(
        "cumlogsumexp",
        lambda x: lax.cumlogsumexp(x, axis=1),
        along(low=-5.0, high=5.0),
        kinks=[(TIES,), ([[60.0, -60.0, 60.0, 0.0, 0.0], TIES[1]],)],
    ),
    RuleSpec(
        "cumlogsumexp",
        lambda x: lax.cumlogsumexp(x, axis=1, reverse=True),
        along(),
        name="cumlogsumexp_reverse",
        dtypes=F64,
    ),
]
