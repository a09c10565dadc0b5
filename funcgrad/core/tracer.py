"""Function + example arguments -> funcgrad ``Graph``.

This is the only module that reads JAX's jaxprs; it reaches JAX's internal
names through ``funcgrad.core.jax_compat``, which absorbs every difference
between JAX releases (``pjit`` became ``jit``, ``custom_vjp_call_jaxpr`` became
``custom_vjp_call``, thunks were renamed), so this module reads as the
conversion alone. Every other module sees only ``funcgrad.core.ir``.

Conversion choices:
  * nested ``jit``/``pjit``/``closed_call`` calls are *inlined*; each inlined
    equation keeps ``jit(name)`` in its ``Source.scope`` so printing and drawing
    can group or collapse them.
  * a ``funcgrad.tag`` (a ``jit`` named ``funcgrad_tag:<label>``) is not inlined:
    it becomes one ``tag`` equation whose output ``Var`` carries the label.
  * ``custom_jvp_call``, ``custom_vjp_call``, ``checkpoint`` and control flow
    (``scan``, ``cond``, ``while``) stay single equations whose nested programs
    are ``Graph`` values in ``params``.
  * every equation's ``impl`` binds the original JAX primitive with its original
    parameters, so the forward pass computes exactly what JAX computes.
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
import dataclasses
import traceback
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from funcgrad.core import jax_compat as jc
from funcgrad.core.interpret import eval_graph
from funcgrad.core.ir import Atom, Eqn, Graph, Literal, Source, Type, Var
from funcgrad.core.tags import tag_name
from funcgrad.errors import TracingError

# --------------------------------------------------------------------------- types


def type_of(x) -> Type:
    """funcgrad ``Type`` of an array, tracer, Python scalar or abstract value."""
    aval = jc.aval_of(x)
    shape = tuple(int(d) for d in getattr(aval, "shape", ()))
    dtype = getattr(aval, "dtype", np.dtype(np.float32))
    try:
        dtype = np.dtype(dtype)
    except TypeError:  # extended dtypes (PRNG keys) stay as JAX's dtype objects
        pass
    return Type(shape, dtype, bool(getattr(aval, "weak_type", False)))


# --------------------------------------------------------------------- conversion


@dataclasses.dataclass
class _Context:
    """Conversion state for one graph: JAX atoms -> funcgrad atoms, collected consts."""

    env: dict
    constvars: list
    consts: list
    scope: str
    # the Source of the inlined call whose body this is (kept only with keeping_tracebacks)
    caller: Source | None = None


def jaxpr_to_graph(jaxpr, consts: Sequence[Any] = (), lifted: Sequence[int] = ()) -> Graph:
    """Convert a ``ClosedJaxpr`` (or a ``Jaxpr`` plus its consts) into a ``Graph``; the consts at the
    indices ``lifted`` become the graph's first inputs instead (in that order)."""
    jaxpr, consts = jc.split_closed(jaxpr, consts)
    ctx = _Context(env={}, constvars=[], consts=[], scope="")
    inputs = [None] * len(lifted)
    position = {i: k for k, i in enumerate(lifted)}
    for i, (v, c) in enumerate(zip(jaxpr.constvars, consts)):
        cv = Var(_var_type(v))
        ctx.env[v] = cv
        if i in position:
            inputs[position[i]] = cv
        else:
            ctx.constvars.append(cv)
            ctx.consts.append(c)
    for v in jaxpr.invars:
        nv = Var(_var_type(v))
        ctx.env[v] = nv
        inputs.append(nv)
    eqns: list[Eqn] = []
    _convert_eqns(jaxpr.eqns, ctx, eqns)
    outputs = tuple(_read(ctx, v) for v in jaxpr.outvars)
    return Graph(tuple(inputs), tuple(eqns), outputs, tuple(ctx.constvars), tuple(ctx.consts))


def _var_type(v) -> Type:
    return type_of(v.aval)


def _read(ctx: _Context, v) -> Atom:
    if isinstance(v, jc.JaxLiteral):
        return Literal(v.val, type_of(v.aval))
    return ctx.env[v]


def _convert_eqns(jax_eqns, ctx: _Context, out: list[Eqn], fallback: Source | None = None) -> None:
    for e in jax_eqns:
        name = e.primitive.name
        inputs = tuple(_read(ctx, v) for v in e.invars)
        if name in jc.INLINED_CALLS:
            if tag_name(e.params.get("name")) is not None:
                out.append(_tag_eqn(e, inputs, ctx, fallback))
                continue
            _inline_call(e, inputs, ctx, out)
            continue
        outputs = tuple(Var(_var_type(v)) for v in e.outvars)
        for v, nv in zip(e.outvars, outputs):
            if not isinstance(v, jc.DropVar):
                ctx.env[v] = nv
        if jc.binds_all_operands_at_once(e.primitive):
            out.extend(_per_operand_eqns(e, inputs, outputs, ctx, fallback))
            continue
        eqn = plain_eqn(e.primitive, e.params, inputs, outputs, _source_of(e, ctx, fallback))
        if name in ("custom_vjp_call", "custom_vjp_call_jaxpr"):
            eqn = _with_fwd_closure(eqn, ctx)
        out.append(eqn)


def _with_fwd_closure(eqn: Eqn, ctx: _Context) -> Eqn:
    """A custom_vjp equation whose fwd closes over values of this graph takes them as extra, trailing
    inputs (``params["fwd_closure"]`` says which of fwd's consts each one is); ``impl`` ignores them."""
    closure = [
        (i, ctx.env.get(v) if not isinstance(v, jc.JaxLiteral) else _read(ctx, v)) for i, v in eqn.params["vjp"].closure
    ]
    if not closure:
        return eqn
    if any(a is None for _, a in closure):
        # older JAX renames the variables of a finished trace: the values are there, not findable
        return dataclasses.replace(eqn, params={**eqn.params, "fwd_closure_lost": True})
    bind, n = eqn.impl, len(eqn.inputs)

    def impl(*xs):
        return bind(*xs[:n])

    impl.primitive = bind.primitive
    return dataclasses.replace(
        eqn,
        inputs=(*eqn.inputs, *(a for _, a in closure)),
        params={**eqn.params, "fwd_closure": tuple(i for i, _ in closure)},
        impl=impl,
    )


def plain_eqn(primitive, params, inputs: tuple, outputs: tuple, source: Source) -> Eqn:
    """The funcgrad equation of one bind of ``primitive`` (not an inlined call): nested jaxprs in
    ``params`` become graphs, custom-derivative handles are added, ``impl`` re-binds the primitive."""
    name = primitive.name
    return Eqn(
        primitive=jc.canonical_name(name),
        inputs=inputs,
        outputs=outputs,
        params=_convert_params(name, params),
        impl=_bind_impl(primitive, params),
        source=source,
        multiple_results=bool(primitive.multiple_results),
    )


def inline_jaxpr(
    closed, inputs: Sequence[Atom], constvars: list, consts: list, out: list[Eqn], scope: str, fallback: Source
) -> list[Atom]:
    """Append the equations of ``closed`` (a ``ClosedJaxpr``) to ``out``, reading its inputs from ``inputs``
    and adding its consts to ``constvars``/``consts``; returns the atoms of its outputs. Equations with no
    user frame of their own (bodies JAX traced elsewhere and inlined) get ``fallback``'s line."""
    jaxpr, jaxpr_consts = jc.split_closed(closed)
    ctx = _Context(env={}, constvars=constvars, consts=consts, scope=scope)
    for v, c in zip(jaxpr.constvars, jaxpr_consts):
        cv = Var(_var_type(v))
        ctx.env[v] = cv
        constvars.append(cv)
        consts.append(c)
    for v, a in zip(jaxpr.invars, inputs, strict=True):
        ctx.env[v] = a
    _convert_eqns(jaxpr.eqns, ctx, out, fallback)
    return [_read(ctx, v) for v in jaxpr.outvars]


def _per_operand_eqns(e, inputs, outputs, ctx: _Context, fallback) -> list[Eqn]:
    """One single-result equation per operand of an all-leaves-at-once reduction (as newer JAX binds it)."""
    impl, source = _bind_impl(e.primitive, e.params), _source_of(e, ctx, fallback)
    params = _convert_params(e.primitive.name, e.params)
    return [Eqn(e.primitive.name, (a,), (v,), params, impl, source) for a, v in zip(inputs, outputs)]


def _inline_call(e, inputs, ctx: _Context, out: list[Eqn]) -> None:
    sub_jaxpr, sub_consts = jc.split_closed(jc.inlined_body(e.params))
    label = e.params.get("name", e.primitive.name)
    call_site = _source_of(e, ctx)
    inner = _Context(
        env={},
        constvars=ctx.constvars,
        consts=ctx.consts,
        scope=_join(ctx.scope, str(e.source_info.name_stack), f"jit({label})"),
        caller=call_site if call_site.info is not None else None,
    )
    for v, c in zip(sub_jaxpr.constvars, sub_consts):
        cv = Var(_var_type(v))
        inner.env[v] = cv
        ctx.constvars.append(cv)
        ctx.consts.append(c)
    for v, a in zip(sub_jaxpr.invars, inputs):
        inner.env[v] = a
    _convert_eqns(sub_jaxpr.eqns, inner, out, fallback=call_site)
    for v, inner_v in zip(e.outvars, sub_jaxpr.outvars):
        if not isinstance(v, jc.DropVar):
            ctx.env[v] = _read(inner, inner_v)


def _tag_eqn(e, inputs, ctx: _Context, fallback: Source | None) -> Eqn:
    """A ``funcgrad.tag`` call -> one ``tag`` equation whose output carries the label (not inlined)."""
    label = tag_name(e.params["name"])
    source = _source_of(e, ctx, fallback)
    if jc.tag_call_forwards_inputs(e.outvars, inputs):
        # the identity call has no outputs and later equations read its input: give them a
        # labelled copy instead (as newer JAX does)
        outputs = tuple(Var(a.type, label=label) for a in inputs)
        for v, nv in zip(e.invars, outputs):
            if not isinstance(v, jc.JaxLiteral):
                ctx.env[v] = nv
        return Eqn("tag", inputs, outputs, {"name": label}, lambda *xs: list(xs), source)
    outputs = tuple(Var(_var_type(v), label=label) for v in e.outvars)
    for v, nv in zip(e.outvars, outputs):
        if not isinstance(v, jc.DropVar):
            ctx.env[v] = nv
    # impl re-binds the jit call, so re-tracing a graph (e.g. a traced backward pass) keeps the tag
    return Eqn("tag", inputs, outputs, {"name": label}, _bind_impl(e.primitive, e.params), source)


# funcgrad.tag's own frame is not the user's line: point tags at their caller.
jc.exclude_from_user_frames(__file__.rsplit("/", 1)[0] + "/tags.py")


def _join(*parts: str) -> str:
    return "/".join(p for p in parts if p)


def _convert_params(name: str, params) -> dict:
    """JAX params -> funcgrad params: nested jaxprs become Graphs; rule handles are added."""
    converted = {}
    for key, value in params.items():
        if jc.is_jaxpr(value):
            converted[key] = jaxpr_to_graph(value)
        elif isinstance(value, tuple) and value and all(jc.is_jaxpr(v) for v in value):
            converted[key] = tuple(jaxpr_to_graph(v) for v in value)
        elif key in ("jvp_jaxpr_fun", "jvp_jaxpr_thunk", "fwd_jaxpr_thunk", "bwd", "out_trees"):
            continue  # replaced by the rule handles below
        else:
            converted[key] = value
    if name == "custom_jvp_call":
        converted = {"name": _jaxpr_name(params["call_jaxpr"]), **converted}
        converted["call"] = converted.pop("call_jaxpr")
        converted["jvp"] = CustomJVPRule(params)
    elif name in ("custom_vjp_call", "custom_vjp_call_jaxpr"):
        call_key = jc.custom_vjp_body_key(params)
        converted = {"name": _jaxpr_name(params[call_key]), **converted}
        converted["call"] = converted.pop(call_key)
        converted["vjp"] = _custom_vjp_rule(params)
    elif name in ("checkpoint", "remat", "remat2"):
        converted["body"] = converted.pop("jaxpr")
    return converted


def _jaxpr_name(jaxpr) -> str:
    return jc.jaxpr_function_name(jaxpr) or "custom"


def _bind_impl(primitive, params) -> Callable[..., list]:
    """Evaluate ``primitive`` the way ``jax.core.eval_jaxpr`` does."""

    def impl(*args):
        return jc.bind(primitive, params, *args)

    impl.primitive = primitive  # for funcgrad.core.jax_compat.python_impl (rules/implementation.py)
    return impl


def _source_of(e, ctx: _Context, fallback: Source | None = None) -> Source:
    return source_of_info(e.source_info, ctx.scope, fallback, ctx.caller)


# funcgrad.explore groups equations by the code that made them (every user frame, not only the
# innermost): while this is on, each Source keeps JAX's SourceInfo and its inlined call's Source.
_keep_tracebacks: contextvars.ContextVar[bool] = contextvars.ContextVar("funcgrad_keep_tracebacks", default=False)


@contextlib.contextmanager
def keeping_tracebacks():
    """Within the block, traced equations keep ``Source.info`` and ``Source.caller`` (see ``Source``).

    Off by default: a traceback costs about 1 KB per equation, and the trace cache keeps graphs. A tool
    that reads them traces its function itself (``trace_flat``) inside this block, not through the cache.
    """
    token = _keep_tracebacks.set(True)
    try:
        yield
    finally:
        _keep_tracebacks.reset(token)


def source_of_info(info, scope: str, fallback: Source | None = None, caller: Source | None = None) -> Source:
    """A ``Source`` from JAX's ``SourceInfo`` (its innermost user frame and name stack) under ``scope``;
    with ``keeping_tracebacks`` on, it also keeps ``info`` and ``caller`` (the inlined call it is in)."""
    frame = jc.user_frame(info)
    stack = _join(scope, str(info.name_stack))
    keep = {"info": info, "caller": caller} if _keep_tracebacks.get() else {}
    if frame is None:
        if fallback is not None and fallback.file is not None:
            return Source(fallback.file, fallback.line, fallback.function, stack, **keep)
        return Source(scope=stack, **keep)
    return Source(frame.file_name, frame.start_line, frame.function_name, stack, **keep)


# -------------------------------------------------------------- custom derivatives


class CustomJVPRule:
    """The JVP rule of a ``custom_jvp`` function, as funcgrad graphs.

    ``graph(primal_types)`` traces the user's rule into a ``Graph`` taking
    ``(*primals, *tangents)`` and returning ``(*primal_outs, *tangent_outs)``.
    Integer inputs get no tangent input; integer outputs no tangent output
    (``out_zeros`` marks the outputs whose tangent is a symbolic zero).
    """

    def __init__(self, params):
        self._fun = jc.custom_jvp_thunk(params)
        self.num_consts = params["num_consts"]
        self.name = params.get("name") or jc.function_name(self._fun)
        self._memo: dict = {}

    def graph(self, tangent_is_zero: Sequence[bool]) -> tuple[Graph, list[bool]]:
        return _memoized(self._memo, tuple(tangent_is_zero), lambda: self._trace(tangent_is_zero), lambda r: r[0])

    def _trace(self, tangent_is_zero):
        jaxpr, consts, out_zeros = jc.trace_custom_jvp(self._fun, tangent_is_zero)
        graph = jaxpr_to_graph(jaxpr, consts)
        if out_zeros is None:
            out_zeros = [False] * (len(graph.outputs) // 2)
        return graph, list(out_zeros)

    def __repr__(self):
        return self.name


class CustomVJPRule:
    """The fwd/bwd pair of a ``custom_vjp`` function.

    ``fwd_graph(nonzeros)`` is the user's ``fwd`` traced into a ``Graph`` whose
    outputs are the residuals it computes followed by the primal outputs;
    ``residuals`` reassembles all residuals (some are inputs forwarded as-is);
    ``bwd(residuals, cts)`` runs the user's ``bwd`` and returns one cotangent
    per non-const input, ``None`` for a zero.
    """

    def __init__(self, params):
        self._fwd = params["fwd_jaxpr_thunk"]
        self._bwd = params["bwd"]
        self._out_trees = params["out_trees"]
        self.num_consts = params["num_consts"]
        self.symbolic_zeros = params.get("symbolic_zeros", False)
        # the primal function's name (bwd is often a lambda)
        primal = _jaxpr_name(params[jc.custom_vjp_body_key(params)])
        self.name = params.get("name") or (primal if primal != "custom" else jc.function_name(self._bwd))
        self._memo: dict = {}
        self._bwd_memo: dict = {}

    @property
    def closure(self) -> list[tuple[int, Any]]:
        """The consts of fwd that were tracers of the trace that bound the call, with their jaxpr
        variables (``jax_compat.fwd_closure``); empty if fwd closes over no traced value."""
        return jc.fwd_closure(self._fwd)

    def fwd_graph(self, nonzeros: Sequence[bool], lifted: Sequence[int] = ()) -> Graph:
        """fwd as a graph taking ``(*closed-over values at the const indices lifted, *args)``."""
        pattern = jc.fwd_pattern(nonzeros, self.symbolic_zeros)
        return _memoized(self._memo, (pattern, tuple(lifted)), lambda: self._trace_fwd(pattern, lifted), lambda g: g)

    def _trace_fwd(self, pattern, lifted):
        jaxpr, consts = jc.call_wrapped(self._fwd)(*pattern)
        return jaxpr_to_graph(jaxpr, consts, lifted)

    def residuals(self, fwd_outputs: Sequence[Any], consts: Sequence[Any], args: Sequence[Any]) -> tuple[list, list]:
        """Split fwd's outputs into (all residuals, primal outputs).

        Residuals that are inputs passed through unchanged are not among fwd's outputs; JAX
        records which of the equation's ``consts + args`` each one is (``input_fwds``; custom_vjp
        functions that close over traced values, e.g. ``jax.experimental.ode.odeint``, have consts)."""
        res_tree, input_fwds = jc.custom_vjp_residual_layout(self._out_trees, len(consts))
        num_computed = res_tree.num_leaves - sum(f is not None for f in input_fwds)
        computed, outs = list(fwd_outputs[:num_computed]), list(fwd_outputs[num_computed:])
        inputs = [*consts, *args]
        it = iter(computed)
        res = [next(it) if f is None else inputs[f] for f in input_fwds]
        return res, outs

    def bwd(self, residuals: Sequence[Any], cts: Sequence[Any]) -> list:
        """The user's bwd on ``residuals`` and ``cts``, traced into a graph once per signature (as
        ``jax.jit`` traces it once: Equinox counts the traces), then evaluated."""
        args = [*residuals, *cts]
        dynamic = [i for i, x in enumerate(args) if _is_dynamic(x)]
        key = tuple(_signature_part(x) if i in dynamic else ("static", _Static(x)) for i, x in enumerate(args))
        graph, zeros = _memoized(self._bwd_memo, key, lambda: self._trace_bwd(args, dynamic), lambda r: r[0])
        it = iter(eval_graph(graph, *[args[i] for i in dynamic]))
        return [None if z else next(it) for z in zeros]

    def _trace_bwd(self, args: list, dynamic: list[int]) -> tuple[Graph, list[bool]]:
        store = {}

        def flat(*dyn):
            full = list(args)
            for i, x in zip(dynamic, dyn):
                full[i] = x
            cts_in = self._run_bwd(full)
            store["zeros"] = [jc.is_symbolic_zero(c) for c in cts_in]
            return [c for c, z in zip(cts_in, store["zeros"]) if not z]

        specs = [jax.ShapeDtypeStruct(np.shape(args[i]), _dtype(args[i]), weak_type=_weak(args[i])) for i in dynamic]
        closed = jax.make_jaxpr(flat)(*specs)
        return jaxpr_to_graph(closed), store["zeros"]

    def _run_bwd(self, args: list) -> list:
        try:
            return list(jc.call_wrapped(self._bwd)(*args))
        except (TypeError, ValueError) as err:
            # JAX's own check of the bwd's output: keep its class (code written against JAX catches it)
            err.add_note(
                f"(in the custom_vjp backward rule of {self.name!r})\n"
                "  fix: bwd(residuals, g) must return a tuple with one cotangent per primal "
                "input of the function (None for no gradient), each shaped like that input."
            )
            raise

    def __repr__(self):
        return self.name


_vjp_rules: collections.OrderedDict = collections.OrderedDict()  # ids of (bwd, fwd) -> ((bwd, fwd), rule)


def _custom_vjp_rule(params) -> CustomVJPRule:
    """One ``CustomVJPRule`` per JAX custom_vjp equation object: a jitted function's jaxpr is cached by
    JAX, so the same equation comes back on every trace of it, and its bwd's traced graph with it."""
    held = (params["bwd"], params["fwd_jaxpr_thunk"])  # held in the cache: their ids stay theirs
    key = tuple(map(id, held))
    found = _vjp_rules.get(key)
    if found is not None and all(a is b for a, b in zip(found[0], held)):
        _vjp_rules.move_to_end(key)
        return found[1]
    rule = CustomVJPRule(params)
    _vjp_rules[key] = (held, rule)
    while len(_vjp_rules) > 512:
        _vjp_rules.popitem(last=False)
    return rule


def _is_dynamic(x) -> bool:
    """An array (or tracer) the traced bwd takes as an input; JAX's SymbolicZero and float0 zeros are
    static (they stand for a structure, not values)."""
    return hasattr(x, "shape") and hasattr(x, "dtype") and not jc.is_symbolic_zero(x)


def _dtype(x):
    return x.dtype  # arrays and tracers carry canonical dtypes (extended ones included)


def _weak(x) -> bool:
    return bool(getattr(x, "weak_type", False) or getattr(getattr(x, "aval", None), "weak_type", False))


def _signature_part(x):
    return ("array", tuple(np.shape(x)), str(_dtype(x)), _weak(x))


class _Static:
    """A static bwd argument in a memo key: a SymbolicZero by its shape and dtype, else by identity."""

    __slots__ = ("key", "obj")

    def __init__(self, x):
        self.obj = x  # held, so that an identity key is never reused
        aval = getattr(x, "aval", None)
        if aval is not None and type(x).__name__ == "SymbolicZero":
            self.key = ("zero", tuple(aval.shape), str(aval.dtype))
        elif getattr(x, "dtype", None) == jax.dtypes.float0:
            self.key = ("float0", tuple(np.shape(x)))
        else:
            self.key = ("object", id(x))

    def __eq__(self, other):
        return isinstance(other, _Static) and other.key == self.key

    def __hash__(self):
        return hash(self.key)


def _memoized(memo: dict, key, make, graph_of):
    """``memo[key]``, made on first use; results that captured tracers are not kept (they die with their trace)."""
    if key in memo:
        return memo[key]
    result = make()
    if not any(isinstance(c, jc.Tracer) for c in graph_of(result).consts):
        memo[key] = result
    return result


# ------------------------------------------------------------------------ tracing


@dataclasses.dataclass(frozen=True)
class Traced:
    """A traced function: its graph and the pytree structure of its output (and, for a concrete trace
    (``funcgrad.core.concrete``), every value it computed, keyed by ``Var``)."""

    graph: Graph
    out_tree: Any
    values: dict | None = None


def trace_flat(fun: Callable, flat_args: Sequence[Any]) -> Traced:
    """Trace ``fun(*flat_args)`` abstractly (like ``jax.jit``) into a ``Graph``; ``fun`` may return a pytree."""
    store = {}

    def flat_fun(*flat):
        leaves, store["out_tree"] = jax.tree_util.tree_flatten(fun(*flat))
        return leaves

    try:
        with jc.fwd_traced_at_bind():
            closed = jax.make_jaxpr(flat_fun)(*flat_args)
    except (jax.errors.ConcretizationTypeError, jax.errors.TracerIntegerConversionError) as err:
        # Python control flow (if/while on a value) or a Python index taken from one (branches[i])
        raise TracingError(_python_control_flow_message(err)) from err
    return Traced(jaxpr_to_graph(closed), store["out_tree"])


def _python_control_flow_message(err: Exception) -> str:
    where = user_line_of(err.__traceback__)
    first = str(err).strip().splitlines()[0]
    return (
        f"funcgrad traces your function abstractly here (under jax.jit, jax.vmap or another transformation), "
        f"so Python control flow on a traced value cannot work (on concrete arrays, outside any "
        f"transformation, funcgrad records the branch the values take, as jax.grad does).\n  at: {where}\n"
        f"  JAX said: {first}\n"
        "  fix: use jnp.where(cond, a, b) for elementwise choices, lax.cond / lax.switch for branches, "
        "lax.fori_loop / lax.scan for loops; or pass the value as a non-differentiated Python scalar."
    )


def user_line_of(tb) -> str:
    """The innermost traceback frame outside JAX and funcgrad, as ``file:line``."""
    where = "<unknown>"
    for frame in traceback.extract_tb(tb):
        f = frame.filename
        if "/jax/" in f or "/jaxlib/" in f or "/funcgrad/" in f or f.startswith("<frozen"):
            continue
        where = f"{f}:{frame.lineno} ({frame.line})"
    return where
