"""VJP rules for complex numbers and special functions (the elementwise primitives not in elementwise.py).

Complex numbers follow JAX's convention: a VJP is the *transpose* of the JVP,
which is R-linear, with no extra conjugation. For a holomorphic f that is
``ct * f'(z)`` (so elementwise.py's rules already hold for complex inputs),
``real`` transposes to ``complex(ct, 0)``, ``imag`` to ``complex(0, -ct)``,
``conj`` to ``conj(ct)``, and ``jax.grad`` of a real function of ``z = x + iy``
comes out as ``df/dx - i df/dy``, exactly as JAX returns it.

Derivatives JAX does not define: JAX raises (a ``ValueError``) for the order
``m`` of ``polygamma`` and for ``a``, ``b`` of ``regularized_incomplete_beta``,
and so do these rules, when such an input is being differentiated (they ask for
``perturbed``); when it is a constant, as it usually is, it gets no cotangent.
The derivative helpers ``igamma_grad_a`` and ``random_gamma_grad`` have no
derivative in JAX and are refused (``defnovjp``).
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax

from funcgrad.core.registry import defnovjp, defvjp, defzero
from funcgrad.errors import NonDifferentiableError

# ------------------------------------------------------------- complex numbers


@defvjp("real")
def real_vjp(ct, x, *, out, **params):
    """ct_x = complex(ct, 0)"""
    # the transpose of re(.) puts the cotangent in the real part
    return (lax.complex(ct, jnp.zeros_like(ct)),)


@defvjp("imag")
def imag_vjp(ct, x, *, out, **params):
    """ct_x = complex(0, -ct)"""
    # the transpose of im(.): <ct, im(t)> = <complex(0, -ct), t> in JAX's (non-conjugating) pairing
    return (lax.complex(jnp.zeros_like(ct), -ct),)


@defvjp("complex")
def complex_vjp(ct, x, y, *, out, **params):
    """ct_x = re(ct), ct_y = -im(ct) (complex(x, y) = x + i y)"""
    # complex(x, y) = x + i y
    return jnp.real(ct), -jnp.imag(ct)


@defvjp("conj")
def conj_vjp(ct, x, *, out, **params):
    """ct_x = conj(ct) (re(ct) for a real x)"""
    # conj is its own transpose; a real input keeps the real part
    if jnp.iscomplexobj(x):
        return (jnp.conj(ct),)
    return (jnp.real(ct),)


# ----------------------------------------------------------- special functions


def _igamma_dx(a, x):
    # d/dx P(a, x) = x^(a-1) e^(-x) / Gamma(a)
    return jnp.exp(-x + (a - 1) * jnp.log(x) - lax.lgamma(a))


@defvjp("igamma")
def igamma_vjp(ct, a, x, *, out, **params):
    """ct_a = ct · ∂P/∂a, ct_x = ct · x^(a-1) e^(-x) / Γ(a)"""
    return ct * lax.igamma_grad_a(a, x), ct * _igamma_dx(a, x)


@defvjp("igammac")
def igammac_vjp(ct, a, x, *, out, **params):
    """ct_a = -ct · ∂P/∂a, ct_x = -ct · x^(a-1) e^(-x) / Γ(a) (Q = 1 - P)"""
    # Q = 1 - P
    return -ct * lax.igamma_grad_a(a, x), -ct * _igamma_dx(a, x)


def _refuse(sentence: str, what: str) -> NonDifferentiableError:
    return NonDifferentiableError(
        f"{sentence} (JAX's words: it defines no derivative there either)\n"
        f"  fix: differentiate with respect to x only, e.g. pass {what} as a constant or through "
        "lax.stop_gradient"
    )


@defvjp("polygamma", perturbed=True)
def polygamma_vjp(ct, m, x, *, out, perturbed, **params):
    """ct_x = ct · ψ^(m+1)(x); the order m gets none"""
    # d/dx psi^(m)(x) = psi^(m+1)(x); no derivative in the order m (JAX raises)
    if perturbed[0]:
        raise _refuse("polygamma gradient with respect to m is not supported", "the order m")
    return None, ct * lax.polygamma(m + 1, x)


@defvjp("regularized_incomplete_beta", perturbed=True)
def regularized_incomplete_beta_vjp(ct, a, b, x, *, out, perturbed, **params):
    """ct_x = ct · x^(a-1) (1-x)^(b-1) / B(a, b); a and b get none"""
    # d/dx I_x(a, b) = x^(a-1) (1-x)^(b-1) / B(a, b); none in a, b (JAX raises)
    if perturbed[0] or perturbed[1]:
        raise _refuse("Betainc gradient with respect to a and b not supported.", "a and b")
    log_beta = lax.lgamma(a) + lax.lgamma(b) - lax.lgamma(a + b)
    dx = jnp.exp((b - 1) * jnp.log1p(-x) + (a - 1) * jnp.log(x) - log_beta)
    return None, None, ct * dx


@defvjp("bessel_i0e")
def bessel_i0e_vjp(ct, x, *, out, **params):
    """ct_x = ct · (i1e(x) - sign(x) · i0e(x))"""
    # i0e = e^{-|x|} i0: d i0e = i1e(x) - sign(x) i0e(x)
    return (ct * (lax.bessel_i1e(x) - jnp.sign(x) * out),)


@defvjp("bessel_i1e")
def bessel_i1e_vjp(ct, x, *, out, **params):
    """ct_x = ct · (i0e(x) - i1e(x) · (sign(x) + 1/x)), 1/2 at x = 0"""
    # d i1e = i0e(x) - i1e(x) (sign(x) + 1/x); 1/2 at x = 0 (JAX guards |x| <= eps the same way)
    eps = jnp.finfo(jnp.result_type(x)).eps
    not_tiny = jnp.abs(x) > eps
    safe_x = jnp.where(not_tiny, x, jnp.full_like(x, eps))
    dy = lax.bessel_i0e(safe_x) - out * (jnp.sign(safe_x) + 1 / safe_x)
    return (ct * jnp.where(not_tiny, dy, jnp.full_like(x, 0.5)),)


@defvjp("random_gamma")
def random_gamma_vjp(ct, key, a, *, out, log_space=False, **params):
    """ct_a = ct · ∂sample/∂a (implicit reparameterization: random_gamma_grad(a, sample))"""
    # implicit reparameterization: d sample / d a = random_gamma_grad(a, sample)
    samples = out
    if log_space:  # d log(s) = ds / s; exp(log s) may round to 0: use the smallest float instead
        samples = jnp.exp(out)
        tiny = jnp.full_like(samples, jnp.finfo(samples.dtype).tiny)
        samples = jnp.where(samples == 0, tiny, samples)
        return None, ct * (lax.random_gamma_grad(a, samples) / samples)
    return None, ct * lax.random_gamma_grad(a, samples)


defnovjp(
    "igamma_grad_a",
    "Differentiation rule for 'igamma_grad_a' not implemented: igamma_grad_a (the derivative of igamma "
    "in its shape parameter a) has no derivative, in JAX either, "
    "so igamma/igammac can be differentiated in a only once (second derivatives in x are fine: the "
    "a-derivative is then unused and dropped).\n  fix: differentiate igamma in a once only, or wrap it in "
    "jax.custom_jvp with the second derivative you need.",
)
defnovjp(
    "random_gamma_grad",
    "Differentiation rule for 'random_gamma_grad' not implemented: random_gamma_grad (the derivative of a "
    "gamma sample in its shape parameter) has no derivative, in JAX either: gamma samples can be "
    "differentiated once.\n  fix: differentiate the sampler once only.",
)

defnovjp(
    "zeta",
    "Differentiation rule for 'zeta' not implemented: lax.zeta (the Hurwitz zeta function) has no "
    "derivative rule in JAX either.\n"
    "  fix: use jax.scipy.special.zeta, whose custom derivative funcgrad follows.",
)

# bit reinterpretation: piecewise constant in the value, zero derivative as in JAX
defzero("bitcast_convert_type")
