"""Shape operations: reshape, transpose, broadcast, slice, concatenate, pad, tile, roll, ..."""

from __future__ import annotations

import numpy as np

from tests.fuzz.ops.table import (
    _result_dtype,
    _same_but,
    op,
)
from tests.fuzz.programs import MAX_SIZE, Builder

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
    bound = max(x.bound, v.bound if v is not None else 0.5)
    if v is None:
        return b.emit(f"lax.pad({x.name}, jnp.{x.dtype}(0.5), {config!r})", shape, x.dtype, bound)
    # the operand carries the padding value's tangent (+ 0 * v): JAX's own pad transpose fails (a
    # TypeError in reduce_sum) when the padding value is differentiated and the operand is not
    return b.emit(f"lax.pad({x.name} + 0 * {v.name}, {v.name}, {config!r})", shape, x.dtype, bound)


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
