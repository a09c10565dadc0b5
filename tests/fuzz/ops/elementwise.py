"""Elementwise operations: arithmetic, transcendental, jax.nn activations, selections, casts."""

from __future__ import annotations

import math

from tests.fuzz.ops.table import (
    OPS,
    Op,
    _broadcasts,
    _bshape,
    _prepare,
    _result_dtype,
    op,
)
from tests.fuzz.programs import Builder, Val

# ------------------------------------------------------------------ elementwise

# name: (template, domain of the operand, bound of the result given the operand's bound)
UNARY = {
    "neg": ("-{x}", "any", lambda m: m),
    "sin": ("jnp.sin({x})", "any", lambda m: 1.0),
    "cos": ("jnp.cos({x})", "any", lambda m: 1.0),
    "tan": ("jnp.tan({x})", "tan", lambda m: 2.6),
    "tanh": ("jnp.tanh({x})", "any", lambda m: 1.0),
    "exp": ("jnp.exp({x})", "small", math.exp),
    "exp2": ("jnp.exp2({x})", "small", lambda m: 2.0**m),
    "expm1": ("jnp.expm1({x})", "small", math.exp),
    "log": ("jnp.log({x})", "pos", lambda m: max(1.4, math.log(m))),
    "log1p": ("jnp.log1p({x})", "pos", math.log1p),
    "sqrt": ("jnp.sqrt({x})", "pos", math.sqrt),
    "rsqrt": ("lax.rsqrt({x})", "pos", lambda m: 2.0),
    "cbrt": ("jnp.cbrt({x})", "pos", lambda m: m ** (1 / 3)),
    "square": ("jnp.square({x})", "any", lambda m: m * m),
    "abs": ("jnp.abs({x})", "any", lambda m: m),
    "sign": ("jnp.sign({x})", "any", lambda m: 1.0),
    "sigmoid": ("jax.nn.sigmoid({x})", "any", lambda m: 1.0),
    "arctan": ("jnp.arctan({x})", "any", lambda m: 1.6),
    "sinh": ("jnp.sinh({x})", "small", math.sinh),
    "cosh": ("jnp.cosh({x})", "small", math.cosh),
    "arcsinh": ("jnp.arcsinh({x})", "any", math.asinh),
    "arccosh": ("jnp.arccosh({x})", "one", math.acosh),
    "arctanh": ("jnp.arctanh({x})", "unit", lambda m: 1.5),
    "arcsin": ("jnp.arcsin({x})", "unit", lambda m: 1.2),
    "arccos": ("jnp.arccos({x})", "unit", lambda m: 2.7),
    "erf": ("jax.scipy.special.erf({x})", "any", lambda m: 1.0),
    "erfc": ("jax.scipy.special.erfc({x})", "any", lambda m: 2.0),
    "erfinv": ("jax.scipy.special.erfinv({x})", "unit", lambda m: 1.2),
    "lgamma": ("jax.scipy.special.gammaln({x})", "pos", lambda m: max(1.3, m * math.log(m + 1))),
    "digamma": ("jax.scipy.special.digamma({x})", "pos", lambda m: max(4.3, math.log(m + 1))),
    "pow2": ("{x} ** 2", "any", lambda m: m * m),
    "pow3": ("{x} ** 3", "small", lambda m: m**3),
    "pow_neg2": ("{x} ** -2", "pos", lambda m: 16.0),
    "pow_half": ("{x} ** 0.5", "pos", math.sqrt),
    "reciprocal": ("1.0 / {x}", "pos", lambda m: 4.0),
    "lax_integer_pow": ("lax.integer_pow({x}, 3)", "small", lambda m: m**3),
    "round": ("jnp.round({x})", "any", lambda m: m + 1),
    "floor": ("jnp.floor({x})", "any", lambda m: m + 1),
    "ceil": ("jnp.ceil({x})", "any", lambda m: m + 1),
    "relu": ("jax.nn.relu({x})", "any", lambda m: m),
    "relu6": ("jax.nn.relu6({x})", "any", lambda m: 6.0),
    "gelu": ("jax.nn.gelu({x})", "any", lambda m: m),
    "gelu_exact": ("jax.nn.gelu({x}, approximate=False)", "any", lambda m: m),
    "silu": ("jax.nn.silu({x})", "any", lambda m: m),
    "elu": ("jax.nn.elu({x})", "any", lambda m: m),
    "celu": ("jax.nn.celu({x})", "any", lambda m: m),
    "selu": ("jax.nn.selu({x})", "any", lambda m: 1.8 * m),
    "leaky_relu": ("jax.nn.leaky_relu({x}, 0.1)", "any", lambda m: m),
    "softplus": ("jax.nn.softplus({x})", "any", lambda m: m + 0.7),
    "log_sigmoid": ("jax.nn.log_sigmoid({x})", "any", lambda m: m + 0.7),
    "hard_tanh": ("jax.nn.hard_tanh({x})", "any", lambda m: 1.0),
    "sinc": ("jnp.sinc({x})", "any", lambda m: 1.0),
    "clip": ("jnp.clip({x}, -1.0, 1.5)", "any", lambda m: 1.5),
    "reduce_precision": ("lax.reduce_precision({x}, exponent_bits=8, mantissa_bits=7)", "any", lambda m: m * 1.01),
    "stop_gradient": ("lax.stop_gradient({x})", "any", lambda m: m),
    "optimization_barrier": ("lax.optimization_barrier({x})", "any", lambda m: m),
    "soft_clip": ("soft_clip({x})", "any", lambda m: 2.0),
    "clip_gradient": ("clip_gradient({x})", "any", lambda m: m),
}


def _unary(name: str, template: str, domain: str, bound) -> None:
    def build(b: Builder) -> Val | None:
        x = b.pick()
        if x is None:
            return None
        x = _prepare(b, x, domain)
        return b.emit(template.format(x=x.name), x.shape, x.dtype, bound(x.bound))

    OPS.append(Op(name, "elementwise", build, 2))


for _name, (_template, _domain, _bound) in UNARY.items():
    _unary(_name, _template, _domain, _bound)


@op("astype", "elementwise", 1)
def _astype(b: Builder):
    x = b.pick()
    to = "float32" if x.dtype == "float64" else "float64"
    return b.emit(f"{x.name}.astype(jnp.{to})", x.shape, to, x.bound)


# name: (template, domain of x, domain of y, bound of the result given the operands' bounds)
BINARY = {
    "add": ("{x} + {y}", "any", "any", lambda p, q: p + q),
    "sub": ("{x} - {y}", "any", "any", lambda p, q: p + q),
    "mul": ("{x} * {y}", "any", "any", lambda p, q: p * q),
    "div": ("{x} / {y}", "any", "pos", lambda p, q: p * 4.0),
    "maximum": ("jnp.maximum({x}, {y})", "any", "any", max),
    "minimum": ("jnp.minimum({x}, {y})", "any", "any", max),
    "power": ("jnp.power({x}, {y})", "pos", "small", lambda p, q: max(p * p, 16.0)),
    "arctan2": ("jnp.arctan2({x}, {y})", "any", "pos", lambda p, q: 1.6),
    "logaddexp": ("jnp.logaddexp({x}, {y})", "any", "any", lambda p, q: max(p, q) + 0.7),
    "fmod": ("jnp.fmod({x}, {y})", "any", "pos", lambda p, q: p),
    "squared_difference": ("({x} - {y}) ** 2", "small", "small", lambda p, q: (p + q) ** 2),
    "where_greater": ("jnp.where({x} > {y}, {x}, {y})", "any", "any", max),
    "scaled_sin": ("scaled_sin({x}, {y})", "any", "any", lambda p, q: q),
}
# lax binary operations: same dtype, same shape or rank 0
LAX_BINARY = {
    "lax_add": ("lax.add({x}, {y})", "any", "any", lambda p, q: p + q),
    "lax_sub": ("lax.sub({x}, {y})", "any", "any", lambda p, q: p + q),
    "lax_mul": ("lax.mul({x}, {y})", "any", "any", lambda p, q: p * q),
    "lax_div": ("lax.div({x}, {y})", "any", "pos", lambda p, q: p * 4.0),
    "lax_max": ("lax.max({x}, {y})", "any", "any", max),
    "lax_min": ("lax.min({x}, {y})", "any", "any", max),
    "lax_pow": ("lax.pow({x}, {y})", "pos", "small", lambda p, q: max(p * p, 16.0)),
    "lax_atan2": ("lax.atan2({x}, {y})", "any", "pos", lambda p, q: 1.6),
    "lax_rem": ("lax.rem({x}, {y})", "any", "pos", lambda p, q: p),
}


def _binary(name: str, template: str, dx: str, dy: str, bound, same_type: bool) -> None:
    def build(b: Builder) -> Val | None:
        x = b.pick()
        if x is None:
            return None
        y = b.partner(x, same_type=same_type)
        if name == "scaled_sin" and (y.shape != x.shape or y.dtype != x.dtype):
            return None  # a custom_vjp's bwd returns cotangents shaped like its inputs: no broadcasting
        x, y = _prepare(b, x, dx), _prepare(b, y, dy)
        if same_type and y.dtype == "weak":
            y = Val(f"jnp.{x.dtype}({y.name})", (), x.dtype, y.bound)
        return b.emit(template.format(x=x.name, y=y.name), _bshape(x, y), _result_dtype(x, y), bound(x.bound, y.bound))

    OPS.append(Op(name, "elementwise", build, 2))


for _name, (_template, _dx, _dy, _bound) in BINARY.items():
    _binary(_name, _template, _dx, _dy, _bound, same_type=False)
for _name, (_template, _dx, _dy, _bound) in LAX_BINARY.items():
    _binary(_name, _template, _dx, _dy, _bound, same_type=True)


@op("where", "elementwise")
def _where(b: Builder):
    x = b.pick()
    c, y = b.partner(x), b.partner(x)
    cond = f"{c.name} > 0" if c.dtype != "weak" else f"{x.name} > {c.name}"
    return b.emit(
        f"jnp.where({cond}, {x.name}, {y.name})", _bshape(x, c, y), _result_dtype(x, y), max(x.bound, y.bound)
    )


@op("clamp", "elementwise")
def _clamp(b: Builder):
    x = b.pick()
    lo = b.partner(x, same_type=True)
    lo = Val(f"jnp.{x.dtype}({lo.name})", (), x.dtype, lo.bound) if lo.dtype == "weak" else lo
    if lo.shape != x.shape and lo.shape != ():
        return None
    return b.emit(f"lax.clamp({lo.name}, {x.name}, {lo.name} + 1.0)", x.shape, x.dtype, max(x.bound, lo.bound + 1))


@op("clip_arrays", "elementwise")
def _clip_arrays(b: Builder):
    x = b.pick()
    lo = b.partner(x)
    return b.emit(
        f"jnp.clip({x.name}, {lo.name}, {lo.name} + 0.5)", _bshape(x, lo), _result_dtype(x, lo), lo.bound + 0.5
    )


@op("mul_int", "elementwise", 1)
def _mul_int(b: Builder):
    x = b.pick()
    i = [v for v in b.ints if _broadcasts(v.shape, x.shape)]
    if not i:
        return None
    i = b.draw.choice(i)
    return b.emit(f"{x.name} * {i.name}.astype(jnp.{x.dtype})", _bshape(x, i), x.dtype, x.bound * 3)
