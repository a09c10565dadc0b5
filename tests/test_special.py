"""Complex numbers and special functions against jax.vjp / jax.grad.

The rule table compares real parts; here complex cotangents are compared in
full, for JAX's convention (the VJP is the transpose of the JVP, no extra
conjugation), including complex linear algebra.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import funcgrad
from tests.conftest import x64

_rng = np.random.default_rng(0)


def _c(*shape):
    return _rng.normal(size=shape) + 1j * _rng.normal(size=shape)


_W = _c(3)
_A = _c(4, 4) + 3 * np.eye(4)
_H = _A @ _A.conj().T + np.eye(4)
_B = _c(4)

COMPLEX = {
    "real_imag": (lambda z: lax.real(z) * lax.imag(z) ** 2, _c(3)),
    "conj": (lambda z: lax.conj(z) * _W, _c(3)),
    "abs": (jnp.abs, _c(3)),
    "abs_at_zero": (jnp.abs, np.array([0j, 1 + 1j])),
    "angle": (jnp.angle, _c(3)),
    "holomorphic": (lambda z: jnp.exp(jnp.sin(z) * _W) / (1 + z**2), _c(3)),
    "vdot": (lambda z: jnp.vdot(z, _W) * z, _c(3)),
    "complex_from_reals": (lambda x: lax.complex(x, x**2) * _W, _rng.normal(size=3)),
    "cholesky": (jnp.linalg.cholesky, _H),
    "eigh": (lambda h: jnp.linalg.eigh(h)[0], _H),
    "solve": (lambda a: jnp.linalg.solve(a, _B), _A),
    "qr": (lambda a: jnp.linalg.qr(a)[1], _c(5, 3)),
    "svdvals": (lambda a: jnp.linalg.svd(a, compute_uv=False), _c(5, 3)),
    "det": (jnp.linalg.det, _A),
}


@pytest.mark.parametrize("name", sorted(COMPLEX))
def test_complex_vjp_matches_jax(name):
    fn, z = COMPLEX[name]
    with x64():
        out, vjp_jax = jax.vjp(fn, z)
        ct = _c(*np.shape(out)) if jnp.iscomplexobj(out) else _rng.normal(size=np.shape(out))
        ct = jnp.asarray(ct, jnp.result_type(out))
        _, vjp_fg = funcgrad.vjp(fn, z)
        (want,), (got,) = vjp_jax(ct), vjp_fg(ct)
        assert jnp.result_type(got) == jnp.result_type(want)
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-10, atol=1e-12)


def test_grad_of_real_loss_of_complex_input_is_jax_convention():
    # jax.grad of f(x + iy) returns df/dx - i df/dy
    loss = lambda z: jnp.sum(jnp.abs(z * _W - 1) ** 2)  # noqa: E731
    with x64():
        z = _c(3)
        np.testing.assert_allclose(funcgrad.grad(loss)(z), jax.grad(loss)(z), rtol=1e-12)


@pytest.mark.parametrize(
    "fn",
    [lax.bessel_i0e, lax.bessel_i1e, lambda v: lax.polygamma(jnp.ones_like(v), v), lambda v: lax.igamma(2.0, v)],
    ids=["bessel_i0e", "bessel_i1e", "polygamma", "igamma_in_x"],
)
def test_second_derivatives_of_special_functions(fn):
    with x64():
        x = jnp.array([0.3, 1.2, 2.5])
        want = jax.vmap(jax.grad(jax.grad(fn)))(x)
        # (igamma's rule also computes the a-derivative igamma_grad_a, which has no derivative; it is
        # unused here, so the second sweep leaves it alone, as JAX's dead-code elimination does)
        np.testing.assert_allclose(jax.vmap(funcgrad.grad(funcgrad.grad(fn)))(x), want, rtol=1e-9)


def test_second_derivative_of_igamma_in_a_is_refused():
    # igamma_grad_a itself has no derivative (in JAX either): the error names it and the fix
    with x64():
        f = lambda a: lax.igamma(a, jnp.array([0.5, 1.5])).sum()  # noqa: E731
        with pytest.raises(funcgrad.NonDifferentiableError, match="igamma_grad_a.*in a only once"):
            funcgrad.grad(lambda a: funcgrad.grad(f)(a).sum())(jnp.array([2.0, 3.0]))


def test_derivatives_jax_does_not_define():
    with x64():
        x = jnp.array([0.5, 1.5])
        # the order of polygamma and a, b of betainc have no derivative: JAX raises a ValueError with
        # these words, and so does funcgrad (once it returned NaN); x's derivative is exact
        refusals = [
            (lambda m: lax.polygamma(m, x).sum(), "polygamma gradient with respect to m is not supported"),
            (lambda a: lax.betainc(a, 2.0 * a, x / 2).sum(), "Betainc gradient with respect to a and b"),
            (lambda b: lax.betainc(2.0, b, x / 2).sum(), "Betainc gradient with respect to a and b"),
        ]
        for f, words in refusals:
            with pytest.raises(ValueError, match=words):
                jax.grad(f)(jnp.ones(2))
            with pytest.raises(ValueError, match=words) as e:
                funcgrad.grad(f)(jnp.ones(2))
            assert isinstance(e.value, funcgrad.NonDifferentiableError) and "fix:" in str(e.value)
        g_x = funcgrad.grad(lambda v: lax.polygamma(jnp.ones(2), v).sum())(x)
        np.testing.assert_allclose(g_x, jax.grad(lambda v: lax.polygamma(jnp.ones(2), v).sum())(x), rtol=1e-12)
        with pytest.raises(funcgrad.NonDifferentiableError, match="jax.scipy.special.zeta"):
            funcgrad.grad(lambda v: lax.zeta(v, 2.0).sum())(x + 2)
