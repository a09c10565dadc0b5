"""Programs the fuzzer found funcgrad getting wrong (now fixed), kept as regression tests.

Each entry is a ``Program`` as printed by the fuzzer (``Program.reproducer()``),
minimised by hand, with a note on what was wrong. Each is checked under
``jax.jit`` and eagerly, against JAX, by ``tests/fuzz/compare.py``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import funcgrad
from tests.fuzz.compare import assert_program_matches_jax
from tests.fuzz.programs import Program
from tests.jax_compat import row_unavailable

REGRESSIONS = {
    # optimization_barrier is a multi-result primitive; with ONE operand the reverse sweep passes its
    # cotangent bare, and the rule's list(ct) split the array along its first axis
    # ("the VJP rule of 'optimization_barrier' returned 2 cotangents for 1 inputs"). Same for split/unstack.
    "optimization_barrier_single_operand": Program(
        source="""
def f(a0):
    v1 = a0[0]
    v2 = lax.optimization_barrier(v1)
    v3 = jnp.sort(v2, axis=0, descending=True)
    return v3 * a0[1]
""",
        args="((rand(7, (2, 3), 'float32'), rand(8, (3,), 'float32')),)",
        argnums=0,
        seed=1,
        dtypes=("float32",),
    ),
    "unstack_of_size_one_axis": Program(
        source="""
def f(a0):
    v1 = jnp.unstack(a0, axis=1)[0]
    return jnp.tanh(v1)
""",
        args="(rand(3, (3, 1), 'float64'),)",
        argnums=0,
        seed=2,
        dtypes=("float64",),
    ),
    # jax 0.10 lowers jnp.stack / jnp.tile to new `stack` / `tile` primitives, which had no rule
    # (UnsupportedPrimitiveError for any model using jnp.stack)
    "stack_and_tile_primitives": Program(
        source="""
def f(a0, a1):
    v1 = jnp.stack([a0, a1 * a0], axis=1)
    v2 = jnp.tile(jnp.sin(v1), (2, 1, 3))
    return {'o0': v2, 'o1': v1}
""",
        args="(rand(11, (2, 3), 'float32'), rand(12, (2, 3), 'float32', 'ties'))",
        argnums=(0, 1),
        seed=3,
        dtypes=("float32",),
    ),
    # reduce_prod over axes of total size 0 (but other axes non-empty): the rule reshaped a
    # (kept, 0) array to (kept, 1) ("reshape total size must be unchanged" / an XLA verifier error)
    "prod_over_an_empty_axis": Program(
        source="""
def f(a0):
    v1 = jnp.prod(a0, axis=2, keepdims=True)
    v2 = jnp.prod(jnp.sin(a0), axis=(0, 2))
    return (v1 * 2.0, v2)
""",
        args="(rand(5, (1, 3, 0), 'float32'),)",
        argnums=0,
        seed=4,
        dtypes=("float32",),
    ),
    # eigvalsh of a matrix with repeated eigenvalues: the eigh rule got zeros (not a symbolic zero) for
    # the unused eigenvectors and formed 0 * 1/(w_j - w_i) = 0 * inf = NaN; JAX's answer is finite.
    # Long-run seeds 6843 and 7397 (both minimised); see tests/test_symbolic_zeros.py for the general fix.
    "eigvalsh_at_repeated_eigenvalues": Program(
        source="""
def f(a0):
    v1 = jnp.pad(a0.reshape(-1), ((2, 1),), mode='constant')
    v2 = 4.0 * jnp.eye(4, dtype=jnp.float64) + 0.5 * jnp.tanh(v1[..., :, None] * v1[..., None, :])
    return jnp.linalg.eigvalsh(v2 + jnp.swapaxes(v2, -1, -2))
""",
        args="(rand(52528, (), 'float64', 'normal'),)",
        argnums=0,
        seed=63249,
        dtypes=("float64",),
    ),
    "eigvalsh_of_tied_entries_gathered": Program(
        source="""
def f(a0):
    v1 = a0[1]
    v2 = 2.0 * jnp.eye(2, dtype=jnp.float32) + 0.5 * jnp.tanh(v1[..., :, None] * v1[..., None, :])
    v3 = jnp.linalg.eigvalsh(v2 + jnp.swapaxes(v2, -1, -2))
    return (v3[ints(52662, (4,), 3)], v1, v2)
""",
        args="((None, rand(36505, (3, 2), 'float32', 'ties')),)",
        argnums=0,
        seed=4900,
        dtypes=("float32",),
    ),
}


@pytest.mark.parametrize("jit", [True, False], ids=["jit", "eager"])
@pytest.mark.parametrize("name", sorted(REGRESSIONS))
def test_fuzz_regression(name, jit):
    why = row_unavailable(f"fuzz:{name}")
    if why is not None:  # only on JAX releases too old to compute the reference (tests/jax_compat.py)
        pytest.skip(why)
    assert_program_matches_jax(REGRESSIONS[name], jit=jit)


def test_pad_value_gradient_with_a_constant_operand():
    # found by the fuzzer as an "invalid" program: jax.grad (0.10.2) raises TypeError in lax.pad's
    # transpose when the operand is a constant and only the padding value is differentiated.
    # funcgrad's answer: d/dv sum(pad(c, v)) = number of padded entries (here 1 + 2 + 1 interior).
    c = jnp.arange(2.0)
    f = lambda v: jnp.sum(lax.pad(c, v, [(1, 2, 1)]))
    np.testing.assert_allclose(funcgrad.grad(f)(0.5), 4.0)
    # JAX agrees once the operand is differentiated too
    g_jax = jax.grad(lambda v, c: jnp.sum(lax.pad(c, v, [(1, 2, 1)])), argnums=(0, 1))(0.5, c)
    np.testing.assert_allclose(funcgrad.grad(f)(0.5), g_jax[0])


def test_clamp_gradient_for_rank0_bounds():
    # found by the fuzzer as an "invalid" program: jax.grad (0.10.2) raises "select cases must have the
    # same shapes" for lax.clamp with rank-0 bounds around an array. funcgrad sums the bound's cotangent
    # over the entries that were clamped to it; JAX agrees when the bounds are broadcast first.
    lo, x = jnp.float32(0.0), jnp.array([0.5, -1.0, 2.0, 0.2])
    f = lambda lo, x: jnp.sum(lax.clamp(lo, x, lo + 1.0) * jnp.arange(1.0, 5.0))
    g_lo, g_x = funcgrad.grad(f, (0, 1))(lo, x)
    np.testing.assert_allclose(g_lo, 2.0 + 3.0)  # x[1] clamped to lo, x[2] clamped to lo + 1
    np.testing.assert_allclose(g_x, [1.0, 0.0, 0.0, 4.0])
    f_b = lambda lo, x: f(jnp.broadcast_to(lo, x.shape), x)
    want_lo, want_x = jax.grad(f_b, (0, 1))(lo, x)
    np.testing.assert_allclose(g_lo, want_lo)
    np.testing.assert_allclose(g_x, want_x)
