"""VJP rules for elementwise primitives: arithmetic, transcendental, comparisons.

Conventions match JAX's own JVP rules, including at kinks and ties: ``abs`` at 0
passes the cotangent through, ``max``/``min`` split it evenly between tied
operands, ``pow`` with an integer exponent 0 has zero derivative.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
from jax import lax

from funcgrad.core.registry import defstop, defvjp, defzero


def _select_zero(pred, x):
    """``x`` where ``pred``, else 0 (the selected branch carries no NaN from the other)."""
    return jnp.where(pred, x, jnp.zeros_like(x))


# ------------------------------------------------------------------ arithmetic


@defvjp("add")
def add_vjp(ct, x, y, *, out, **params):
    """ct_x = ct, ct_y = ct"""
    return ct, ct


defvjp("add_any", add_vjp)


@defvjp("sub")
def sub_vjp(ct, x, y, *, out, **params):
    """ct_x = ct, ct_y = -ct"""
    return ct, -ct


@defvjp("mul")
def mul_vjp(ct, x, y, *, out, out_dtype=None, **params):
    """ct_x = ct · y, ct_y = ct · x"""
    if out_dtype is not None:
        # lax.mul(x, y, out_dtype=...) takes operands of different dtypes; JAX's transpose multiplies
        # with out_dtype set to the operand's own dtype (inputs cast before the product), so do we
        ct_x = lax.mul(ct, y, out_dtype=jnp.result_type(x)) if _inexact(x) else None
        ct_y = lax.mul(x, ct, out_dtype=jnp.result_type(y)) if _inexact(y) else None
        return ct_x, ct_y
    return ct * y, ct * x


def _inexact(x):
    return jnp.issubdtype(jnp.result_type(x), jnp.inexact)


@defvjp("div")
def div_vjp(ct, x, y, *, out, **params):
    """ct_x = ct / y, ct_y = -ct · x / y²"""
    # d(x/y) = dx/y - x dy / y^2
    return ct / y, -ct * x * lax.integer_pow(y, -2)


@defvjp("neg")
def neg_vjp(ct, x, *, out, **params):
    """ct_x = -ct"""
    return (-ct,)


@defvjp("max")
def max_vjp(ct, x, y, *, out, **params):
    """ct_x = ct where x > y, ct_y = ct where y > x; ties split it in half"""
    # ties split the cotangent evenly, as JAX does
    return ct * _balanced_eq(x, out, y), ct * _balanced_eq(y, out, x)


@defvjp("min")
def min_vjp(ct, x, y, *, out, **params):
    """ct_x = ct where x < y, ct_y = ct where y < x; ties split it in half"""
    return ct * _balanced_eq(x, out, y), ct * _balanced_eq(y, out, x)


def _balanced_eq(x, z, y):
    # 1 where x alone attains z, 1/2 where x and y both do, 0 otherwise
    one, zero = jnp.ones_like(z), jnp.zeros_like(z)
    return jnp.where(x == z, one, zero) / jnp.where(y == z, 2 * one, one)


@defvjp("integer_pow")
def integer_pow_vjp(ct, x, *, out, y, **params):
    """ct_x = ct · n · x^(n-1)"""
    # d x^n = n x^(n-1)
    if y == 0:
        return (jnp.zeros_like(ct),)
    return (ct * (y * lax.integer_pow(x, y - 1)),)


@defvjp("square")
def square_vjp(ct, x, *, out, **params):
    """ct_x = ct · 2x"""
    return (ct * (2 * x),)


@defvjp("pow")
def pow_vjp(ct, x, y, *, out, **params):
    """ct_x = ct · y · x^(y-1), ct_y = ct · log(x) · x^y"""
    # d x^y = y x^(y-1) dx + log(x) x^y dy; an integer exponent 0 has derivative 0
    if jnp.issubdtype(jnp.result_type(y), jnp.integer):
        yf = jnp.asarray(y).astype(jnp.result_type(x))
        jac_x = jnp.where(yf == 0, jnp.zeros_like(yf), yf * jnp.power(x, yf - 1))
        return ct * jac_x, None
    jac_x = y * jnp.power(x, y - 1)
    safe_x = jnp.where(x == 0, jnp.ones_like(x), x)
    return ct * jac_x, ct * (jnp.log(safe_x) * out)


@defvjp("atan2")
def atan2_vjp(ct, x, y, *, out, **params):
    """ct_x = ct · y / (x² + y²), ct_y = -ct · x / (x² + y²)"""
    # atan2(x, y): d/dx = y / (x^2 + y^2), d/dy = -x / (x^2 + y^2)
    denom = x * x + y * y
    return ct * (y / denom), ct * (-x / denom)


@defvjp("rem")
def rem_vjp(ct, x, y, *, out, **params):
    """ct_x = ct, ct_y = -ct · trunc(x / y)"""
    # rem(x, y) = x - y * trunc(x / y)
    q = x / y
    return ct, -ct * (jnp.sign(q) * jnp.floor(jnp.abs(q)))


@defvjp("clamp")
def clamp_vjp(ct, lo, x, hi, *, out, **params):
    """ct_x = ct where lo < x < hi; ct_lo = ct where lo > x, ct_hi = ct where hi < x"""
    zeros = jnp.zeros_like(ct)
    ct_lo = jnp.where((lo > x) & (lo < hi), ct, zeros)
    ct_x = jnp.where((x > lo) & (x < hi), ct, zeros)
    ct_hi = jnp.where(hi < x, ct, zeros)
    return ct_lo, ct_x, ct_hi


@defvjp("abs")
def abs_vjp(ct, x, *, out, **params):
    """ct_x = ct · sign(x), with +1 at x = 0 (ct · conj(z)/|z| for complex z)"""
    if jnp.iscomplexobj(x):
        # d|z| = re(conj(z) dz / |z|); transposed: ct conj(z) / |z|, with |z| = 0 read as 1 (JAX's choice)
        safe = jnp.where(out == 0, jnp.ones_like(out), out).astype(x.dtype)
        return (ct.astype(x.dtype) * (jnp.conj(x) / safe),)
    # d|x| = sign(x), with +1 at x == 0 (JAX's convention)
    return (jnp.where(x >= 0, ct, -ct),)


@defvjp("sign")
def sign_vjp(ct, x, *, out, **params):
    """ct_x = 0 (sign is piecewise constant)"""
    return (None,)


# ------------------------------------------------------------- transcendental


@defvjp("exp")
def exp_vjp(ct, x, *, out, **params):
    """ct_x = ct · exp(x)"""
    return (ct * out,)


@defvjp("exp2")
def exp2_vjp(ct, x, *, out, **params):
    """ct_x = ct · 2^x · log(2)"""
    return (ct * (out * math.log(2.0)),)


@defvjp("log")
def log_vjp(ct, x, *, out, **params):
    """ct_x = ct / x"""
    return (ct / x,)


@defvjp("log1p")
def log1p_vjp(ct, x, *, out, **params):
    """ct_x = ct / (1 + x)"""
    return (ct / (1 + x),)


def _highest(accuracy) -> bool:
    """Whether a transcendental op asked for ``accuracy=lax.AccuracyMode.HIGHEST`` (JAX >= 0.6 has the param):
    JAX's JVP then uses another formula, more accurate than the one from the output."""
    return accuracy is not None and accuracy is lax.AccuracyMode.HIGHEST


@defvjp("expm1")
def expm1_vjp(ct, x, *, out, accuracy=None, **params):
    """ct_x = ct · (expm1(x) + 1)"""
    if _highest(accuracy):
        return (ct * lax.exp(x, accuracy=accuracy),)
    return (ct * (out + 1),)


@defvjp("sqrt")
def sqrt_vjp(ct, x, *, out, **params):
    """ct_x = ct / (2 · sqrt(x))"""
    return (ct / (2 * out),)


@defvjp("rsqrt")
def rsqrt_vjp(ct, x, *, out, **params):
    """ct_x = ct · (-1/2) · rsqrt(x) / x"""
    # d x^(-1/2) = -1/2 x^(-3/2) = -1/2 rsqrt(x) / x
    return (ct * (-0.5 * (out / x)),)


@defvjp("cbrt")
def cbrt_vjp(ct, x, *, out, **params):
    """ct_x = ct · (1/3) · cbrt(x)^(-2)"""
    return (ct * ((1.0 / 3.0) * lax.integer_pow(out, -2)),)


@defvjp("logistic")
def logistic_vjp(ct, x, *, out, accuracy=None, **params):
    """ct_x = ct · σ(x) · (1 - σ(x))"""
    # d sigma = sigma (1 - sigma) = sigma(x) sigma(-x)
    if _highest(accuracy):
        return (ct * (out * lax.logistic(-x)),)
    return (ct * (out * (1 - out)),)


@defvjp("tanh")
def tanh_vjp(ct, x, *, out, accuracy=None, **params):
    """ct_x = ct · (1 - tanh(x)²)"""
    # d tanh = 1 - tanh^2 = (1 + tanh)(1 - tanh) = 4 sigma(2x) sigma(-2x). JAX's JVP is
    # (t + t tanh) (1 - tanh); its transpose, the VJP, is c + c tanh with c = ct (1 - tanh): the same
    # operations in the same order, so the same rounding
    if _highest(accuracy):
        return (ct * (4 * (lax.logistic(2 * x, accuracy=accuracy) * lax.logistic(-2 * x, accuracy=accuracy))),)
    c = ct * (1 - out)
    return (c + c * out,)


# sin and cos: ct, x and the result share one shape and dtype, so lax's primitives apply directly
# (binding them costs a fraction of jnp's jitted wrappers when the backward pass is traced)
@defvjp("sin")
def sin_vjp(ct, x, *, out, **params):
    """ct_x = ct · cos(x)"""
    return (lax.mul(ct, lax.cos(x)),)


@defvjp("cos")
def cos_vjp(ct, x, *, out, **params):
    """ct_x = -ct · sin(x)"""
    return (lax.mul(lax.neg(ct), lax.sin(x)),)


@defvjp("tan")
def tan_vjp(ct, x, *, out, **params):
    """ct_x = ct · (1 + tan(x)²)"""
    return (ct * (1 + out * out),)


@defvjp("asin")
def asin_vjp(ct, x, *, out, **params):
    """ct_x = ct / sqrt(1 - x²)"""
    return (ct * lax.rsqrt(1 - x * x),)


@defvjp("acos")
def acos_vjp(ct, x, *, out, **params):
    """ct_x = -ct / sqrt(1 - x²)"""
    return (-ct * lax.rsqrt(1 - x * x),)


@defvjp("atan")
def atan_vjp(ct, x, *, out, **params):
    """ct_x = ct / (1 + x²)"""
    return (ct / (1 + x * x),)


@defvjp("sinh")
def sinh_vjp(ct, x, *, out, **params):
    """ct_x = ct · cosh(x)"""
    return (ct * jnp.cosh(x),)


@defvjp("cosh")
def cosh_vjp(ct, x, *, out, **params):
    """ct_x = ct · sinh(x)"""
    return (ct * jnp.sinh(x),)


@defvjp("asinh")
def asinh_vjp(ct, x, *, out, **params):
    """ct_x = ct / sqrt(x² + 1)"""
    return (ct * lax.rsqrt(x * x + 1),)


@defvjp("acosh")
def acosh_vjp(ct, x, *, out, **params):
    """ct_x = ct / sqrt((x - 1)(x + 1))"""
    return (ct * lax.rsqrt((x - 1) * (x + 1)),)


@defvjp("atanh")
def atanh_vjp(ct, x, *, out, **params):
    """ct_x = ct / ((1 + x)(1 - x))"""
    return (ct / (1 + x) / (1 - x),)


@defvjp("erf")
def erf_vjp(ct, x, *, out, **params):
    """ct_x = ct · (2/√π) · exp(-x²)"""
    # d erf = 2/sqrt(pi) exp(-x^2)
    return (ct * ((2 / math.sqrt(math.pi)) * jnp.exp(-x * x)),)


@defvjp("erfc")
def erfc_vjp(ct, x, *, out, **params):
    """ct_x = -ct · (2/√π) · exp(-x²)"""
    return (ct * ((-2 / math.sqrt(math.pi)) * jnp.exp(-x * x)),)


@defvjp("erf_inv")
def erf_inv_vjp(ct, x, *, out, **params):
    """ct_x = ct · (√π/2) · exp(erfinv(x)²)"""
    # d erfinv = sqrt(pi)/2 exp(erfinv(x)^2)
    return (ct * ((math.sqrt(math.pi) / 2) * jnp.exp(out * out)),)


@defvjp("lgamma")
def lgamma_vjp(ct, x, *, out, **params):
    """ct_x = ct · digamma(x)"""
    return (ct * lax.digamma(x),)


@defvjp("digamma")
def digamma_vjp(ct, x, *, out, **params):
    """ct_x = ct · polygamma(1, x)"""
    return (ct * lax.polygamma(jnp.ones_like(x), x),)


# ------------------------------------------------------------------ selection


@defvjp("select_n")
def select_n_vjp(ct, which, *cases, out, **params):
    """ct_case_k = ct where which == k, else 0; which gets none"""
    # each case receives the cotangent where it was selected, zero elsewhere
    zeros = jnp.zeros_like(ct)
    if len(cases) == 1:
        return None, ct
    cts = []
    for i in range(len(cases)):
        branches = [zeros] * len(cases)
        branches[i] = ct
        cts.append(lax.select_n(which, *branches))
    return None, *cts


# ----------------------------------------------- zero by definition (no gradient)

defzero(
    "eq", "ne", "lt", "le", "gt", "ge",
    "and", "or", "not", "xor",
    "floor", "ceil", "round", "is_finite",
    "shift_left", "shift_right_logical", "shift_right_arithmetic",
    "population_count", "clz",
)  # fmt: skip

# lax.stop_gradient: its output is a constant to differentiation (the sweep never makes it active)
defstop("stop_gradient")
