"""VJP rules for linear algebra: factorizations and solves.

Each rule is JAX's JVP rule (jax/_src/lax/linalg.py) transposed. Where the
transpose is short it is written out by hand (``cholesky``, ``triangular_solve``,
``eigh``, ``lu``, ``tridiagonal_solve``, ``custom_linear_solve``); the long
tangent maps of ``qr`` and ``svd`` are ported as they are and transposed by
funcgrad's own reverse sweep (``_transpose``), which is exact because they are
linear in the tangent.

Conventions (JAX's): cotangents are transposes, not adjoints, of the tangent
maps (complex inputs get no extra conjugation); matrix products run at HIGHEST
precision, as in JAX's rules; derivatives assume distinct eigenvalues /
singular values and nonsingular matrices, as JAX's do.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.lax import linalg as lax_linalg

from funcgrad.core.interpret import eval_graph
from funcgrad.core.ir import Graph
from funcgrad.core.nested import graph_vjp, traced_vjp
from funcgrad.core.registry import defvjp
from funcgrad.errors import NonDifferentiableError

_HI = lax.Precision.HIGHEST


def _mm(a, b):
    return jnp.matmul(a, b, precision=_HI)


def _T(x):
    return jnp.swapaxes(x, -1, -2)


def _H(x):
    return jnp.conj(_T(x))


def _eye(n, dtype, batch_ndim=0):
    """The identity, with ``batch_ndim`` leading unit axes so that it meets a batch of matrices at equal rank.

    Every binary operation in these rules is between arrays of one rank (no implicit rank promotion), so the
    rules also run under ``jax.numpy_rank_promotion('raise')``, as JAX's own rules do."""
    return lax.expand_dims(jnp.eye(n, dtype=dtype), tuple(range(batch_ndim)))


def _iota_last(dtype, shape):
    """``shape``-shaped indices along the last axis (``arange(shape[-1])`` at the rank of ``shape``)."""
    return lax.broadcasted_iota(dtype, shape, len(shape) - 1)


def _diag(v):
    """A batch of diagonal matrices from a batch of vectors."""
    return v[..., :, None] * _eye(v.shape[-1], v.dtype, v.ndim - 1)


def _solve(a, b, **kw):
    return lax_linalg.triangular_solve(a, b, **kw)


def _transpose(tangent_map, tangent_like, cts):
    """Cotangents of the inputs of ``tangent_map`` (linear in its arguments), by funcgrad's reverse sweep.

    A ``None`` in ``cts`` is a symbolic zero: the sweep skips the equations only it reaches, so a
    term such as 0 * 1/(s_i - s_j) at repeated singular values is never formed (JAX's convention)."""
    zeros = [jnp.zeros(np.shape(t), jnp.result_type(t)) for t in tangent_like]
    return traced_vjp(tangent_map, zeros, [True] * len(zeros), cts)


# -------------------------------------------------------------------- solves


@defvjp("triangular_solve")
def triangular_solve_vjp(ct, a, b, *, out, left_side, lower, transpose_a, conjugate_a, unit_diagonal, **params):
    """ct_b = op(A)^{-T} ct, ct_A = -ct_b X^T on the stored triangle (X = op(A)^{-1} b)"""
    # X = op(A)^{-1} B (or B op(A)^{-1}): linear in B; dX = -op(A)^{-1} op(dA) X (or -X op(dA) op(A)^{-1})
    ct_b = _solve(
        a, ct, left_side=left_side, lower=lower, transpose_a=not transpose_a,
        conjugate_a=conjugate_a, unit_diagonal=unit_diagonal,
    )  # fmt: skip
    ct_op_a = -_mm(ct_b, _T(out)) if left_side else -_mm(_T(out), ct_b)
    ct_a = _T(ct_op_a) if transpose_a else ct_op_a
    ct_a = jnp.conj(ct_a) if conjugate_a else ct_a
    # only the stored triangle is read (and not the diagonal if it is taken to be ones)
    k = 1 if unit_diagonal else 0
    ct_a = jnp.tril(ct_a, -k) if lower else jnp.triu(ct_a, k)
    return ct_a, ct_b


@defvjp("tridiagonal_solve")
def tridiagonal_solve_vjp(ct, dl, d, du, b, *, out, perturb_singular=False, **params):
    """y = T^{-T} ct: ct_b = y, ct_(dl, d, du) = -(y x^T) on the three diagonals"""
    # x = T^{-1} b; dx = T^{-1} (db - dT x), so y = T^{-T} ct is b's cotangent and -y x^T, restricted to
    # the three diagonals, is T's. T^T swaps the sub- and super-diagonals (shifted by one).
    zero = jnp.zeros_like(dl[..., :1])
    dl_t = jnp.concatenate([zero, du[..., :-1]], axis=-1)
    du_t = jnp.concatenate([dl[..., 1:], zero], axis=-1)
    y = lax_linalg.tridiagonal_solve(dl_t, d, du_t, ct, perturb_singular=perturb_singular)
    ct_d = -jnp.sum(y * out, axis=-1)
    ct_dl = jnp.concatenate([zero, -jnp.sum(y[..., 1:, :] * out[..., :-1, :], axis=-1)], axis=-1)
    ct_du = jnp.concatenate([-jnp.sum(y[..., :-1, :] * out[..., 1:, :], axis=-1), zero], axis=-1)
    return ct_dl, ct_d, ct_du, y


@defvjp("custom_linear_solve")
def custom_linear_solve_vjp(ct, *args, out, const_lengths, jaxprs, **params):
    """y = A^{-T} ct (a transposed solve): ct_b = y, ct_A-consts = VJP of matvec at -y"""
    # x = solve(matvec, b) with matvec(x) = b:  dx = A^{-1} (db - dA x), so with y = A^{-T} ct_x
    # b gets y, and matvec's consts get the VJP of c -> matvec(c, x) at -y. y is itself a linear
    # solve (the transposed problem: vecmat with transpose_solve), so its own derivative is implicit
    # too, as in JAX.
    n_mv, n_vm, n_s, n_ts = const_lengths
    matvec, vecmat, solve, transpose_solve = jaxprs
    if not isinstance(transpose_solve, Graph):
        raise NonDifferentiableError(
            "transpose_solve required for backwards mode automatic differentiation of custom_linear_solve "
            "(JAX's words): this custom_linear_solve has no transpose_solve, which reverse mode needs.\n  "
            "fix: pass transpose_solve=..., or symmetric=True if the operator is symmetric."
        )
    consts = list(args[: n_mv + n_vm + n_s + n_ts])
    b = list(args[len(consts) :])
    mv_consts, vm_consts = consts[:n_mv], consts[n_mv : n_mv + n_vm]
    s_consts, ts_consts = consts[n_mv + n_vm : n_mv + n_vm + n_s], consts[n_mv + n_vm + n_s :]
    x, ct_x = out[: len(b)], ct[: len(b)]  # solver diagnostics (has_aux) get no gradient, as in JAX
    y = lax.custom_linear_solve(
        lambda v: eval_graph(vecmat, *vm_consts, *v),
        list(ct_x),
        lambda _, rhs: eval_graph(transpose_solve, *ts_consts, *rhs)[: len(b)],
        lambda _, rhs: eval_graph(solve, *s_consts, *rhs)[: len(b)],
    )
    wrt = [v.type.is_float for v in matvec.inputs[:n_mv]] + [False] * len(x)
    ct_mv = [None] * n_mv
    if any(wrt):
        ct_mv = graph_vjp(matvec, [*mv_consts, *x], wrt, [-yi for yi in y])[:n_mv]
    return [*ct_mv, *[None] * (n_vm + n_s + n_ts), *y]


# ------------------------------------------------------------ factorizations


@defvjp("cholesky")
def cholesky_vjp(ct, x, *, out, **params):
    """ct_A = L^{-T} Φ(L^T ct) L^{-1}, Φ = lower triangle with the diagonal halved"""
    # dL = L phi(L^{-1} dA L^{-H}), phi = lower triangle with the diagonal halved; transposed:
    # ct_A = L^{-T} phi(L^T ct) conj(L)^{-1}
    L = jnp.tril(out)
    n = L.shape[-1]
    inner = jnp.tril(_mm(_T(L), ct)) / (1 + _eye(n, L.dtype, L.ndim - 2))
    tmp = _solve(L, inner, left_side=True, lower=True, transpose_a=True)
    return (_solve(L, tmp, left_side=False, lower=True, conjugate_a=True),)


@defvjp("eigh", symbolic_zeros=True)
def eigh_vjp(ct, x, *, out, subset_by_index=None, **params):
    """ct_A = V (diag(ct_w) + F ∘ (V^H ct_V)) V^H, F_ij = 1/(w_j - w_i), 0 on the diagonal"""
    # with M = V^H dA V and F_ij = 1/(w_j - w_i) (0 on the diagonal): dV = V (F * M), dw = diag(re M)
    # (uses the forward's V, w; JAX recomputes eigh(symmetrize(a)): the same for the symmetric input that
    # jnp.linalg.eigh and lax.linalg.eigh(symmetrize_input=True) pass)
    n = x.shape[-1]
    if subset_by_index is not None and tuple(subset_by_index) != (0, n):
        raise NonDifferentiableError(
            "Derivatives not defined for partial eigen decomposition: eigh with subset_by_index has no "
            "derivative, as in JAX.\n  fix: compute the full decomposition and slice its outputs."
        )
    # A cotangent that is None (symbolic zero) drops its term, as JAX's transpose does: eigvalsh at
    # repeated eigenvalues (F = inf there) has a finite derivative, which 0 * F would turn into NaN.
    (v, w_real), (ct_v, ct_w) = out, ct
    w = w_real.astype(x.dtype)
    eye = _eye(n, x.dtype, x.ndim - 2)
    ct_m = jnp.zeros(x.shape, x.dtype)
    if ct_v is not None:
        f = lax.integer_pow(eye + w[..., None, :] - w[..., :, None], -1) - eye
        ct_m = ct_m + f * _mm(_T(v), ct_v)
    if ct_w is not None:
        ct_m = ct_m + _diag(ct_w.astype(x.dtype))
    return (_mm(_mm(jnp.conj(v), ct_m), _T(v)),)


@defvjp("lu")
def lu_vjp(ct, a, *, out, **params):
    """ct_A = P^T L^{-T} (tril(L^T ct, -1) + triu(ct U^T)) U^{-T}"""
    # P A = L U. With Z = L^{-1} P dA U^{-1}: d(LU) = L tril(Z, -1) + triu(Z) U (one packed matrix).
    # Transposed: ct_Z = tril(L^T ct, -1) + triu(ct U^T), ct_A = P^T L^{-T} ct_Z U^{-T}.
    lu, _, perm = out
    ct_lu = ct[0]
    m, n = a.shape[-2:]
    k = min(m, n)
    dtype = lu.dtype
    l_mat = jnp.tril(lu[..., :, :k], -1)
    batch_ndim = lu.ndim - 2
    l_mat = jnp.pad(l_mat, [(0, 0)] * (lu.ndim - 1) + [(0, m - k)]) + _eye(m, dtype, batch_ndim)
    u_mat = jnp.pad(jnp.triu(lu[..., :k, :]), [(0, 0)] * batch_ndim + [(0, n - k), (0, 0)])
    u_mat = u_mat + jnp.pad(_eye(n - k, dtype, batch_ndim), [(0, 0)] * batch_ndim + [(k, 0), (k, 0)])
    ct_z = jnp.tril(_mm(_T(l_mat), ct_lu), -1) + jnp.triu(_mm(ct_lu, _T(u_mat)))
    ct_pa = _solve(l_mat, ct_z, left_side=True, lower=True, transpose_a=True, unit_diagonal=True)
    ct_pa = _solve(u_mat, ct_pa, left_side=False, lower=False, transpose_a=True)
    # (P dA) = dA[perm]; its transpose scatters rows back: ct_A = P^T ct_PA, with P one-hot (exact)
    p = (perm[..., :, None] == _iota_last(perm.dtype, (*perm.shape, m))).astype(dtype)
    return (_mm(_T(p), ct_pa),)


@defvjp("qr", symbolic_zeros=True)
def qr_vjp(ct, x, *, out, pivoting=False, full_matrices=True, **params):
    """ct_A = the transpose of QR's tangent map (JAX's) applied to (ct_Q, ct_R)"""
    q, r = out[0], out[1]
    perm = out[2] if pivoting else None
    return tuple(_transpose(lambda dx: _qr_tangent(x, q, r, perm, dx, full_matrices), [x], ct[:2]))


def _qr_tangent(x, q, r, perm, dx, full_matrices):
    """JAX's ``qr_jvp_rule``: (dQ, dR) given dX (linear in dX)."""
    m, n = x.shape[-2:]
    if perm is not None:
        # dx[..., perm] as a product with a one-hot matrix (exact)
        onehot = (_T(_iota_last(perm.dtype, (*perm.shape, n))) == perm[..., None, :]).astype(dx.dtype)
        dx = _mm(dx, onehot)
    if m < n:  # wide: X = Q [R1 R2], the square block as usual, dR2 = dQ^H X2 + Q^H dX2
        dq, dr1 = _thin_qr_tangent(q, r[..., :, :m], dx[..., :, :m])
        x2 = x[..., :, m:]
        if perm is not None:
            x2 = _mm(x, onehot)[..., :, m:]
        dr2 = _mm(_H(dq), x2) + _mm(_H(q), dx[..., :, m:])
        return dq, jnp.concatenate([dr1, dr2], axis=-1)
    q_mn = q[..., :, :n] if full_matrices else q
    r_nn = r[..., :n, :n] if full_matrices else r
    dq_mn, dr_nn = _thin_qr_tangent(q_mn, r_nn, dx)
    if not full_matrices or m == n:
        return dq_mn, dr_nn
    # full Q of a tall matrix (arXiv:2409.13374, eqs. 32-33)
    q_nn, q_pn, q_mp = q_mn[..., :n, :], q_mn[..., n:, :], q[..., :, n:]
    dq_nn, dq_pn = dq_mn[..., :n, :], dq_mn[..., n:, :]
    z_pn_h = jnp.linalg.solve(_H(q_nn - _eye(n, q.dtype, q.ndim - 2)), _H(q_pn))
    z_pn = _H(z_pn_h)
    dq_mp = _mm(dq_mn, z_pn_h) - _mm(q_mn + _mm(q_mp, z_pn), _H(dq_pn - _mm(z_pn, dq_nn)))
    zeros = jnp.zeros((*dr_nn.shape[:-2], m - n, n), dr_nn.dtype)
    return jnp.concatenate([dq_mn, dq_mp], axis=-1), jnp.concatenate([dr_nn, zeros], axis=-2)


def _thin_qr_tangent(q, r, dx):
    # j-towns.github.io/papers/qr-derivative.pdf
    dx_rinv = _solve(r, dx)  # dX R^{-1} (right-side solve)
    qt_dx_rinv = _mm(_H(q), dx_rinv)
    lower = jnp.tril(qt_dx_rinv, -1)
    do = lower - _H(lower)  # skew-symmetric
    if jnp.iscomplexobj(qt_dx_rinv):  # keep the diagonal's imaginary part (complex inputs)
        eye = _eye(r.shape[-1], do.dtype, do.ndim - 2)
        do = do + eye * (qt_dx_rinv - jnp.real(qt_dx_rinv).astype(qt_dx_rinv.dtype))
    dq = _mm(q, do - qt_dx_rinv) + dx_rinv
    dr = _mm(qt_dx_rinv - do, r)
    return dq, dr


@defvjp("svd", symbolic_zeros=True)
def svd_vjp(ct, a, *, out, full_matrices, compute_uv, subset_by_index=None, algorithm=None, **params):
    """ct_A = the transpose of the thin SVD's tangent map (JAX's) applied to (ct_U, ct_s, ct_V)"""
    m, n = a.shape[-2:]
    if compute_uv and full_matrices and m != n:
        raise NonDifferentiableError(
            "Singular value decomposition JVP not implemented for full matrices: the derivative of svd with "
            "full_matrices=True is not defined for non-square matrices (JAX has none either).\n  fix: use "
            "full_matrices=False (jnp.linalg.svd(a, full_matrices=False))."
        )
    # JAX's rule differentiates the thin decomposition, whatever the primitive returned
    u, s, vt = lax_linalg.svd(
        a, full_matrices=False, compute_uv=True, subset_by_index=subset_by_index, algorithm=algorithm
    )
    if not compute_uv:
        # ds = diag(re(U^H dA V)), transposed: conj(U) diag(ct_s) conj(V^H)
        return (_mm(jnp.conj(u) * ct[0].astype(a.dtype)[..., None, :], jnp.conj(vt)),)
    return tuple(_transpose(lambda da: _svd_tangent(s, u, vt, da), [a], ct))


def _svd_tangent(s, u, vt, da):
    """JAX's ``_svd_jvp_rule``: (ds, dU, dV^H) given dA (linear in dA)."""
    dtype = da.dtype
    ut, v = _H(u), _H(vt)
    s_dim = s[..., None, :]
    ds_mat = _mm(_mm(ut, da), v)
    s_eye = _eye(s.shape[-1], s.dtype, s.ndim - 1)
    ds = jnp.sum(jnp.real(ds_mat) * s_eye, axis=-1)
    s_diffs = (s_dim + _T(s_dim)) * (s_dim - _T(s_dim))
    f = 1 / (s_diffs + s_eye) - s_eye
    dss = s_dim.astype(dtype) * ds_mat
    sds = _T(s_dim.astype(dtype)) * ds_mat
    s_zeros = (s == 0).astype(s.dtype)
    s_inv = 1 / (s + s_zeros) - s_zeros
    du_dv_diag = 0.5 * (ds_mat - _H(ds_mat)) * _diag(s_inv).astype(dtype)
    du = _mm(u, f.astype(dtype) * (dss + _H(dss)) + du_dv_diag)
    dv = _mm(v, f.astype(dtype) * (sds + _H(sds)))
    m, n = da.shape[-2:]
    if m > n:
        dav = _mm(da, v)
        du = du + (dav - _mm(u, _mm(ut, dav))) / s_dim.astype(dtype)
    if n > m:
        dahu = _mm(_H(da), u)
        dv = dv + (dahu - _mm(v, _mm(vt, dahu))) / s_dim.astype(dtype)
    return ds, du, _H(dv)


@defvjp("eig", symbolic_zeros=True)
def eig_vjp(ct, a, *, out, compute_left_eigenvectors=True, compute_right_eigenvectors=True,
            enable_eigvec_derivs=False, implementation=None, **params):  # fmt: skip
    """ct_A = V^{-H} (diag(ct_w) + F ∘ (V^H ct_V)) V^H, F_ij = 1/(w_j - w_i)"""
    if (compute_left_eigenvectors or compute_right_eigenvectors) and not enable_eigvec_derivs:
        raise NonDifferentiableError(
            "Derivatives of non-symmetric eigenvectors are only valid under assumptions on the input that "
            "JAX cannot check (JAX refuses them too, and so does funcgrad).\n  fix: pass "
            "enable_eigvec_derivs=True to "
            "jax.lax.linalg.eig to opt in, or differentiate the eigenvalues only (jnp.linalg.eigvals)."
        )
    # JAX's rule recomputes the right eigenvectors, which the eigenvalue derivative needs
    outs = lax_linalg.eig(
        a, compute_left_eigenvectors=compute_left_eigenvectors, compute_right_eigenvectors=True,
        enable_eigvec_derivs=enable_eigvec_derivs, implementation=implementation,
    )  # fmt: skip
    w, vr = outs[0], outs[-1]
    vl = outs[1] if compute_left_eigenvectors else None

    def tangent(da):
        da = da.astype(vr.dtype)
        if not (compute_left_eigenvectors or compute_right_eigenvectors):
            return [jnp.sum(jnp.linalg.solve(vr, da) * _T(vr), axis=-1)]
        dw, dvr = _eig_vec_tangent(w, vr, da)
        tangents = [dw]
        if compute_left_eigenvectors:
            tangents.append(_eig_vec_tangent(jnp.conj(w), vl, _H(da))[1])
        if compute_right_eigenvectors:
            tangents.append(dvr)
        return tangents

    return tuple(_transpose(tangent, [a], ct))


def _eig_vec_tangent(w, v, da):
    """JAX's ``_eig_vec_jvp``: (dw, dv) given dA, with LAPACK's normalisation of each eigenvector."""
    n = w.shape[-1]
    eye = _eye(n, w.dtype, w.ndim - 1)
    f = 1 / (eye + w[..., None, :] - w[..., :, None]) - eye
    p = _mm(jnp.linalg.solve(v, da), v)
    dw = jnp.sum(p * eye, axis=-1)
    u = _mm(v, f * p)
    # dv_j = u_j + c_j v_j, c_j fixed by unit norm and a real largest-magnitude component
    k = jnp.argmax(jnp.abs(v), axis=-2)
    mask = (_T(_iota_last(k.dtype, (*k.shape, n))) == k[..., None, :]).astype(v.dtype)
    c = lax.complex(
        -jnp.real(jnp.sum(jnp.conj(v) * u, axis=-2)),
        -jnp.imag(jnp.sum(mask * u, axis=-2)) / jnp.real(jnp.sum(mask * v, axis=-2)),
    )
    return dw, u + v * c[..., None, :]
