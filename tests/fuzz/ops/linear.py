"""Contractions: matmul, einsum, tensordot, outer, ragged_dot."""

from __future__ import annotations

import numpy as np

from tests.fuzz.ops.table import (
    _broadcasts,
    _emit_auto,
    _result_dtype,
    op,
)
from tests.fuzz.programs import FLOATS, LIMIT, Builder

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


@op("ragged_dot", "linear", 1)
def _ragged_dot(b: Builder):
    x = b.operand(pred=lambda v: v.ndim == 2 and v.shape[0] > 0)
    if x is None:
        return None
    m, k = x.shape
    first = b.draw.integer(0, m)
    sizes = f"jnp.array([{first}, {b.draw.integer(0, m - first)}], jnp.int32)"
    rhs = b.const((2, k, b.draw.integer(1, 3)), x.dtype)
    return _emit_auto(b, f"lax.ragged_dot({x.name}, {rhs.name}, {sizes})", [x], x.bound * 3 * max(k, 1))
