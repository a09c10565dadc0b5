"""Indexing (gather, scatter, dynamic slices, one_hot) and sorting (sort, top_k, approx_max_k)."""

from __future__ import annotations

import numpy as np

from tests.fuzz.ops.table import (
    _emit_auto,
    _same_but,
    op,
)
from tests.fuzz.programs import MAX_SIZE, Builder

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
    # the index may be an integer input (b.index draws one when there is one): its type is needed too
    return _emit_auto(
        b, f"jnp.tensordot(jax.nn.one_hot({idx}, {n}, dtype=jnp.{x.dtype}), {x.name}, axes=1)", [x, *b.ints], x.bound
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


@op("approx_max_k", "sort", 1)
def _approx_max_k(b: Builder):
    x = b.pick(lambda v: v.ndim >= 1 and v.shape[-1] > 0)
    if x is None:
        return None
    k = b.draw.integer(1, x.shape[-1])
    return b.emit(f"lax.approx_max_k({x.name}, {k})[0]", (*x.shape[:-1], k), x.dtype, x.bound)
