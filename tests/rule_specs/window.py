"""Rows for windowed reductions (funcgrad/rules/window.py): sum/max/min pooling and JAX's pooling-gradient helpers.

Kinks: ties inside a max/min window (the first maximum in row-major window order
takes the whole cotangent), windows made only of padding and base-dilation holes.
"""

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from tests.rule_specs import RuleSpec, fixed

# variants of a primitive run in float64 only; its first row also runs in float32
F64 = ("float64",)


def normal(*shape):
    return fixed(lambda rng, dt: [rng.normal(size=shape).astype(dt)])


def pool(init, op, window, strides, padding="VALID", base=None, dilation=None):
    return lambda x: lax.reduce_window(x, init, op, window, strides, padding, base, dilation)


def empty_or(shape, empty_shape):
    """Builder: a normal array of ``shape`` ('random') or of ``empty_shape`` ('empty')."""

    def build(rng, dt, case):
        shp = {"random": shape, "empty": empty_shape}.get(case)
        return None if shp is None else [rng.normal(size=shp).astype(dt)]

    return build


TIES = np.array([[1.0, 1.0, 0.0, 2.0], [1.0, 0.0, 2.0, 2.0], [3.0, 3.0, 3.0, 3.0]])
max_pool = pool(-jnp.inf, lax.max, (2, 2), (1, 1))

SPECS = [
    # sum pooling (avg_pool divides afterwards)
    RuleSpec(
        "reduce_window_sum",
        pool(0.0, lax.add, (1, 2, 2, 1), (1, 2, 2, 1), "SAME"),
        empty_or((1, 5, 5, 2), (0, 3, 3, 1)),
        name="sum_pool_same",
    ),
    RuleSpec(
        "reduce_window_sum",
        pool(0.0, lax.add, (2, 2), (1, 2), ((1, 0), (2, 1)), base=(2, 1), dilation=(1, 2)),
        normal(3, 4),
        name="sum_pool_dilated",
        dtypes=F64,
    ),
    RuleSpec(
        "reduce_window_sum",
        lambda x: jnp.mean(x) + pool(0.0, lax.add, (3,), (2,), ((-1, 1),))(x),
        normal(6),
        name="sum_pool_negative_pad",
        dtypes=F64,
    ),
    # max/min pooling
    RuleSpec("reduce_window_max", max_pool, normal(3, 4), name="max_pool_ties", kinks=[(TIES,), (np.zeros((3, 4)),)]),
    RuleSpec(
        "reduce_window_max",
        pool(-jnp.inf, lax.max, (1, 3, 3, 1), (1, 2, 2, 1), "SAME"),
        empty_or((2, 5, 4, 1), (0, 3, 3, 1)),
        name="max_pool_nhwc_same",
        dtypes=F64,
        kinks=[(np.ones((1, 4, 4, 1)),)],
    ),
    RuleSpec(
        "reduce_window_max",
        pool(-jnp.inf, lax.max, (2, 3), (2, 1), ((1, 1), (0, 2)), base=(2, 1)),
        normal(3, 4),
        name="max_pool_base_dilated",
        dtypes=F64,
        kinks=[(TIES,)],
    ),
    RuleSpec(
        "reduce_window_max",
        pool(-jnp.inf, lax.max, (2, 2, 2), (1, 1, 2)),
        normal(3, 3, 4),
        name="max_pool_3d",
        dtypes=F64,
    ),
    # windows that tile the operand (window = stride, VALID): 2x2 pooling with stride 2, an odd size
    # leaving entries in no window; funcgrad's rule routes the cotangent by one select there
    RuleSpec(
        "reduce_window_max",
        pool(-jnp.inf, lax.max, (1, 1, 2, 2), (1, 1, 2, 2)),
        normal(2, 3, 7, 6),
        name="max_pool_tiled",
        kinks=[(TIES.reshape(1, 1, 3, 4),), (np.ones((1, 2, 4, 5)),)],
    ),
    RuleSpec(
        "reduce_window_min",
        pool(jnp.inf, lax.min, (3, 2), (3, 2)),
        normal(7, 4),
        name="min_pool_tiled",
        dtypes=F64,
        kinks=[(np.zeros((6, 4)),)],
    ),
    RuleSpec(
        "reduce_window_min",
        pool(jnp.inf, lax.min, (2, 2), (1, 2), ((0, 1), (1, 0))),
        normal(3, 4),
        name="min_pool",
        kinks=[(TIES,)],
    ),
    # the helpers in JAX's own pooling gradient (VJP) and JVP, so funcgrad can differentiate through jax.grad / jax.jvp
    RuleSpec(
        "select_and_scatter_add",
        lambda x, s: jax.vjp(max_pool, x)[1](s)[0],
        fixed(lambda rng, dt: [rng.normal(size=(3, 4)).astype(dt), rng.normal(size=(2, 3)).astype(dt)]),
        kinks=[(TIES, np.arange(6.0).reshape(2, 3))],
    ),
    # (no ties in padded windows here: XLA:CPU's select_and_gather_add may break those in another order)
    RuleSpec(
        "select_and_scatter_add",
        lambda x: jax.grad(lambda y: jnp.sum(pool(jnp.inf, lax.min, (2, 2), (1, 2), ((0, 0), (0, 1)))(y) ** 2))(x),
        normal(3, 4),
        name="select_and_scatter_add_min_padded",
        dtypes=F64,
    ),
    RuleSpec(
        "select_and_scatter_add",
        lambda x: jax.grad(lambda y: jnp.sum(pool(jnp.inf, lax.min, (2, 2), (1, 1))(y) ** 2))(x),
        normal(3, 4),
        name="select_and_scatter_add_min",
        dtypes=F64,
        kinks=[(TIES,)],
    ),
    RuleSpec(
        "select_and_gather_add",
        lambda x, t: jax.jvp(max_pool, (x,), (t,))[1],
        fixed(lambda rng, dt: [rng.normal(size=(3, 4)).astype(dt), rng.normal(size=(3, 4)).astype(dt)]),
        kinks=[(TIES, np.arange(12.0).reshape(3, 4))],
    ),
    RuleSpec(
        "select_and_gather_add",
        lambda x, t: jax.jvp(pool(-jnp.inf, lax.max, (2, 2), (2, 1), ((0, 1), (1, 1)), base=(1, 2)), (x,), (t,))[1],
        fixed(lambda rng, dt: [rng.normal(size=(3, 3)).astype(dt), rng.normal(size=(3, 3)).astype(dt)]),
        name="select_and_gather_add_dilated",
        dtypes=F64,
        kinks=[(TIES[:, :3], np.arange(9.0).reshape(3, 3))],
    ),
]
