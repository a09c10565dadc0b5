"""Rows for funcgrad/rules/reduce.py: sums, max/min (ties split as in JAX) and products, empty axes included."""

import jax.numpy as jnp

from tests.rule_specs import RuleSpec, fixed, unary


def normal(*shape):
    return lambda rng, dt: [rng.normal(size=shape).astype(dt)]


SPECS = [
    RuleSpec("reduce_sum", lambda x: jnp.sum(x, axis=1), fixed(normal(3, 4))),
    RuleSpec("reduce_sum", lambda x: jnp.sum(x), unary(), name="reduce_sum_all"),
    RuleSpec(
        "reduce_max", lambda x: jnp.max(x, axis=0), fixed(normal(4, 3)), kinks=[([[1.0, 2.0], [1.0, 0.0], [0.5, 2.0]],)]
    ),
    RuleSpec(
        "reduce_min", lambda x: jnp.min(x, axis=(0, 1)), fixed(normal(4, 3)), kinks=[([[1.0, -2.0], [-2.0, 0.0]],)]
    ),
    RuleSpec(
        "reduce_prod", lambda x: jnp.prod(x, axis=1), fixed(normal(3, 4)), kinks=[([[0.0, 2.0, 3.0], [0.0, 0.0, 1.0]],)]
    ),
    # contractions
    RuleSpec("reduce_prod", lambda x: jnp.prod(x, axis=2), fixed(normal(1, 3, 0)), name="reduce_prod_empty_axis"),
]
