"""Control flow and function transformations with random bodies: cond, switch, scan, fori_loop, vmap, jit, ..."""

from __future__ import annotations

from tests.fuzz.ops.table import (
    op,
)
from tests.fuzz.programs import LIMIT, Builder, Val, _num

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
    sub.run(b.draw.integer(1, 3))
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
