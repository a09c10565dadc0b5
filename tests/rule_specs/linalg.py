"""Rows for linear algebra (funcgrad/rules/linalg.py).

Inputs are well conditioned (SPD where the factorization needs it). Each row is
checked twice: float32 with a relaxed tolerance (factorizations amplify
rounding) and float64 at the table's tight default.
"""

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from tests.rule_specs import RuleSpec, fixed

F32_TOL = 2e-3


def rows(primitive, fn, build, name, f32_tol=F32_TOL, **kw):
    """The same row in float32 (tolerance ``f32_tol``) and float64 (default tolerance)."""
    args = fixed(build)
    return [
        RuleSpec(primitive, fn, args, name=f"{name}_f32", dtypes=("float32",), rtol=f32_tol, atol=f32_tol, **kw),
        RuleSpec(primitive, fn, args, name=f"{name}_f64", dtypes=("float64",), **kw),
    ]


def general(*shape):
    # a random matrix shifted towards the identity: well conditioned, not symmetric
    def build(rng, dt):
        a = rng.normal(size=shape) * 0.5
        if shape[-1] == shape[-2]:
            a = a + 2 * np.eye(shape[-1])
        return [a.astype(dt)]

    return build


def spd(n, batch=()):
    def build(rng, dt):
        a = rng.normal(size=(*batch, n, n))
        return [(a @ np.swapaxes(a, -1, -2) + n * np.eye(n)).astype(dt)]

    return build


def with_rhs(matrix_build, rhs_shape):
    def build(rng, dt):
        return [*matrix_build(rng, dt), rng.normal(size=rhs_shape).astype(dt)]

    return build


def tri_solve(**kw):
    return lambda a, b: lax.linalg.triangular_solve(a, b, **kw)


def tridiagonal(n, k):
    def build(rng, dt):
        dl = np.concatenate([[0.0], rng.normal(size=n - 1)])
        du = np.concatenate([rng.normal(size=n - 1), [0.0]])
        d = rng.normal(size=n) + 4.0
        return [x.astype(dt) for x in (dl, d, du, rng.normal(size=(n, k)))]

    return build


def svd_thin(a):
    return jnp.linalg.svd(a, full_matrices=False)


SPECS = [
    *rows("cholesky", jnp.linalg.cholesky, spd(4), "cholesky"),
    *rows("cholesky", jnp.linalg.cholesky, spd(3, batch=(2,)), "cholesky_batched"),
    *rows("triangular_solve", tri_solve(left_side=True, lower=True), with_rhs(general(4, 4), (4, 3)), "tri_left_lower"),
    *rows(
        "triangular_solve", tri_solve(left_side=False, lower=False), with_rhs(general(4, 4), (3, 4)), "tri_right_upper"
    ),
    *rows(
        "triangular_solve",
        tri_solve(left_side=True, lower=False, transpose_a=True, unit_diagonal=True),
        with_rhs(general(4, 4), (4, 2)),
        "tri_transpose_unit",
    ),
    *rows(
        "triangular_solve",
        tri_solve(left_side=False, lower=True, transpose_a=True),
        with_rhs(general(2, 3, 3), (2, 4, 3)),
        "tri_right_transpose_batched",
    ),
    *rows("tridiagonal_solve", lax.linalg.tridiagonal_solve, tridiagonal(5, 2), "tridiagonal_solve"),
    *rows("custom_linear_solve", jnp.linalg.solve, with_rhs(general(4, 4), (4,)), "solve"),
    *rows(
        "custom_linear_solve",
        lambda a, b: jax.scipy.linalg.solve(a, b, assume_a="pos"),
        with_rhs(spd(4), (4, 2)),
        "solve_symmetric",
    ),
    *rows("eigh", jnp.linalg.eigh, spd(4), "eigh"),
    *rows("eigh", jnp.linalg.eigvalsh, spd(3, batch=(2,)), "eigvalsh_batched"),
    *rows("lu", lambda a: lax.linalg.lu(a)[0], general(4, 4), "lu"),
    *rows("lu", lambda a: lax.linalg.lu(a)[0], general(5, 3), "lu_tall"),
    *rows("lu", lambda a: lax.linalg.lu(a)[0], general(3, 5), "lu_wide"),
    *rows("lu", lambda a: jnp.linalg.slogdet(a)[1], general(2, 4, 4), "slogdet_batched"),
    *rows("qr", jnp.linalg.qr, general(5, 3), "qr_reduced_tall"),
    *rows("qr", jnp.linalg.qr, general(3, 5), "qr_wide"),
    *rows("qr", lambda a: jnp.linalg.qr(a, mode="complete"), general(5, 3), "qr_complete_tall"),
    *rows("qr", lambda a: jax.scipy.linalg.qr(a, pivoting=True)[:2], general(4, 4), "qr_pivoting"),
    *rows("svd", svd_thin, general(5, 3), "svd_tall"),
    *rows("svd", svd_thin, general(3, 5), "svd_wide"),
    *rows("svd", jnp.linalg.svd, general(4, 4), "svd_full_square"),
    *rows("svd", lambda a: jnp.linalg.svd(a, compute_uv=False), general(5, 3), "svdvals"),
]

# eig (CPU-only in JAX): eigenvalues, and eigenvectors where the caller opts in
SPECS += [
    *rows("eig", jnp.linalg.eigvals, general(4, 4), "eigvals"),
    *rows("eig", lambda a: lax.linalg.eig(a, enable_eigvec_derivs=True), general(3, 3), "eig_vectors"),
]
