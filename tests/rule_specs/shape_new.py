"""Rows added by the fuzzing work: primitives newer JAX releases have (``stack``, ``unstack``, ``tile``:
jax >= 0.10) and the cases the fuzzer found wrong (single-output multi-result primitives, empty products)."""

import jax.numpy as jnp
from jax import lax

from tests.rule_specs import RuleSpec, fixed


def normal(*shape):
    return lambda rng, dt: [rng.normal(size=shape).astype(dt)]


SPECS = [
    RuleSpec(
        "stack",
        lambda a, b: jnp.stack([a, b, a * b], axis=1),
        fixed(lambda rng, dt: [rng.normal(size=(2, 3)).astype(dt), rng.normal(size=(2, 3)).astype(dt)]),
        min_jax=(0, 10),
    ),
    RuleSpec("unstack", lambda x: jnp.unstack(x, axis=1)[1:], fixed(normal(2, 3)), min_jax=(0, 10)),
    RuleSpec("tile", lambda x: jnp.tile(x, (2, 3)), fixed(normal(2, 3)), min_jax=(0, 10)),
    RuleSpec("tile", lambda x: jnp.tile(x, (1, 2, 1)), fixed(normal(2, 0, 3)), min_jax=(0, 10), name="tile_empty"),
]
# multi-result primitives with a single output (their cotangent arrives bare, not in a list): found by fuzzing
SPECS += [
    RuleSpec(
        "optimization_barrier",
        lambda x: lax.optimization_barrier(x) * x,
        fixed(normal(3, 2)),
        name="optimization_barrier_single",
    ),
    RuleSpec("split", lambda x: lax.split(x, (3,), axis=0)[0] * x, fixed(normal(3, 2)), name="split_single"),
    RuleSpec(
        "unstack", lambda x: jnp.unstack(x, axis=1)[0], fixed(normal(3, 1)), min_jax=(0, 10), name="unstack_single"
    ),
]
# found by fuzzing on jax 0.7: a product over axes of total size 0
SPECS += [RuleSpec("reduce_prod", lambda x: jnp.prod(x, axis=2), fixed(normal(1, 3, 0)), name="reduce_prod_empty_axis")]
