"""Rows for ``ragged_dot_general`` (funcgrad/rules/linear.py), and ``dot_general``'s.

The group sizes are integer inputs (not differentiated); a group may be empty,
and the sizes may cover fewer rows than ``lhs`` has (the rest get zeros).
"""

import jax.numpy as jnp
import numpy as np
from jax import lax

from tests.rule_specs import RuleSpec, fixed

# variants of the primitive run in float64 only; its first row also runs in float32
F64 = ("float64",)


def ragged(m, k, n, sizes):
    def build(rng, dt):
        g = len(sizes)
        return [rng.normal(size=(m, k)).astype(dt), rng.normal(size=(g, k, n)).astype(dt), np.asarray(sizes, np.int32)]

    return fixed(build)


# out[b, m, n] = sum_k x[b, m, k] y[b, k, g(m), n], ragged along m (dimension 1 of lhs)
BATCHED = lax.RaggedDotDimensionNumbers(
    dot_dimension_numbers=(([2], [1]), ([0], [0])), lhs_ragged_dimensions=[1], rhs_group_dimensions=[2]
)


def batched(rng, dt):
    x, y = rng.normal(size=(2, 5, 3)).astype(dt), rng.normal(size=(2, 3, 2, 4)).astype(dt)
    return [x, y, np.asarray([[2, 3], [4, 1]], np.int32)]


SPECS = [
    RuleSpec(
        "ragged_dot_general", lambda x, y, gs: lax.ragged_dot(x, y, gs), ragged(6, 3, 4, [2, 0, 4]), argnums=(0, 1)
    ),
    RuleSpec(
        "ragged_dot_general",
        lambda x, y, gs: lax.ragged_dot(x, y, gs),
        ragged(5, 2, 3, [1, 2]),
        name="ragged_dot_partial_groups",
        argnums=(0, 1),
        dtypes=F64,
    ),
    RuleSpec(
        "ragged_dot_general",
        lambda x, y, gs: lax.ragged_dot_general(x, y, gs, BATCHED),
        fixed(batched),
        name="ragged_dot_batched",
        argnums=(0, 1),
        dtypes=F64,
    ),
]

# dot_general: matrix, batched, vector and mixed-precision products
SPECS += [
    RuleSpec(
        "dot_general",
        lambda a, b: a @ b,
        fixed(lambda rng, dt: [rng.normal(size=(3, 4)).astype(dt), rng.normal(size=(4, 5)).astype(dt)]),
    ),
    RuleSpec(
        "dot_general",
        lambda a, b: jnp.einsum("bij,bjk->bik", a, b),
        fixed(lambda rng, dt: [rng.normal(size=(2, 3, 4)).astype(dt), rng.normal(size=(2, 4, 5)).astype(dt)]),
        name="dot_batched",
    ),
    RuleSpec(
        "dot_general",
        lambda a, b: lax.dot_general(a, b, (((0, 2), (3, 1)), ((1,), (0,)))),
        fixed(lambda rng, dt: [rng.normal(size=(2, 5, 3)).astype(dt), rng.normal(size=(5, 3, 4, 2)).astype(dt)]),
        name="dot_unsorted_contract",
    ),
    RuleSpec(
        "dot_general",
        lambda a, b: a @ b,
        fixed(lambda rng, dt: [rng.normal(size=(4,)).astype(dt), rng.normal(size=(4,)).astype(dt)]),
        name="dot_vector",
    ),
]
