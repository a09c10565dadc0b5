"""Reductions (sum, max, logsumexp, a generic two-operand reduce, ...) and cumulative operations."""

from __future__ import annotations

import math

import numpy as np

from tests.fuzz.ops.table import (
    OPS,
    Op,
    _same_but,
    op,
)
from tests.fuzz.programs import LIMIT, Builder, Val

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


@op("reduce_generic", "reduce", 1)
def _reduce_generic(b: Builder):
    # a two-operand lax.reduce (a sum and a product at once) is JAX's generic `reduce` primitive
    x = b.pick(lambda v: v.ndim >= 1)
    if x is None:
        return None
    y = b.bounded(_same_but(b, x, None), 1.0)
    a = b.draw.integer(0, x.ndim - 1)
    i = b.draw.integer(0, 1)
    dt = x.dtype
    expr = (
        f"lax.reduce(({x.name}, {y.name}.astype(jnp.{dt})), (np.{dt}(0), np.{dt}(1)), "
        f"lambda p, q: (p[0] + q[0], p[1] * q[1]), ({a},))[{i}]"
    )
    shape = x.shape[:a] + x.shape[a + 1 :]
    return b.emit(expr, shape, dt, x.bound * max(x.shape[a], 1) if i == 0 else 1.0)


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
