"""What needs a newer JAX than the oldest supported release, and why (see docs/jax_versions.md).

funcgrad itself works on every supported release (``pyproject.toml``); some checks cannot run on
older ones: JAX had no derivative to compare against, a test builds its input with a newer API, or a
rule family uses a newer API. Each entry names the first release where the check passes, found by
``scripts/jax_matrix.sh``. Tests skip (with the reason) on older releases, and only there.
"""

from __future__ import annotations

import jax

JAX_VERSION = tuple(int(p) for p in jax.__version__.split(".")[:3] if p.isdigit())

# tests/rule_specs module -> (first JAX release it imports on, why)
MODULE_MIN_JAX = {
    "collective": ((0, 7), "shard_map rows use jax.shard_map / jax.sharding.AxisType / check_vma"),
    "placement": ((0, 7), "sharding rows use jax.sharding.AxisType and explicit meshes"),
    "linear": ((0, 6), "ragged_dot_general rows use lax.RaggedDotDimensionNumbers (new in JAX 0.6)"),
}

# rule-table row id (``RuleSpec.id``) or fuzz regression name -> (first JAX release it passes on, why)
ROW_MIN_JAX = {
    # JAX could not differentiate these before, so there is nothing to compare against
    "optimization_barrier": ((0, 6), "JAX < 0.6 has no derivative for optimization_barrier"),
    "optimization_barrier_single": ((0, 6), "JAX < 0.6 has no derivative for optimization_barrier"),
    "fuzz:optimization_barrier_single_operand": ((0, 6), "JAX < 0.6 has no derivative for optimization_barrier"),
    "qr_pivoting_f32": ((0, 5), "JAX < 0.5 cannot differentiate pivoted QR"),
    "qr_pivoting_f64": ((0, 5), "JAX < 0.5 cannot differentiate pivoted QR"),
    "qr_wide_f32": ((0, 10), "JAX < 0.10 cannot differentiate wide QR"),
    "qr_wide_f64": ((0, 10), "JAX < 0.10 cannot differentiate wide QR"),
    "qr_complete_tall_f32": ((0, 10), "JAX < 0.10 cannot differentiate complete QR of tall matrices"),
    "qr_complete_tall_f64": ((0, 10), "JAX < 0.10 cannot differentiate complete QR of tall matrices"),
    "svd_full_square_f32": ((0, 9), "JAX < 0.9 has no JVP for full_matrices SVD"),
    "svd_full_square_f64": ((0, 9), "JAX < 0.9 has no JVP for full_matrices SVD"),
    "sort_axis0": ((0, 8), "jax.vjp of sorting an empty axis fails in JAX < 0.8 (gather slice size)"),
    # the row builds its input with a newer API, or older jax.numpy lowers it to other primitives
    "slice_strided": ((0, 10), "JAX < 0.10 lowers a strided x[::k] to gather, not slice"),
    "top_k_axis0": ((0, 9), "lax.top_k(..., axis=) is new in JAX 0.9"),
    "reshard": ((0, 8), "reshard between explicit meshes needs JAX >= 0.8"),
    "psum_invariant": ((0, 9), "lax.pcast (used by the rule) is new in JAX 0.9"),
    "pvary": ((0, 9), "lax.pcast (used by the rule) is new in JAX 0.9"),
    "all_gather_invariant": ((0, 10), "all_gather(to='invariant') is new in JAX 0.10"),
    "all_gather_invariant_tiled": ((0, 10), "all_gather(to='invariant') is new in JAX 0.10"),
    # funcgrad's rule passes a parameter that older lax.linalg functions do not take
    "eigvals_f32": ((0, 10), "funcgrad's eig rule passes enable_eigvec_derivs (JAX >= 0.10)"),
    "eigvals_f64": ((0, 10), "funcgrad's eig rule passes enable_eigvec_derivs (JAX >= 0.10)"),
    "eig_vectors_f32": ((0, 10), "funcgrad's eig rule passes enable_eigvec_derivs (JAX >= 0.10)"),
    "eig_vectors_f64": ((0, 10), "funcgrad's eig rule passes enable_eigvec_derivs (JAX >= 0.10)"),
    "tridiagonal_solve_f32": ((0, 10), "funcgrad's rule passes perturb_singular (JAX >= 0.10)"),
    "tridiagonal_solve_f64": ((0, 10), "funcgrad's rule passes perturb_singular (JAX >= 0.10)"),
    "igamma": ((0, 10), "jax.vjp itself fails on JAX 0.8-0.9 (TypeError: unary - of a float0 array)"),
    "igammac": ((0, 10), "jax.vjp itself fails on JAX 0.8-0.9 (TypeError: unary - of a float0 array)"),
    "regularized_incomplete_beta": (
        (0, 10),
        "jax.vjp itself fails on JAX 0.8-0.9 (TypeError: unary - of a float0 array)",
    ),
}


def module_unavailable(name: str) -> str | None:
    """Why spec module ``name`` cannot be imported on this JAX release, or None."""
    need, why = MODULE_MIN_JAX.get(name, ((), ""))
    return None if JAX_VERSION >= tuple(need) else f"needs jax >= {_v(need)}: {why}"


def row_unavailable(row_id: str, min_jax=()) -> str | None:
    """Why row ``row_id`` cannot be checked on this JAX release, or None."""
    need, why = ROW_MIN_JAX.get(row_id, ((), ""))
    need = max(tuple(need), tuple(min_jax))
    if JAX_VERSION >= need:
        return None
    return f"{row_id} needs jax >= {_v(need)} (this is {jax.__version__})" + (f": {why}" if why else "")


def _v(version) -> str:
    return ".".join(map(str, version))
