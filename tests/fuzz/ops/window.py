"""Convolutions, window reductions (pooling) and Fourier transforms."""

from __future__ import annotations

import numpy as np

from tests.fuzz.ops.table import (
    _emit_auto,
    op,
)
from tests.fuzz.programs import LIMIT, Builder

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


# ------------------------------------------------------------------------ fft


@op("fft_real", "fft", 1)
def _fft_real(b: Builder):
    x = b.operand(pred=lambda v: v.ndim >= 1 and v.size > 0)
    if x is None:
        return None
    a = b.draw.integer(0, x.ndim - 1)
    expr = f"jnp.real(jnp.fft.fft({x.name}, axis={a})) + 0.5 * jnp.imag(jnp.fft.fft({x.name}, axis={a}))"
    return b.emit(expr, x.shape, x.dtype, 1.5 * x.bound * x.shape[a])


@op("rfft_roundtrip", "fft", 1)
def _rfft_roundtrip(b: Builder):
    x = b.operand(pred=lambda v: v.ndim >= 1 and v.size > 0)
    if x is None:
        return None
    n = x.shape[-1]
    phase = f"jnp.exp(1j * jnp.arange({n // 2 + 1}, dtype=jnp.{x.dtype}))"
    return _emit_auto(b, f"jnp.fft.irfft(jnp.fft.rfft({x.name}, axis=-1) * {phase}, n={n}, axis=-1)", [x], x.bound * n)


@op("fft2_abs", "fft", 1)
def _fft2_abs(b: Builder):
    x = b.operand(pred=lambda v: v.ndim >= 2 and v.size > 0)
    if x is None:
        return None
    # |.| has a kink at 0; the offset keeps the transform away from it
    return _emit_auto(b, f"jnp.abs(jnp.fft.fft2({x.name}) + 3.0)", [x], x.bound * x.size + 3.0)
