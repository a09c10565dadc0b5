"""Unused outputs of several-output primitives are symbolic zeros, as in JAX.

Each row uses one output of a several-output primitive and leaves another unused, at a point where
the unused output's derivative is infinite (sqrt at 0, eigenvector derivatives at repeated
eigenvalues). JAX's transpose never forms 0 * inf there and returns a finite gradient; funcgrad
once filled zeros in for the unused output and returned NaN (found by the fuzzer: ``eigvalsh`` of a
matrix with repeated eigenvalues). Every rule registered with ``symbolic_zeros=True`` must have a
row here whose graph contains its primitive.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import funcgrad
from funcgrad.checking.check_grads import find_first_mismatch
from funcgrad.rules.registry import symbolic_zero_rules
from tests.conftest import x64
from tests.jax_compat import JAX_VERSION
from tests.rule_specs.custom import custom_vjp3


@jax.custom_jvp
def _sqrt_and_double(x):
    return jnp.sqrt(x), 2 * x


@_sqrt_and_double.defjvp
def _sqrt_and_double_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    return _sqrt_and_double(x), (dx / (2 * jnp.sqrt(x)), 2 * dx)


def _both(x):
    return jnp.sqrt(x), 2 * x


@jax.custom_vjp
def _sqrt_and_double_vjp(x):
    return jnp.sqrt(x), 2 * x


def _sqrt_and_double_fwd(x):
    return _sqrt_and_double_vjp(x.value), x.value


def _sqrt_and_double_bwd(x, g):
    # a bwd written for symbolic zeros: an unused output's SymbolicZero adds nothing (filled-in
    # zeros would meet sqrt's infinite derivative at 0 and give 0 * inf = NaN)
    g_sqrt, g_double = g
    total = 2 * g_double if type(g_double) is not jax.custom_derivatives.SymbolicZero else jnp.zeros_like(x)
    if type(g_sqrt) is not jax.custom_derivatives.SymbolicZero:
        total = total + g_sqrt / (2 * jnp.sqrt(x))
    return (total,)


_sqrt_and_double_vjp.defvjp(_sqrt_and_double_fwd, _sqrt_and_double_bwd, symbolic_zeros=True)

# the same function as JAX's next custom_vjp makes it (jax_custom_vjp3=True: a call_hi_primitive)
_sqrt_and_double_vjp3 = custom_vjp3(lambda x: (jnp.sqrt(x), 2 * x))
_sqrt_and_double_vjp3.defvjp(_sqrt_and_double_fwd, _sqrt_and_double_bwd, symbolic_zeros=True)


def _shard_map(fun):
    mesh = jax.sharding.Mesh(np.array(jax.devices()[:1]), ("d",))
    spec = jax.sharding.PartitionSpec("d")
    if hasattr(jax, "shard_map"):
        return jax.shard_map(fun, mesh=mesh, in_specs=spec, out_specs=(spec, spec))
    from jax.experimental.shard_map import shard_map

    return shard_map(fun, mesh=mesh, in_specs=spec, out_specs=(spec, spec))


VEC = np.array([0.0, 1.0, 4.0, 0.0])  # sqrt has an infinite derivative at the zeros
SQUARE = np.diag([2.0, 2.0, 3.0, 3.0])  # repeated eigenvalues and singular values

# id -> (primitive the row exercises, function of one array, input)
ROWS = {
    "eigvalsh": ("eigh", lambda a: jnp.sum(jnp.linalg.eigvalsh(a) ** 2), SQUARE),
    "eigh_values_only": ("eigh", lambda a: jnp.sum(jnp.linalg.eigh(a)[0] * jnp.arange(4.0)), SQUARE),
    "eigh_vectors_only": ("eigh", lambda a: jnp.sum(jnp.linalg.eigh(a + jnp.diag(jnp.arange(4.0)))[1] ** 3), SQUARE),
    "svd_values_only": ("svd", lambda a: jnp.sum(jnp.linalg.svd(a, full_matrices=False)[1] ** 2), SQUARE),
    "qr_r_only": ("qr", lambda a: jnp.sum(jnp.linalg.qr(a + jnp.tril(jnp.ones((4, 4))))[1] ** 2), SQUARE),
    "eig_values_only": (
        "eig",
        lambda a: jnp.sum(jnp.real(lax.linalg.eig(a, compute_left_eigenvectors=False, enable_eigvec_derivs=True)[0])),
        SQUARE,
    ),
    "custom_jvp_second_output": ("custom_jvp_call", lambda x: jnp.sum(_sqrt_and_double(x)[1]), VEC),
    "custom_vjp_second_output": ("custom_vjp_call", lambda x: jnp.sum(_sqrt_and_double_vjp(x)[1]), VEC),
    "custom_vjp3_second_output": ("call_hi_primitive", lambda x: jnp.sum(_sqrt_and_double_vjp3(x)[1]), VEC),
    "cond_second_output": ("cond", lambda x: jnp.sum(lax.cond(True, _both, lambda x: (x, x), x)[1]), VEC),
    "switch_second_output": ("cond", lambda x: jnp.sum(lax.switch(1, [lambda x: (x, x), _both], x)[1]), VEC),
    "scan_unused_ys": (
        "scan",
        lambda x: jnp.sum(lax.scan(lambda c, _: (c, _both(c)), x, None, length=2)[1][1]),
        VEC,
    ),
    "fori_unused_carry": (
        "scan",
        lambda x: jnp.sum(lax.fori_loop(0, 2, lambda i, c: (c[0] * 2, jnp.sqrt(c[1])), (x, x))[0]),
        VEC,
    ),
    "scan_carry_feeding_used_carry": (
        # the second carry feeds the first, so its cotangent is live even though its final value is unused
        "scan",
        lambda x: jnp.sum(
            lax.scan(lambda c, _: ((c[0] + c[1], jnp.sqrt(c[1] + 1)), None), (x, x), None, length=3)[0][0]
        ),
        VEC,
    ),
    "map_second_output": ("scan", lambda x: jnp.sum(lax.map(_both, x)[1]), VEC),
    "checkpoint_second_output": ("checkpoint", lambda x: jnp.sum(jax.checkpoint(_both)(x)[1]), VEC),
    "sort_unused_operand": ("sort", lambda x: jnp.sum(lax.sort((x, jnp.sqrt(x), 2 * x), num_keys=1)[2]), VEC),
    "optimization_barrier_unused": (
        "optimization_barrier",
        lambda x: jnp.sum(lax.optimization_barrier(_both(x))[1]),
        VEC,
    ),
    "device_put_unused": ("device_put", lambda x: jnp.sum(jax.device_put(_both(x))[1]), VEC),
    "reduce_unused_operand": (
        "reduce",
        lambda x: lax.reduce(_both(x), (0.0, 0.0), lambda a, b: (a[0] + b[0], a[1] * b[1] + a[1]), (0,))[1],
        VEC,
    ),
    "shard_map_second_output": ("shard_map", lambda x: jnp.sum(_shard_map(_both)(x)[1]), VEC),
}

# rows where JAX's transpose fills zeros in for the unused output, so its answer has NaN too (its
# convention, which funcgrad follows: the rule is not registered with symbolic_zeros)
JAX_FILLS_ZEROS = {"optimization_barrier_unused"}

# rows JAX itself cannot differentiate on older releases, or funcgrad's rule needs newer params
# (see tests/jax_compat.py)
ROW_MIN_JAX = {
    "optimization_barrier_unused": (0, 6),
    "custom_vjp3_second_output": (0, 10),
    "eig_values_only": (0, 10),
    "shard_map_second_output": (0, 7),
}

# rows where JAX before this release filled zeros in itself (NaN where the unused output's derivative
# is infinite); funcgrad keeps the symbolic zero on every release, as newer JAX does, so there it must
# be finite and equal to JAX wherever JAX is finite
JAX_FINITE_SINCE = {
    "cond_second_output": (0, 7),
    "switch_second_output": (0, 7),
    "fori_unused_carry": (0, 7),
}


def _available(row_id):
    return JAX_VERSION >= ROW_MIN_JAX.get(row_id, ())


@pytest.mark.parametrize("row_id", sorted(ROWS))
@pytest.mark.parametrize("mode", ["eager", "jit"])
def test_unused_output_is_a_symbolic_zero(row_id, mode):
    if not _available(row_id):
        pytest.skip(f"JAX {jax.__version__} cannot differentiate {row_id}")
    _, fun, x = ROWS[row_id]
    with x64():
        ours, theirs = funcgrad.grad(fun), jax.grad(fun)
        if mode == "jit":
            ours, theirs = jax.jit(ours), jax.jit(theirs)
        got, want = ours(jnp.asarray(x)), theirs(jnp.asarray(x))
        if JAX_VERSION < JAX_FINITE_SINCE.get(row_id, ()):
            assert np.all(np.isfinite(got))
            np.testing.assert_allclose(got[np.isfinite(want)], want[np.isfinite(want)], rtol=1e-10, atol=1e-12)
            return
        if row_id in JAX_FILLS_ZEROS:
            assert np.any(np.isnan(want)), f"JAX now keeps a symbolic zero for {row_id}: follow it"
        else:
            assert np.all(np.isfinite(want)), "the row must be one where JAX's gradient is finite"
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)  # NaN only where JAX has NaN


def test_every_symbolic_zero_rule_has_a_row():
    with x64():
        seen = set()
        for row_id, (primitive, fun, x) in ROWS.items():
            if not _available(row_id):
                continue
            graph = funcgrad.trace(fun)(jnp.asarray(x))
            prims = {e.primitive for e in _all_eqns(graph)}
            assert primitive in prims, f"row {row_id} does not bind {primitive}: {sorted(prims)}"
            seen.add(primitive)
    missing = {p for p in symbolic_zero_rules if _available_primitive(p)} - seen
    assert not missing, f"rules registered with symbolic_zeros=True but no row here: {sorted(missing)}"


def _available_primitive(primitive):
    return any(_available(r) for r, (p, _, _) in ROWS.items() if p == primitive) or primitive not in {
        p for p, _, _ in ROWS.values()
    }


def _all_eqns(graph):
    for eqn in graph.eqns:
        yield eqn
        for value in eqn.params.values():
            if isinstance(value, funcgrad.Graph):
                yield from _all_eqns(value)


@pytest.mark.parametrize("row_id", ["eigvalsh", "scan_unused_ys", "sort_unused_operand"])
def test_rule_referee_agrees_where_an_output_is_unused(row_id):
    # the per-rule referee compares with jax.vjp of the outputs that received a cotangent only;
    # zeros for the others would make JAX's own reference NaN and blame a correct rule
    _, fun, x = ROWS[row_id]
    with x64():
        assert find_first_mismatch(fun, [jnp.asarray(x)], [jnp.ones(())]) is None
        assert funcgrad.check_grads(fun, (jnp.asarray(x),), fd=False).ok
