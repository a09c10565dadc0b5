"""The operations random programs are built from: one ``Op`` per jax.numpy / jax.lax / jax.nn call.

The table is data. Each ``Op`` has a name, a family and a ``build(builder)``
that appends one line (or a few) to the program and returns the new value, or
``None`` when it does not apply to the values at hand. ``enabled_ops()``
probes each operation once with funcgrad and drops those that hit a primitive
without a VJP rule (``UnsupportedPrimitiveError``), so operations switch
themselves on as rules land; ``disabled_ops()`` says which are off and why.
``DISABLED`` switches an operation off by hand, with the reason.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable

import jax
import numpy as np

from tests.fuzz.programs import FLOATS, LIMIT, MAX_SIZE, Builder, RandomDraw, Val, _num, generate

# operation name -> why it is switched off by hand (a funcgrad bug being fixed, a JAX limitation, ...)
DISABLED: dict[str, str] = {}


@dataclasses.dataclass(frozen=True)
class Op:
    """One operation the generator can apply."""

    name: str
    family: str
    build: Callable[[Builder], Val | None]
    weight: int = 2


OPS: list[Op] = []


def op(name: str, family: str, weight: int = 2):
    """Register ``build`` as the operation ``name`` (a decorator)."""

    def register(build):
        OPS.append(Op(name, family, build, weight))
        return build

    return register


def _result_dtype(*vals: Val) -> str:
    # jnp promotion between float32 and float64 arrays; Python scalars ("weak") take the other's dtype
    dts = [v.dtype for v in vals if v.dtype != "weak"]
    return "float64" if "float64" in dts else (dts[0] if dts else "float32")


def _bshape(*vals: Val) -> tuple[int, ...]:
    return tuple(np.broadcast_shapes(*(v.shape for v in vals)))


def _prepare(b: Builder, x: Val, domain: str) -> Val:
    """``x`` moved into an operation's domain (a Python scalar is moved directly)."""
    if x.dtype == "weak":
        c = float(x.name)
        value = {
            "any": c,
            "small": max(-2.0, min(2.0, c)),
            "pos": c * c + 0.25,
            "one": c * c + 1.25,
            "unit": 0.9 * math.tanh(c),
            "tan": 1.2 * math.tanh(c),
        }[domain]
        return Val(_num(value), (), "weak", abs(value))
    if domain == "any":
        return b.bounded(x, LIMIT)
    if domain == "small":
        return b.bounded(x, 2.0)
    if domain == "pos":
        return b.positive(x)
    if domain == "one":
        return b.positive(x, low=1.25)
    if domain == "unit":
        return b.unit(x)
    if domain == "tan":
        return b.unit(x, 1.2)
    raise ValueError(domain)


def _shape_of(b: Builder, expr: str, operands: dict[str, Val]):
    """(shape, dtype) of ``expr`` evaluated on ``operands``, computed abstractly by JAX."""
    from tests.conftest import x64
    from tests.fuzz.programs import namespace

    names = list(operands)
    structs = [jax.ShapeDtypeStruct(operands[n].shape, np.dtype(operands[n].dtype)) for n in names]
    fn = eval(f"lambda {', '.join(names)}: {expr}", namespace())  # noqa: S307 (generated test code)
    with x64():
        out = jax.eval_shape(fn, *structs)
    return tuple(out.shape), str(out.dtype)


def _emit_auto(b: Builder, expr: str, operands: list[Val], bound: float) -> Val | None:
    """Emit ``expr`` with its type computed by ``jax.eval_shape``; None if too large."""
    ops = {v.name: v for v in operands if v.dtype != "weak" and v.name.isidentifier()}
    shape, dtype = _shape_of(b, expr, ops)
    if int(np.prod(shape, dtype=np.int64)) > MAX_SIZE or len(shape) > 4:
        return None
    return b.emit(expr, shape, dtype, bound)


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
    x, lo = b.pick(), None
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


def _broadcasts(a, b) -> bool:
    try:
        np.broadcast_shapes(a, b)
        return True
    except ValueError:
        return False


# --------------------------------------------------------------------- reduce


def _axes(b: Builder, x: Val, nonempty: bool):
    """An ``axis=`` argument (None, an int or a tuple) and the reduced axes."""
    kind = b.draw.choice(("one", "none", "tuple"))
    if kind == "none" or x.ndim == 0:
        axes = tuple(range(x.ndim))
        arg = "None"
    elif kind == "one":
        a = b.draw.integer(0, x.ndim - 1)
        axes, arg = (a,), str(a - x.ndim if b.draw.boolean() else a)
    else:
        axes = tuple(a for a in range(x.ndim) if b.draw.boolean()) or (0,)
        arg = repr(axes)
    if nonempty and any(x.shape[a] == 0 for a in axes):
        return None
    return arg, axes


# name: (template with {x}, {axis}, {keep}; needs nonempty reduced axes; bound given operand bound and count)
REDUCE = {
    "sum": ("jnp.sum({x}, axis={axis}, keepdims={keep})", False, lambda m, n: m * max(n, 1)),
    "mean": ("jnp.mean({x}, axis={axis}, keepdims={keep})", True, lambda m, n: m),
    "max": ("jnp.max({x}, axis={axis}, keepdims={keep})", True, lambda m, n: m),
    "min": ("jnp.min({x}, axis={axis}, keepdims={keep})", True, lambda m, n: m),
    "prod": ("jnp.prod({x}, axis={axis}, keepdims={keep})", False, lambda m, n: max(1.0, m) ** max(n, 1)),
    "var": ("jnp.var({x}, axis={axis}, keepdims={keep})", True, lambda m, n: m * m),
    "logsumexp": ("jax.nn.logsumexp({x}, axis={axis}, keepdims={keep})", True, lambda m, n: m + math.log(n)),
    "norm": (
        "jnp.sqrt(jnp.sum({x} * {x}, axis={axis}, keepdims={keep}) + 0.25)",
        False,
        lambda m, n: m * math.sqrt(max(n, 1)) + 0.5,
    ),
    "linalg_norm": ("jnp.linalg.norm({x}, axis={axis}, keepdims={keep})", False, lambda m, n: m * math.sqrt(max(n, 1))),
}


def _reduce(name: str, template: str, nonempty: bool, bound) -> None:
    def build(b: Builder) -> Val | None:
        x = b.pick()
        if name in ("prod",):
            x = b.bounded(x, 1.0)
        got = _axes(b, x, nonempty)
        if got is None:
            return None
        arg, axes = got
        if name == "linalg_norm" and (arg == "None" or len(axes) > 2):
            arg, axes = ("-1", (x.ndim - 1,)) if x.ndim else ("None", ())
        keep = b.draw.boolean()
        shape = tuple((1 if keep else None) if a in axes else d for a, d in enumerate(x.shape))
        shape = tuple(d for d in shape if d is not None)
        n = int(np.prod([x.shape[a] for a in axes], dtype=np.int64))
        return b.emit(template.format(x=x.name, axis=arg, keep=keep), shape, x.dtype, bound(x.bound, n))

    OPS.append(Op(name, "reduce", build, 2))


for _name, (_template, _nonempty, _bound) in REDUCE.items():
    _reduce(_name, _template, _nonempty, _bound)


@op("softmax", "reduce")
def _softmax(b: Builder):
    x = b.pick(lambda v: v.ndim >= 1)
    if x is None or x.shape[-1] == 0:
        return None
    return b.emit(f"jax.nn.softmax({b.bounded(x, LIMIT).name}, axis=-1)", x.shape, x.dtype, 1.0)


@op("log_softmax", "reduce")
def _log_softmax(b: Builder):
    x = b.pick(lambda v: v.ndim >= 1)
    if x is None or x.shape[-1] == 0:
        return None
    x = b.bounded(x, LIMIT)
    return b.emit(f"jax.nn.log_softmax({x.name}, axis=-1)", x.shape, x.dtype, 2 * x.bound + math.log(x.shape[-1]))


@op("standardize", "reduce", 1)
def _standardize(b: Builder):
    x = b.pick(lambda v: v.ndim >= 1 and v.shape[-1] > 0)
    if x is None:
        return None
    x = b.bounded(x, LIMIT)
    return b.emit(f"jax.nn.standardize({x.name}, axis=-1, epsilon=0.25)", x.shape, x.dtype, 4 * x.bound)


# ----------------------------------------------------------------- cumulative

CUMULATIVE = {
    "cumsum": ("jnp.cumsum({x}, axis={a})", lambda m, n: m * max(n, 1)),
    "cumprod": ("jnp.cumprod({x}, axis={a})", lambda m, n: 1.0),
    "cummax": ("lax.cummax({x}, axis={a}, reverse={r})", lambda m, n: m),
    "cummin": ("lax.cummin({x}, axis={a}, reverse={r})", lambda m, n: m),
    "cumlogsumexp": ("lax.cumlogsumexp({x}, axis={a}, reverse={r})", lambda m, n: m + math.log(max(n, 1))),
    "lax_cumsum_reverse": ("lax.cumsum({x}, axis={a}, reverse=True)", lambda m, n: m * max(n, 1)),
    "diff": ("jnp.diff({x}, axis={a})", lambda m, n: 2 * m),
}


def _cumulative(name: str, template: str, bound) -> None:
    def build(b: Builder) -> Val | None:
        x = b.pick(lambda v: v.ndim >= 1)
        if x is None:
            return None
        if name == "cumprod":
            x = b.bounded(x, 1.0)
        a = b.draw.integer(0, x.ndim - 1)
        shape = list(x.shape)
        if name == "diff":
            if shape[a] == 0:
                return None
            shape[a] -= 1
        return b.emit(template.format(x=x.name, a=a, r=b.draw.boolean()), shape, x.dtype, bound(x.bound, x.shape[a]))

    OPS.append(Op(name, "cumulative", build, 1))


for _name, (_template, _bound) in CUMULATIVE.items():
    _cumulative(_name, _template, _bound)


# ---------------------------------------------------------------------- shape


@op("reshape_flat", "shape")
def _reshape_flat(b: Builder):
    x = b.pick()
    return b.emit(f"{x.name}.reshape(-1)" if x.size else f"{x.name}.reshape({x.size})", (x.size,), x.dtype, x.bound)


@op("reshape_merge", "shape")
def _reshape_merge(b: Builder):
    x = b.pick(lambda v: v.ndim >= 2)
    if x is None:
        return None
    i = b.draw.integer(0, x.ndim - 2)
    shape = (*x.shape[:i], x.shape[i] * x.shape[i + 1], *x.shape[i + 2 :])
    return b.emit(f"jnp.reshape({x.name}, {shape!r})", shape, x.dtype, x.bound)


@op("reshape_split", "shape")
def _reshape_split(b: Builder):
    x = b.pick(lambda v: any(d % 2 == 0 and d > 0 for d in v.shape))
    if x is None:
        return None
    i = b.draw.choice([a for a, d in enumerate(x.shape) if d % 2 == 0 and d > 0])
    shape = (*x.shape[:i], 2, x.shape[i] // 2, *x.shape[i + 1 :])
    return b.emit(f"{x.name}.reshape{shape!r}", shape, x.dtype, x.bound)


@op("transpose", "shape")
def _transpose(b: Builder):
    x = b.pick(lambda v: v.ndim >= 2)
    if x is None:
        return None
    perm = list(range(x.ndim))
    for i in range(x.ndim - 1, 0, -1):  # Fisher-Yates with drawn choices
        j = b.draw.integer(0, i)
        perm[i], perm[j] = perm[j], perm[i]
    kind = b.draw.choice(("transpose", "T", "moveaxis"))
    if kind == "T":
        return b.emit(f"{x.name}.T", x.shape[::-1], x.dtype, x.bound)
    if kind == "moveaxis":
        perm = [a for a in range(x.ndim) if a != 0] + [0]
        return b.emit(f"jnp.moveaxis({x.name}, 0, -1)", tuple(x.shape[p] for p in perm), x.dtype, x.bound)
    return b.emit(f"jnp.transpose({x.name}, {tuple(perm)!r})", tuple(x.shape[p] for p in perm), x.dtype, x.bound)


@op("expand_dims", "shape", 1)
def _expand_dims(b: Builder):
    x = b.pick(lambda v: v.ndim < 4)
    if x is None:
        return None
    k = b.draw.integer(0, x.ndim)
    return b.emit(f"jnp.expand_dims({x.name}, {k})", (*x.shape[:k], 1, *x.shape[k:]), x.dtype, x.bound)


@op("squeeze", "shape", 1)
def _squeeze(b: Builder):
    x = b.pick(lambda v: 1 in v.shape)
    if x is None:
        return None
    k = b.draw.choice([a for a, d in enumerate(x.shape) if d == 1])
    return b.emit(f"jnp.squeeze({x.name}, axis={k})", x.shape[:k] + x.shape[k + 1 :], x.dtype, x.bound)


@op("broadcast_to", "shape")
def _broadcast_to(b: Builder):
    x = b.pick(lambda v: v.ndim < 4)
    if x is None:
        return None
    shape = tuple(b.draw.choice((1, 2, 3)) if d == 1 else d for d in x.shape)
    if b.draw.boolean():
        shape = (b.draw.integer(1, 3), *shape)
    if int(np.prod(shape)) > MAX_SIZE:
        return None
    how = b.draw.choice(("jnp", "lax"))
    if how == "lax" and shape[len(shape) - x.ndim :] == x.shape:
        dims = tuple(range(len(shape) - x.ndim, len(shape)))
        return b.emit(f"lax.broadcast_in_dim({x.name}, {shape!r}, {dims!r})", shape, x.dtype, x.bound)
    return b.emit(f"jnp.broadcast_to({x.name}, {shape!r})", shape, x.dtype, x.bound)


@op("slice", "shape", 3)
def _slice(b: Builder):
    x = b.pick(lambda v: v.ndim >= 1)
    if x is None:
        return None
    a = b.draw.integer(0, x.ndim - 1)
    n = x.shape[a]
    start, stop = b.draw.integer(0, n), b.draw.integer(0, n)
    step = b.draw.choice((1, 1, 2, -1, 3))
    if step < 0:
        start, stop = max(start, stop), min(start, stop)
        sl = f"{start}:{'' if stop == 0 else stop}:{step}"
        m = len(range(n)[slice(start, None if stop == 0 else stop, step)])
    else:
        start, stop = min(start, stop), max(start, stop)
        sl = f"{start}:{stop}:{step}"
        m = len(range(start, stop, step))
    idx = ", ".join([":"] * a + [sl])
    return b.emit(f"{x.name}[{idx}]", (*x.shape[:a], m, *x.shape[a + 1 :]), x.dtype, x.bound)


@op("lax_slice", "shape")
def _lax_slice(b: Builder):
    x = b.pick(lambda v: v.ndim >= 1)
    if x is None:
        return None
    starts, limits, strides, shape = [], [], [], []
    for d in x.shape:
        s = b.draw.integer(0, d)
        e = b.draw.integer(s, d)
        st = b.draw.integer(1, 2)
        starts.append(s)
        limits.append(e)
        strides.append(st)
        shape.append(len(range(s, e, st)))
    return b.emit(
        f"lax.slice({x.name}, {tuple(starts)!r}, {tuple(limits)!r}, {tuple(strides)!r})", shape, x.dtype, x.bound
    )


@op("index_int", "shape")
def _index_int(b: Builder):
    x = b.pick(lambda v: v.ndim >= 1 and v.shape[0] > 0)
    if x is None:
        return None
    i = b.draw.integer(-x.shape[0], x.shape[0] - 1)
    return b.emit(f"{x.name}[{i}]", x.shape[1:], x.dtype, x.bound)


@op("flip", "shape")
def _flip(b: Builder):
    x = b.pick(lambda v: v.ndim >= 1)
    if x is None:
        return None
    a = b.axis(x)
    return b.emit(f"jnp.flip({x.name}, axis={a})", x.shape, x.dtype, x.bound)


def _same_but(b: Builder, x: Val, axis: int | None) -> Val:
    """A pool value with ``x``'s shape (except along ``axis``), or ``x`` itself (a fan-out)."""
    y = b.pick(
        lambda v: v.ndim == x.ndim and all(d == e or a == axis for a, (d, e) in enumerate(zip(v.shape, x.shape)))
    )
    return y if y is not None and b.draw.integer(0, 3) else x


@op("concatenate", "shape", 3)
def _concatenate(b: Builder):
    x = b.pick(lambda v: v.ndim >= 1)
    if x is None:
        return None
    a = b.draw.integer(0, x.ndim - 1)
    y = _same_but(b, x, a)
    shape = list(x.shape)
    shape[a] += y.shape[a]
    if int(np.prod(shape)) > MAX_SIZE:
        return None
    return b.emit(f"jnp.concatenate([{x.name}, {y.name}], axis={a})", shape, _result_dtype(x, y), max(x.bound, y.bound))


@op("stack", "shape")
def _stack(b: Builder):
    x = b.pick(lambda v: v.ndim < 4)
    y = _same_but(b, x, None)
    a = b.draw.integer(0, x.ndim)
    shape = (*x.shape[:a], 2, *x.shape[a:])
    if int(np.prod(shape)) > MAX_SIZE:
        return None
    return b.emit(f"jnp.stack([{x.name}, {y.name}], axis={a})", shape, _result_dtype(x, y), max(x.bound, y.bound))


@op("pad", "shape")
def _pad(b: Builder):
    x = b.pick(lambda v: v.ndim >= 1)
    if x is None:
        return None
    widths = tuple((b.draw.integer(0, 2), b.draw.integer(0, 1)) for _ in x.shape)
    shape = tuple(d + lo + hi for d, (lo, hi) in zip(x.shape, widths))
    if int(np.prod(shape)) > MAX_SIZE:
        return None
    mode = b.draw.choice(("constant", "constant", "edge", "reflect", "wrap"))
    if mode != "constant" and (any(d < 2 for d in x.shape) or any(max(w) >= d for w, d in zip(widths, x.shape))):
        mode = "constant"
    return b.emit(f"jnp.pad({x.name}, {widths!r}, mode={mode!r})", shape, x.dtype, x.bound)


@op("lax_pad", "shape")
def _lax_pad(b: Builder):
    x = b.pick(lambda v: v.ndim >= 1)
    if x is None:
        return None
    config, shape = [], []
    for d in x.shape:
        lo, hi, interior = b.draw.integer(-1, 2), b.draw.integer(-1, 2), b.draw.integer(0, 1)
        n = lo + hi + d + max(d - 1, 0) * interior
        if n < 0 or (d == 0 and (lo < 0 or hi < 0)):
            lo, hi, interior, n = 0, 0, 0, d
        config.append((lo, hi, interior))
        shape.append(n)
    if int(np.prod(shape)) > MAX_SIZE:
        return None
    v = b.pick(lambda u: u.shape == () and u.dtype == x.dtype)
    value = v.name if v is not None else f"jnp.{x.dtype}(0.5)"
    bound = max(x.bound, v.bound if v is not None else 0.5)
    return b.emit(f"lax.pad({x.name}, {value}, {config!r})", shape, x.dtype, bound)


@op("tile", "shape", 1)
def _tile(b: Builder):
    x = b.pick(lambda v: v.ndim >= 1)
    if x is None:
        return None
    reps = tuple(b.draw.integer(1, 2) for _ in x.shape)
    shape = tuple(d * r for d, r in zip(x.shape, reps))
    if int(np.prod(shape)) > MAX_SIZE:
        return None
    return b.emit(f"jnp.tile({x.name}, {reps!r})", shape, x.dtype, x.bound)


@op("repeat", "shape", 1)
def _repeat(b: Builder):
    x = b.pick(lambda v: v.ndim >= 1)
    if x is None:
        return None
    a = b.draw.integer(0, x.ndim - 1)
    shape = list(x.shape)
    shape[a] *= 2
    if int(np.prod(shape)) > MAX_SIZE:
        return None
    return b.emit(f"jnp.repeat({x.name}, 2, axis={a})", shape, x.dtype, x.bound)


@op("roll", "shape", 1)
def _roll(b: Builder):
    x = b.pick(lambda v: v.ndim >= 1)
    if x is None:
        return None
    a = b.draw.integer(0, x.ndim - 1)
    return b.emit(f"jnp.roll({x.name}, {b.draw.integer(-2, 2)}, axis={a})", x.shape, x.dtype, x.bound)


@op("split", "shape", 1)
def _split(b: Builder):
    x = b.pick(lambda v: v.ndim >= 1)
    if x is None:
        return None
    a = b.draw.integer(0, x.ndim - 1)
    i = b.draw.integer(0, x.shape[a])
    j = b.draw.integer(0, 1)
    shape = list(x.shape)
    shape[a] = i if j == 0 else x.shape[a] - i
    return b.emit(f"jnp.split({x.name}, [{i}], axis={a})[{j}]", shape, x.dtype, x.bound)


@op("triu", "shape", 1)
def _triu(b: Builder):
    x = b.pick(lambda v: v.ndim >= 2)
    if x is None:
        return None
    fn = b.draw.choice(("jnp.triu", "jnp.tril"))
    return b.emit(f"{fn}({x.name}, k={b.draw.integer(-1, 1)})", x.shape, x.dtype, x.bound)


# --------------------------------------------------------------------- linear


@op("matmul", "linear", 3)
def _matmul(b: Builder):
    x = b.operand(pred=lambda v: v.ndim >= 1)
    if x is None:
        return None
    k = x.shape[-1]
    y = b.pick(lambda v: 1 <= v.ndim <= 3 and v.shape[-2 if v.ndim >= 2 else 0] == k and v is not x)
    if y is None or not b.draw.integer(0, 2):
        y = b.const((k, b.draw.integer(1, 3)) if b.draw.boolean() else (k,), b.draw.choice(FLOATS))
    y = b.bounded(y, LIMIT)
    if not _broadcasts(x.shape[:-2], y.shape[:-2]):
        return None
    return _emit_auto(b, f"{x.name} @ {y.name}", [x, y], x.bound * y.bound * max(k, 1))


@op("einsum", "linear", 2)
def _einsum(b: Builder):
    x = b.operand(pred=lambda v: v.ndim >= 1)
    if x is None:
        return None
    y = b.operand(pred=lambda v: v.ndim >= 1)
    letters = "abcd"
    xs = letters[: x.ndim]
    ys, used = [], set()
    for d in y.shape:  # match each axis of y with an unused axis of x of the same size, or a new letter
        same = [i for i, e in enumerate(x.shape) if e == d and xs[i] not in used]
        if same and b.draw.boolean():
            c = xs[b.draw.choice(same)]
        else:
            c = "efgh"[len(ys)]
        used.add(c)
        ys.append(c)
    ys = "".join(ys)
    kept = [c for c in xs + ys if (c not in ys or c not in xs or b.draw.boolean())]
    out = "".join(dict.fromkeys(kept))
    spec = f"{xs},{ys}->{out}"
    contracted = [x.shape[xs.index(c)] for c in xs if c in ys and c not in out]
    n = int(np.prod(contracted)) if contracted else 1
    return _emit_auto(b, f"jnp.einsum({spec!r}, {x.name}, {y.name})", [x, y], x.bound * y.bound * max(n, 1))


@op("dot_f64_accumulate", "linear", 1)
def _dot_preferred(b: Builder):
    x = b.operand(pred=lambda v: v.ndim == 2 and v.dtype == "float32")
    if x is None:
        return None
    y = b.const((x.shape[1], 2), "float32")
    return b.emit(
        f"jnp.matmul({x.name}, {y.name}, preferred_element_type=jnp.float64)",
        (x.shape[0], 2),
        "float64",
        x.bound * 3 * max(x.shape[1], 1),
    )


@op("outer", "linear", 1)
def _outer(b: Builder):
    x = b.operand(pred=lambda v: v.size <= 16)
    if x is None:
        return None
    y = b.bounded(b.pick(lambda v: v.size <= 16), LIMIT)
    return b.emit(f"jnp.outer({x.name}, {y.name})", (x.size, y.size), _result_dtype(x, y), x.bound * y.bound)


@op("tensordot", "linear", 1)
def _tensordot(b: Builder):
    x = b.operand(pred=lambda v: v.ndim >= 1)
    if x is None:
        return None
    a = b.draw.integer(0, x.ndim - 1)
    y = b.pick(lambda v: x.shape[a] in v.shape)
    if y is None:
        return None
    y = b.bounded(y, LIMIT)
    c = b.draw.choice([i for i, d in enumerate(y.shape) if d == x.shape[a]])
    return _emit_auto(
        b, f"jnp.tensordot({x.name}, {y.name}, axes=([{a}], [{c}]))", [x, y], x.bound * y.bound * max(x.shape[a], 1)
    )


# ---------------------------------------------------------------------- index


@op("take", "index")
def _take(b: Builder):
    x = b.pick(lambda v: v.ndim >= 1)
    if x is None:
        return None
    a = b.draw.integer(0, x.ndim - 1)
    if x.shape[a] == 0:
        return None
    ishape = b.draw.choice(((), (2,), (3,), (2, 2)))
    idx = b.index(x.shape[a], ishape)
    shape = (*x.shape[:a], *ishape, *x.shape[a + 1 :])
    if int(np.prod(shape)) > MAX_SIZE:
        return None
    return b.emit(f"jnp.take({x.name}, {idx}, axis={a})", shape, x.dtype, x.bound)


@op("getitem_array", "index")
def _getitem_array(b: Builder):
    x = b.pick(lambda v: v.ndim >= 1 and v.shape[0] > 0)
    if x is None:
        return None
    m = b.draw.integer(1, 4)
    idx = b.index(x.shape[0], (m,))
    return b.emit(f"{x.name}[{idx}]", (m, *x.shape[1:]), x.dtype, x.bound)


@op("getitem_traced_int", "index")
def _getitem_traced(b: Builder):
    x = b.pick(lambda v: v.ndim >= 1 and v.shape[0] > 0)
    if x is None or not b.ints:
        return None
    idx = b.index(x.shape[0], ())
    if not idx.startswith("("):
        i = b.draw.choice(b.ints)
        idx = f"(jnp.sum({i.name}) % {x.shape[0]})"
    return b.emit(f"{x.name}[{idx}]", x.shape[1:], x.dtype, x.bound)


@op("take_along_argsort", "index")
def _take_along(b: Builder):
    x = b.pick(lambda v: v.ndim >= 1)
    if x is None:
        return None
    a = b.draw.integer(0, x.ndim - 1)
    key = _same_but(b, x, None)
    return b.emit(
        f"jnp.take_along_axis({x.name}, jnp.argsort({key.name}, axis={a}), axis={a})", x.shape, x.dtype, x.bound
    )


@op("take_argmax", "index")
def _take_argmax(b: Builder):
    x = b.pick(lambda v: v.ndim >= 1)
    if x is None:
        return None
    a = b.draw.integer(0, x.ndim - 1)
    if x.shape[a] == 0:
        return None
    key = _same_but(b, x, None)
    fn = b.draw.choice(("argmax", "argmin"))
    shape = (*x.shape[:a], 1, *x.shape[a + 1 :])
    return b.emit(
        f"jnp.take_along_axis({x.name}, jnp.expand_dims(jnp.{fn}({key.name}, axis={a}), {a}), axis={a})",
        shape,
        x.dtype,
        x.bound,
    )


@op("scatter", "index", 3)
def _scatter(b: Builder):
    x = b.pick(lambda v: v.ndim >= 1 and v.shape[0] > 0)
    if x is None:
        return None
    how = b.draw.choice(("set", "add", "multiply", "min", "max", "set_scalar"))
    n = x.shape[0]
    if how in ("set", "multiply", "set_scalar"):  # unique indices: the result of duplicates is unspecified
        m = b.draw.integer(1, n)
        idx = f"np.random.default_rng({b.seed()}).permutation({n})[:{m}]"
    else:
        m = b.draw.integer(1, 4)
        idx = b.index(n, (m,))
    if how == "set_scalar":
        return b.emit(f"{x.name}.at[{idx}].set(0.5)", x.shape, x.dtype, max(x.bound, 0.5))
    ushape = (m, *x.shape[1:])
    u = b.pick(lambda v: v.shape == ushape)
    u = b.bounded(u, 2.0) if u is not None and b.draw.integer(0, 2) else b.const(ushape, x.dtype)
    bound = {"set": max(x.bound, u.bound), "add": x.bound + 4 * u.bound, "multiply": x.bound * u.bound}.get(
        how, max(x.bound, u.bound)
    )
    return b.emit(f"{x.name}.at[{idx}].{how}({u.name})", x.shape, x.dtype, bound)


@op("dynamic_slice", "index")
def _dynamic_slice(b: Builder):
    x = b.pick(lambda v: v.ndim >= 1 and v.size > 0)
    if x is None:
        return None
    sizes = tuple(b.draw.integer(0, d) for d in x.shape)
    starts = ", ".join(b.index(d + 1) for d in x.shape)
    return b.emit(f"lax.dynamic_slice({x.name}, ({starts},), {sizes!r})", sizes, x.dtype, x.bound)


@op("dynamic_update_slice", "index")
def _dynamic_update_slice(b: Builder):
    x = b.pick(lambda v: v.ndim >= 1 and v.size > 0)
    if x is None:
        return None
    u = b.pick(lambda v: v.ndim == x.ndim and all(e <= d for e, d in zip(v.shape, x.shape)))
    if u is None:
        return None
    starts = ", ".join(b.index(d + 1) for d in x.shape)
    return b.emit(
        f"lax.dynamic_update_slice({x.name}, {u.name}.astype(jnp.{x.dtype}), ({starts},))",
        x.shape,
        x.dtype,
        max(x.bound, u.bound),
    )


@op("diagonal", "index", 1)
def _diagonal(b: Builder):
    x = b.pick(lambda v: v.ndim >= 2)
    if x is None:
        return None
    return _emit_auto(b, f"jnp.diagonal({x.name})", [x], x.bound)


@op("one_hot_matmul", "index", 1)
def _one_hot(b: Builder):
    x = b.pick(lambda v: v.ndim >= 1 and v.shape[0] > 0)
    if x is None:
        return None
    n = x.shape[0]
    idx = b.index(n, (b.draw.integer(1, 3),))
    return _emit_auto(
        b, f"jnp.tensordot(jax.nn.one_hot({idx}, {n}, dtype=jnp.{x.dtype}), {x.name}, axes=1)", [x], x.bound
    )


# ----------------------------------------------------------------------- sort


@op("sort", "sort")
def _sort(b: Builder):
    x = b.pick(lambda v: v.ndim >= 1)
    if x is None:
        return None
    a = b.draw.integer(0, x.ndim - 1)
    desc = b.draw.boolean()
    return b.emit(f"jnp.sort({x.name}, axis={a}, descending={desc})", x.shape, x.dtype, x.bound)


@op("sort_by_key", "sort")
def _sort_by_key(b: Builder):
    x = b.pick(lambda v: v.ndim >= 1)
    if x is None:
        return None
    key = _same_but(b, x, None)
    return b.emit(f"lax.sort(({key.name}, {x.name}), num_keys=1)[1]", x.shape, x.dtype, x.bound)


@op("top_k", "sort")
def _top_k(b: Builder):
    x = b.pick(lambda v: v.ndim >= 1 and v.shape[-1] > 0)
    if x is None:
        return None
    k = b.draw.integer(1, x.shape[-1])
    return b.emit(f"lax.top_k({x.name}, {k})[0]", (*x.shape[:-1], k), x.dtype, x.bound)


# ------------------------------------------------------------ windows and convolutions


@op("conv1d", "window")
def _conv1d(b: Builder):
    x = b.operand(pred=lambda v: v.ndim == 3 and v.size > 0)
    if x is None:
        return None
    n, c, w = x.shape
    k = b.draw.integer(1, 3)
    kern = b.pick(lambda v: v.ndim == 3 and v.shape[1] == c and v.shape[2] <= 3 and v.size > 0)
    kern = (
        b.bounded(kern, LIMIT)
        if kern is not None and b.draw.boolean()
        else b.const((b.draw.integer(1, 3), c, k), x.dtype)
    )
    pad = b.draw.choice(("'SAME'", "'VALID'", "((1, 0),)"))
    strides = b.draw.integer(1, 2)
    lhs_d, rhs_d = b.draw.choice((1, 1, 2)), b.draw.choice((1, 1, 2))
    expr = (
        f"lax.conv_general_dilated({x.name}, {kern.name}.astype(jnp.{x.dtype}), ({strides},), {pad}, "
        f"lhs_dilation=({lhs_d},), rhs_dilation=({rhs_d},))"
    )
    try:
        return _emit_auto(b, expr, [x, kern], x.bound * kern.bound * c * kern.shape[2])
    except Exception:  # an empty output window: not a program
        return None


@op("conv2d", "window")
def _conv2d(b: Builder):
    x = b.operand(pred=lambda v: v.ndim == 3 and v.size > 0)
    if x is None:
        return None
    c = x.shape[0]
    groups = b.draw.choice([g for g in (1, 2) if c % g == 0])
    kern = b.const((2 * groups, c // groups, b.draw.integer(1, 2), b.draw.integer(1, 2)), x.dtype)
    pad = b.draw.choice(("'SAME'", "'VALID'"))
    expr = (
        f"lax.conv_general_dilated({x.name}[None], {kern.name}, (1, 1), {pad}, "
        f"feature_group_count={groups}, dimension_numbers=('NCHW', 'OIHW', 'NCHW'))"
    )
    try:
        return _emit_auto(b, expr, [x], x.bound * 3 * c * 4)
    except Exception:
        return None


@op("convolve", "window", 1)
def _convolve(b: Builder):
    x = b.operand(pred=lambda v: v.ndim == 1 and v.size > 0)
    if x is None:
        return None
    y = b.pick(lambda v: v.ndim == 1 and 0 < v.size <= x.size)
    y = b.bounded(y, LIMIT) if y is not None else b.const((2,), x.dtype)
    mode = b.draw.choice(("full", "same", "valid"))
    return _emit_auto(b, f"jnp.convolve({x.name}, {y.name}, mode={mode!r})", [x, y], x.bound * y.bound * y.size)


@op("reduce_window", "window")
def _reduce_window(b: Builder):
    x = b.pick(lambda v: v.ndim >= 1 and v.size > 0)
    if x is None:
        return None
    how = b.draw.choice(("max", "min", "add", "avg"))
    window = tuple(b.draw.integer(1, min(d, 2)) for d in x.shape)
    strides = tuple(b.draw.integer(1, 2) for _ in x.shape)
    pad = b.draw.choice(("'VALID'", "'SAME'"))
    # a concrete (NumPy) init value, so JAX recognises the monoid (reduce_window_max/min/sum)
    init = {"max": "-np.inf", "min": "np.inf", "add": "0.0", "avg": "0.0"}[how]
    fn = {"max": "lax.max", "min": "lax.min", "add": "lax.add", "avg": "lax.add"}[how]
    expr = f"lax.reduce_window({x.name}, np.{x.dtype}({init}), {fn}, {window!r}, {strides!r}, {pad})"
    if how == "avg":
        expr = f"{expr} / {int(np.prod(window))}"
    return _emit_auto(b, expr, [x], x.bound * int(np.prod(window)))


# --------------------------------------------------------------------- linalg


def _well_conditioned(b: Builder, x: Val) -> Val:
    """n I + 0.5 tanh(x x^T) over the last axis of ``x``: eigenvalues in [n/2, 3n/2]."""
    n = x.shape[-1]
    return b.emit(
        f"{n}.0 * jnp.eye({n}, dtype=jnp.{x.dtype}) + 0.5 * jnp.tanh({x.name}[..., :, None] * {x.name}[..., None, :])",
        (*x.shape, n),
        x.dtype,
        n + 0.5,
    )


LINALG = {
    "solve": "jnp.linalg.solve({a}, {a}[..., :, :1] + 1.0)",
    "inv": "jnp.linalg.inv({a})",
    "det": "jnp.linalg.det({a}) / {n}.0 ** {n}",
    "slogdet": "jnp.linalg.slogdet({a})[1]",
    "cholesky": "jnp.linalg.cholesky({a} @ jnp.swapaxes({a}, -1, -2))",
    "eigvalsh": "jnp.linalg.eigvalsh({a} + jnp.swapaxes({a}, -1, -2))",
    "solve_triangular": "jax.scipy.linalg.solve_triangular(jnp.tril({a}), {a}[..., :, :2], lower=True)",
}


def _linalg(name: str, template: str) -> None:
    def build(b: Builder) -> Val | None:
        x = b.pick(lambda v: 1 <= v.ndim <= 2 and 0 < v.shape[-1] <= 4)
        if x is None:
            return None
        a = _well_conditioned(b, x)
        n = x.shape[-1]
        return _emit_auto(b, template.format(a=a.name, n=n), [a], 4.0 * n * n)

    OPS.append(Op(name, "linalg", build, 1))


for _name, _template in LINALG.items():
    _linalg(_name, _template)


# -------------------------------------------------------------------- control


def _param(b: Builder, v: Val) -> Val:
    return Val(b.shared.fresh("p"), v.shape, v.dtype, v.bound)


@op("cond", "control", 2)
def _cond(b: Builder):
    x = b.pick()
    p = b.pick()
    ops = [x] + ([b.pick()] if b.draw.boolean() else [])
    params = [_param(b, v) for v in ops]
    names = [b.shared.fresh("branch") for _ in range(2)]
    for name in names:
        b.body(name, ", ".join(q.name for q in params), params, [(x.shape, x.dtype, LIMIT)])
    # usually a traced predicate; sometimes a constant one (both branches are still traced)
    pred = f"jnp.sum({p.name}) > 0" if b.draw.integer(0, 3) else f"jnp.bool_({b.draw.boolean()})"
    args = ", ".join(v.name for v in ops)
    return b.emit(f"lax.cond({pred}, {names[0]}, {names[1]}, {args})", x.shape, x.dtype, LIMIT)


@op("switch", "control", 1)
def _switch(b: Builder):
    x = b.pick()
    p, q = b.pick(), b.pick()
    param = _param(b, x)
    names = [b.shared.fresh("branch") for _ in range(3)]
    for name in names:
        b.body(name, param.name, [param], [(x.shape, x.dtype, LIMIT)])
    index = f"(jnp.sum({p.name}) > 0).astype(jnp.int32) + (jnp.sum({q.name}) > 1).astype(jnp.int32)"
    return b.emit(f"lax.switch({index}, [{', '.join(names)}], {x.name})", x.shape, x.dtype, LIMIT)


@op("scan", "control", 2)
def _scan(b: Builder):
    xs = b.pick(lambda v: v.ndim >= 1)
    if xs is None:
        return None
    item = Val("", xs.shape[1:], xs.dtype, xs.bound)
    init = b.pick(lambda v: v.shape == item.shape)
    if init is None:
        init = b.emit(f"jnp.tanh(jnp.sum({xs.name}, axis=0))", item.shape, xs.dtype, 1.0)
    c, x = _param(b, init), _param(b, item)
    name = b.shared.fresh("body")
    y_shape = b.draw.choice((item.shape, (), init.shape))
    b.body(name, f"{c.name}, {x.name}", [c, x], [(init.shape, init.dtype, LIMIT), (y_shape, xs.dtype, LIMIT)])
    carry, ys = b.shared.fresh(), b.shared.fresh()
    opts = f", reverse={b.draw.boolean()}" + (f", unroll={b.draw.integer(1, 2)}" if b.draw.boolean() else "")
    b.line(f"{carry}, {ys} = lax.scan({name}, {init.name}, {xs.name}{opts})")
    b.pool.append(Val(carry, init.shape, init.dtype, LIMIT))
    out = Val(ys, (xs.shape[0], *y_shape), xs.dtype, LIMIT)
    b.pool.append(out)
    return out


@op("fori_loop", "control", 2)
def _fori_loop(b: Builder):
    init = b.pick()
    c = _param(b, init)
    i = Val(b.shared.fresh("i"), (), "int32", 4.0)
    name = b.shared.fresh("body")
    sub = b.sub([c])
    sub.ints.append(i)
    sub.run(b.draw.integer(1, 3), body=True)
    v = sub.pick()
    v = sub.coerce(v, init.shape, init.dtype)
    if b.draw.boolean():  # use the loop index
        v = sub.emit(f"{v.name} * (1.0 + {i.name}.astype(jnp.{init.dtype}) / 4.0)", v.shape, v.dtype, v.bound * 2)
    v = sub.emit(f"{_num(LIMIT)} * jnp.tanh({v.name} / {_num(LIMIT)})", v.shape, v.dtype, LIMIT)
    b.line(f"def {name}({i.name}, {c.name}):")
    b.lines.extend(sub.lines)
    b.line(f"    return {v.name}")
    n = b.draw.integer(0, 4)
    return b.emit(f"lax.fori_loop(0, {n}, {name}, {init.name})", init.shape, init.dtype, max(init.bound, LIMIT))


@op("map", "control", 1)
def _map(b: Builder):
    xs = b.pick(lambda v: v.ndim >= 1)
    if xs is None:
        return None
    x = Val(b.shared.fresh("p"), xs.shape[1:], xs.dtype, xs.bound)
    name = b.shared.fresh("fn")
    b.body(name, x.name, [x], [(x.shape, x.dtype, LIMIT)])
    return b.emit(f"lax.map({name}, {xs.name})", xs.shape, xs.dtype, LIMIT)


@op("vmap", "control", 1)
def _vmap(b: Builder):
    xs = b.pick(lambda v: v.ndim >= 1)
    if xs is None:
        return None
    a = b.draw.integer(0, xs.ndim - 1)
    x = Val(b.shared.fresh("p"), xs.shape[:a] + xs.shape[a + 1 :], xs.dtype, xs.bound)
    name = b.shared.fresh("fn")
    b.body(name, x.name, [x], [(x.shape, x.dtype, LIMIT)])
    return b.emit(f"jax.vmap({name}, in_axes={a}, out_axes={a})({xs.name})", xs.shape, xs.dtype, LIMIT)


@op("jit", "control", 2)
def _jit(b: Builder):
    x = b.pick()
    y = b.pick()
    params = [_param(b, x), _param(b, y)]
    name = b.shared.fresh("fn")
    b.body(name, ", ".join(p.name for p in params), params, [(x.shape, x.dtype, LIMIT)])
    return b.emit(f"jax.jit({name})({x.name}, {y.name})", x.shape, x.dtype, LIMIT)


@op("checkpoint", "control", 1)
def _checkpoint(b: Builder):
    x = b.pick()
    p = _param(b, x)
    name = b.shared.fresh("fn")
    b.body(name, p.name, [p], [(x.shape, x.dtype, LIMIT)])
    policy = b.draw.choice(("", ", policy=jax.checkpoint_policies.nothing_saveable", ", prevent_cse=False"))
    return b.emit(f"jax.checkpoint({name}{policy})({x.name})", x.shape, x.dtype, LIMIT)


@op("while_inactive", "control", 1)
def _while_inactive(b: Builder):
    # a while_loop on a value that carries no gradient: reverse mode must skip it (jax.grad does)
    x = b.pick()
    n = b.draw.integer(0, 3)
    expr = (
        f"lax.while_loop(lambda c: c[0] < {n}, lambda c: (c[0] + 1, jnp.tanh(c[1]) * 2.0), "
        f"(0, lax.stop_gradient({x.name})))[1]"
    )
    return b.emit(expr, x.shape, x.dtype, max(x.bound, 2.0))


# -------------------------------------------------------------------- probing


def _probe_program(o: Op, seed: int):
    draw = RandomDraw(seed)
    return generate(draw, ops=[o], steps=1)


@functools.cache
def _probe(name: str) -> str | None:
    """Why operation ``name`` cannot be used now (a primitive without a VJP rule), or None."""
    import funcgrad
    from tests.conftest import x64

    o = next(o for o in OPS if o.name == name)
    for seed in range(40):
        program = _probe_program(o, seed)
        if o.name not in program.ops:
            continue
        try:
            with x64():
                f, args = program.function(), program.example_args()
                loss = lambda *a: sum(jax.numpy.sum(x) for x in jax.tree_util.tree_leaves(f(*a)))
                # abstractly (no compilation): the forward and backward sweeps hit every rule they need
                jax.make_jaxpr(funcgrad.grad(loss, program.argnums))(*args)
        except (funcgrad.UnsupportedPrimitiveError, funcgrad.NonDifferentiableError) as err:
            return str(err).splitlines()[0]
        except Exception:  # noqa: BLE001 (other errors are findings of the fuzz run, not a reason to switch off)
            return None
        return None
    return None


def enabled_ops() -> list[Op]:
    """Operations whose primitives all have VJP rules (probed once per process), minus ``DISABLED``."""
    return [o for o in OPS if o.name not in DISABLED and _probe(o.name) is None]


def disabled_ops() -> dict[str, str]:
    """Operation name -> why it is switched off."""
    off = {o.name: DISABLED[o.name] for o in OPS if o.name in DISABLED}
    off.update({o.name: _probe(o.name) for o in OPS if o.name not in DISABLED and _probe(o.name) is not None})
    return off
