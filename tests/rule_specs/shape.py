"""Rows for shape, dtype, reduction and contraction primitives."""

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from tests.extended_dtypes import MAX_GRAD32
from tests.rule_specs import RuleSpec, fixed, unary


def normal(*shape):
    return lambda rng, dt: [rng.normal(size=shape).astype(dt)]


SPECS = [
    RuleSpec("reshape", lambda x: lax.reshape(x, (4, 3)), fixed(normal(3, 4))),
    RuleSpec("reshape", lambda x: lax.reshape(x, (0, 2)), fixed(normal(2, 0)), name="reshape_empty"),
    RuleSpec("reshape", lambda x: jnp.reshape(x.T, (12,)), fixed(normal(3, 4)), name="reshape_of_transpose"),
    RuleSpec(
        "reshape", lambda x: lax.reshape(x, (2, 6), dimensions=(1, 0)), fixed(normal(3, 4)), name="reshape_dimensions"
    ),
    RuleSpec("transpose", lambda x: lax.transpose(x, (2, 0, 1)), fixed(normal(2, 3, 4))),
    RuleSpec("broadcast_in_dim", lambda x: lax.broadcast_in_dim(x, (2, 3, 4), (1, 2)), fixed(normal(3, 1))),
    RuleSpec(
        "broadcast_in_dim",
        lambda x: lax.broadcast_in_dim(x, (2, 3), ()),
        name="broadcast_scalar",
        args=lambda rng, dt, case: [np.asarray(rng.normal(), dt)] if case in ("random", "scalar") else None,
    ),
    RuleSpec("squeeze", lambda x: lax.squeeze(x, (0, 2)), fixed(normal(1, 3, 1))),
    RuleSpec(
        "convert_element_type",
        lambda x: lax.convert_element_type(x, jnp.float16).astype(x.dtype) * 2,
        unary(),
        rtol=1e-2,
        atol=1e-2,
    ),
    RuleSpec(
        "convert_element_type",
        lambda x: x * lax.convert_element_type(x, jnp.int32).astype(x.dtype),
        unary(),
        name="convert_to_int",
    ),
    # one cast on the path to the output: in the round trip above a sign error in the rule cancels out
    RuleSpec("convert_element_type", lambda x: lax.convert_element_type(x, jnp.float16), unary(), name="convert_once"),
    RuleSpec("copy", lambda x: lax.copy_p.bind(x), unary()),
    RuleSpec("reduce_precision", lambda x: lax.reduce_precision(x, exponent_bits=5, mantissa_bits=10), unary()),
    RuleSpec("rev", lambda x: lax.rev(x, (0,)), fixed(normal(3, 4))),
    RuleSpec("slice", lambda x: lax.slice(x, (1, 0), (3, 4), (1, 2)), fixed(normal(4, 5))),
    RuleSpec("slice", lambda x: x[1:3, ::3], fixed(normal(4, 7)), name="slice_strided"),
    RuleSpec(
        "pad",
        lambda x, v: lax.pad(x, v, [(1, 2, 1), (-1, 0, 0)]),
        fixed(lambda rng, dt: [rng.normal(size=(3, 4)).astype(dt), np.asarray(0.5, dt)]),
    ),
    RuleSpec(
        "concatenate",
        lambda x, y: lax.concatenate([x, y, x], 1),
        fixed(lambda rng, dt: [rng.normal(size=(2, 3)).astype(dt), rng.normal(size=(2, 1)).astype(dt)]),
    ),
    # operands of one shape: cotangents cut at the wrong offsets would still have the right shapes
    RuleSpec(
        "concatenate",
        lambda x, y: lax.concatenate([x, y], 0),
        fixed(lambda rng, dt: [rng.normal(size=(2, 3)).astype(dt), rng.normal(size=(2, 3)).astype(dt)]),
        name="concatenate_same_shapes",
    ),
    RuleSpec("split", lambda x: lax.split(x, (1, 3), axis=1)[1] * 2, fixed(normal(2, 4))),
    RuleSpec(
        "optimization_barrier",
        lambda x, y: lax.optimization_barrier((x, y))[0] * y,
        fixed(lambda rng, dt: [rng.normal(size=(3,)).astype(dt)] * 2),
    ),
    # reductions
]

# primitives newer JAX releases have (stack, unstack, tile: jax >= 0.10) and the cases the fuzzer found
# wrong (single-output multi-result primitives)
SPECS += [
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


# casts to and from an extended dtype (tests/extended_dtypes.py: float32 values that accumulate by
# max, as Flax's fp8 metadata). to_edtype: its cotangent comes back through a custom_vjp whose bwd
# hands one of the extended dtype; from_edtype: JAX's own transpose fails, so the reference is the
# same function without the round trip.
@jax.custom_vjp
def _through_max_grad(x, h):
    return x * 2.0


_through_max_grad.defvjp(
    lambda x, h: (x * 2.0, x),
    lambda x, g: (g * 2.0, lax.convert_element_type(g * x, MAX_GRAD32)),
)


SPECS += [
    RuleSpec(
        "to_edtype",
        lambda x: _through_max_grad(jnp.sin(x), lax.convert_element_type(x, MAX_GRAD32)),
        unary(),
        dtypes=("float32",),
    ),
    RuleSpec(
        "from_edtype",
        lambda x: lax.convert_element_type(lax.convert_element_type(x, MAX_GRAD32), jnp.float32) * jnp.sin(x),
        unary(),
        dtypes=("float32",),
        reference=lambda x: x * jnp.sin(x),
    ),
]
