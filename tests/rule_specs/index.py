"""Rows for indexing primitives (funcgrad/rules/index.py): dynamic slices, gather, scatters.

Kinks: duplicate indices (cotangents add up / the winning update takes it),
out-of-bounds indices under each mode, ties in scatter-min/max.
"""

import jax.numpy as jnp
import numpy as np
from jax import lax

from tests.rule_specs import RuleSpec, fixed

DUP = np.array([0, 2, 2, 3])  # a repeated row
OOB = np.array([1, 5, -1, 2])  # 5 is past the end; -1 wraps in jnp indexing

# variants of a primitive run in float64 only; its first row also runs in float32
F64 = ("float64",)


def with_idx(x_shape, idx, *extra_shapes):
    """Builder: a normal operand of ``x_shape``, fixed integer ``idx``, then normal arrays of ``extra_shapes``."""
    return fixed(
        lambda rng, dt: [
            rng.normal(size=x_shape).astype(dt),
            idx,
            *(rng.normal(size=s).astype(dt) for s in extra_shapes),
        ]
    )


def scatter_args(x_shape, idx, u_shape):
    """Builder for ``.at[idx].op(u)``: 'broadcast' passes a rank-0 update, 'empty' an empty index."""

    def build(rng, dt, case):
        if case == "random":
            return [rng.normal(size=x_shape).astype(dt), idx, rng.normal(size=u_shape).astype(dt)]
        if case == "broadcast":
            return [rng.normal(size=x_shape).astype(dt), idx, np.asarray(rng.normal(), dt)]
        return None

    return build


# lax-level dimension numbers for rows on empty inputs (jnp indexing skips the primitive when a size is 0)
ROWS_GATHER = lax.GatherDimensionNumbers(offset_dims=(1,), collapsed_slice_dims=(0,), start_index_map=(0,))
ROWS_SCATTER = lax.ScatterDimensionNumbers(
    update_window_dims=(1,), inserted_window_dims=(0,), scatter_dims_to_operand_dims=(0,)
)


def positive(x_shape, idx, u_shape):
    return fixed(
        lambda rng, dt: [rng.uniform(0.5, 2, x_shape).astype(dt), idx, rng.uniform(0.5, 2, u_shape).astype(dt)]
    )


SPECS = [
    # dynamic slices: starts are clamped so the window fits
    RuleSpec(
        "dynamic_slice",
        lambda x, i: lax.dynamic_slice(x, (i, np.int32(1)), (2, 3)),
        with_idx((4, 5), np.int32(1)),
        kinks=[(np.ones((4, 5)), np.int32(7))],
    ),
    RuleSpec(
        "dynamic_slice",
        lambda x: x[jnp.argmax(x)] * x[jnp.argmin(x)],
        fixed(lambda rng, dt: [rng.normal(size=(5,)).astype(dt)]),
        name="index_at_argmax",
        dtypes=F64,
        kinks=[([1.0, 3.0, 3.0, -1.0],)],
    ),
    RuleSpec(
        "dynamic_update_slice",
        lambda x, u, i: lax.dynamic_update_slice(x, u, (np.int32(1), i)),
        fixed(lambda rng, dt: [rng.normal(size=(4, 5)).astype(dt), rng.normal(size=(2, 3)).astype(dt), np.int32(1)]),
        kinks=[(np.ones((4, 5)), np.full((2, 3), 2.0), np.int32(9))],
    ),
    # gather, as NumPy-style indexing produces it
    RuleSpec("gather", lambda x, i: x[i], with_idx((5, 3), DUP), name="gather_rows_dup"),
    RuleSpec("gather", lambda x, i: x[:, i], with_idx((3, 5), OOB), name="gather_cols", dtypes=F64),
    RuleSpec(
        "gather", lambda x, i: x[i], with_idx((5,), np.array([[0, 4], [4, 4]])), name="gather_2d_index", dtypes=F64
    ),
    RuleSpec(
        "gather",
        lambda x, i, j: x[i, 1:3, j],
        fixed(lambda rng, dt: [rng.normal(size=(4, 3, 5)).astype(dt), DUP[:3], np.array([4, 0, 4])]),
        name="gather_fancy_mixed",
        dtypes=F64,
    ),
    RuleSpec(
        "gather",
        lambda x, i: jnp.take(x, i, axis=1, mode="clip"),
        with_idx((3, 4), np.array([-3, 1, 9, 9])),
        name="gather_take_clip",
        dtypes=F64,
    ),
    RuleSpec(
        "gather",
        lambda x, i: jnp.take(x, i, axis=0, mode="fill", fill_value=1.5),
        with_idx((4,), np.array([3, 4, -9, 0, 3])),
        name="gather_take_fill",
        dtypes=F64,
    ),
    RuleSpec(
        "gather",
        lambda x, i: x.at[i].get(mode="drop", fill_value=0.0),
        with_idx((4, 2), np.array([0, 7, 0])),
        name="gather_at_get_drop",
        dtypes=F64,
    ),
    RuleSpec(
        "gather",
        lambda x: jnp.take_along_axis(x, jnp.argsort(x, axis=1), axis=1) * jnp.arange(4.0),
        fixed(lambda rng, dt: [rng.normal(size=(3, 4)).astype(dt)]),
        name="gather_take_along_argsort",
        dtypes=F64,
        kinks=[([[1.0, 1.0, 0.0, 1.0], [2.0, 2.0, 2.0, 2.0]],)],
    ),
    RuleSpec(
        "gather",
        lambda x, i: lax.gather(x, i, ROWS_GATHER, (1, 0), mode="clip"),
        with_idx((5, 0), DUP[:, None]),
        name="gather_empty",
        dtypes=F64,
    ),
    # scatter-add / scatter-sub: duplicates accumulate; out-of-bounds updates are dropped (or clamped)
    RuleSpec("scatter-add", lambda x, i, u: x.at[i].add(u), scatter_args((5, 2), DUP, (4, 2)), name="scatter_add_dup"),
    RuleSpec(
        "scatter-add",
        lambda x, i, u: x.at[i].add(u),
        scatter_args((4, 2), np.array([0, 6, -1, 3]), (4, 2)),
        name="scatter_add_oob_drop",
        dtypes=F64,
    ),
    RuleSpec(
        "scatter-add",
        lambda x, i, u: x.at[:, i].add(u, mode="clip"),
        with_idx((2, 4), np.array([9, -9, 1]), (2, 3)),
        name="scatter_add_clip",
        dtypes=F64,
    ),
    RuleSpec(
        "scatter-add",
        lambda x, i, u: lax.scatter_add(x, i, u, ROWS_SCATTER),
        with_idx((5, 2), DUP[:0, None], (0, 2)),
        name="scatter_add_empty",
        dtypes=F64,
    ),
    RuleSpec("scatter-sub", lambda x, i, u: x.at[i].subtract(u), scatter_args((5,), DUP, (4,))),
    # scatter (.set): the winning update takes the cotangent, overwritten operand entries get none
    RuleSpec("scatter", lambda x, i, u: x.at[i].set(u), scatter_args((5, 2), DUP, (4, 2)), name="scatter_set_dup"),
    RuleSpec(
        "scatter",
        lambda x, i, u: x.at[i].set(u, unique_indices=True),
        with_idx((5,), np.array([4, 0, 2]), (3,)),
        name="scatter_set_unique",
        dtypes=F64,
    ),
    RuleSpec(
        "scatter",
        lambda x, i, u: x.at[i].set(u, mode="clip"),
        with_idx((4, 3), np.array([7, 1, -5, 1]), (4, 3)),
        name="scatter_set_clip",
        dtypes=F64,
    ),
    RuleSpec(
        "scatter",
        lambda x, i, u: x.at[i].set(u),
        with_idx((4,), np.array([2, 9, 0]), (3,)),
        name="scatter_set_oob",
        dtypes=F64,
    ),
    RuleSpec(
        "scatter",
        lambda x, i, u: lax.scatter(x, i, u, ROWS_SCATTER),
        with_idx((5, 0), DUP[:, None], (4, 0)),
        name="scatter_set_empty",
        dtypes=F64,
    ),
    # scatter-mul: JAX differentiates the updates only for unique indices; the operand always
    RuleSpec(
        "scatter-mul",
        lambda x, i, u: x.at[i].multiply(u, unique_indices=True),
        positive((5, 2), np.array([3, 0, 4]), (3, 2)),
        name="scatter_mul_unique",
        kinks=[(np.ones((4, 2)), np.array([1, 2]), [[0.0, 2.0], [0.0, 0.0]])],
    ),
    RuleSpec(
        "scatter-mul",
        lambda x, i, u: x.at[i].multiply(u),
        positive((5,), DUP, (4,)),
        argnums=(0,),
        name="scatter_mul_dup_operand",
        dtypes=F64,
    ),
    # scatter-min/max: ties share the cotangent evenly among operand and updates attaining the result
    RuleSpec(
        "scatter-max",
        lambda x, i, u: x.at[i].max(u),
        with_idx((5, 2), DUP, (4, 2)),
        name="scatter_max",
        kinks=[([1.0, 2.0, 0.0, 5.0], DUP, [1.0, 3.0, 3.0, 5.0]), ([1.0, 2.0, 3.0, 0.0], DUP, [0.0, 3.0, 3.0, -1.0])],
    ),
    RuleSpec(
        "scatter-min",
        lambda x, i, u: x.at[i].min(u),
        with_idx((5,), np.array([0, 2, 2, 9]), (4,)),
        name="scatter_min",
        kinks=[([1.0, 2.0, 0.0, 5.0], DUP, [1.0, 0.0, 0.0, 5.0])],
    ),
]
