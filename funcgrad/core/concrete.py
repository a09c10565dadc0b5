"""Concrete tracing: record a ``Graph`` while computing its values, so Python control flow works.

JAX's ``grad`` runs ``f`` on tracers that carry the argument's value, so ``if x < 2:`` and
``while err > tol:`` take the branch the value decides. funcgrad's usual tracer is abstract, like
``jax.jit``: such code cannot be traced. When a gradient is asked for on concrete arrays (outside
``jax.jit``, ``jax.vmap`` or another trace) and the abstract trace fails on Python control flow,
``funcgrad.core.call.trace_call`` records the function here instead:

* ``f`` runs on ``ValueTracer``s (``funcgrad.core.jax_compat``), each carrying its value and the
  ``Var`` it is bound to; every primitive JAX binds on them is computed on the values (so ``bool``,
  ``int`` and ``float`` of a tracer work, as with ``jax.grad``) and recorded as an equation, the
  same equation the abstract tracer would have produced (``tracer.plain_eqn``);
* calls with a body (``jax.jit`` functions, ``funcgrad.tag``, ``custom_jvp``/``custom_vjp``
  functions) are staged with ``jax.make_jaxpr`` and converted by the abstract tracer's own code
  (``tracer.inline_jaxpr``), then evaluated equation by equation;
* the graph holds the branch that was taken, and only it. It is never cached: another call may take
  another branch (``trace_call`` remembers only that the signature needs concrete tracing).

A gradient nested inside another (``grad(grad(f))``) records into the outer recording, as JAX's
nested JVP traces do.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import jax

from funcgrad.core import jax_compat as jc
from funcgrad.core.interpret import read_all
from funcgrad.core.ir import Atom, Eqn, Graph, Literal, Var
from funcgrad.core.tracer import Traced, inline_jaxpr, plain_eqn, source_of_info, type_of

# the recorder's own frames are never "the user's line" of an equation
jc.exclude_from_user_frames(__file__)


class _Recorder(jc.Trace):
    """A JAX trace that computes every bind on concrete values and records it as a funcgrad equation."""

    def __init__(self, parent):
        super().__init__()
        self.parent = parent  # where the values are computed (JAX's eval trace, or an outer recorder)
        self.eqns: list[Eqn] = []
        self.constvars: list[Var] = []
        self.consts: list[Any] = []
        self.values: dict = {}  # Var -> value

    # ---------------------------------------------------------------- atoms and values

    def tracer(self, value, atom: Atom) -> jc.ValueTracer:
        return jc.ValueTracer(self, value, atom)

    def _is_mine(self, x) -> bool:
        return isinstance(x, jc.ValueTracer) and x._trace is self

    def value_of(self, x):
        return x.value if self._is_mine(x) else x

    def atom_of(self, x) -> Atom:
        if self._is_mine(x):
            return x.atom
        t = type_of(x)
        if t.shape == () and not isinstance(x, jax.core.Tracer):
            return Literal(x, t)  # a scalar constant, as a jaxpr literal
        v = Var(t)  # an array (or an outer trace's tracer) from outside: a constant of the graph
        self.constvars.append(v)
        self.consts.append(x)
        self.values[v] = x
        return v

    def _scope(self) -> str:
        return str(jc.current_source_info().name_stack)

    # ---------------------------------------------------------------------- binding

    def process_primitive(self, primitive, tracers, params):
        if primitive.name in jc.INLINED_CALLS or jc.binds_all_operands_at_once(primitive):
            # a call with a body (jit, tag) or a reduction the tracer splits: the tracer's own conversion
            out = self._staged(lambda *xs: primitive.bind(*xs, **params), tracers)
            return out if primitive.multiple_results else out[0]
        values = [self.value_of(t) for t in tracers]
        with jc.set_current_trace(self.parent):
            result = primitive.bind(*values, **params)
        if not any(self._is_mine(t) for t in tracers):
            return result  # only constants in: a constant out (the abstract trace folds it too)
        outs = list(result) if primitive.multiple_results else [result]
        inputs = tuple(self.atom_of(t) for t in tracers)
        outputs = tuple(Var(type_of(o)) for o in outs)
        source = source_of_info(jc.current_source_info(), "")
        self.eqns.append(plain_eqn(primitive, params, inputs, outputs, source))
        self.values.update(zip(outputs, outs))
        tracers_out = [self.tracer(o, v) for o, v in zip(outs, outputs)]
        return tracers_out if primitive.multiple_results else tracers_out[0]

    # the staging trace's own handlers (called directly: how a primitive re-binds its functions differs
    # between JAX releases, the handlers' signatures do not)

    def process_custom_jvp_call(self, primitive, fun, jvp, tracers, *, symbolic_zeros):
        def bind(*xs):
            return jc.current_trace().process_custom_jvp_call(primitive, fun, jvp, xs, symbolic_zeros=symbolic_zeros)

        return self._staged(bind, tracers)

    def process_custom_vjp_call(self, primitive, fun, fwd, bwd, tracers, *, out_trees, symbolic_zeros):
        def bind(*xs):
            return jc.current_trace().process_custom_vjp_call(
                primitive, fun, fwd, bwd, xs, out_trees=out_trees, symbolic_zeros=symbolic_zeros
            )

        return self._staged(bind, tracers)

    def process_call(self, call_primitive, f, tracers, params):
        return self._staged(lambda *xs: jc.current_trace().process_call(call_primitive, f, xs, params), tracers)

    def _staged(self, bind: Callable, tracers: Sequence[Any]) -> list:
        """Stage ``bind`` with ``jax.make_jaxpr``, convert it as the abstract tracer does, evaluate it."""
        values = [self.value_of(t) for t in tracers]
        closed = jax.make_jaxpr(lambda *xs: list(_as_list(bind(*xs))))(*[_spec(v) for v in values])
        start = len(self.eqns)
        here = source_of_info(jc.current_source_info(), "")
        ins = [self.atom_of(t) for t in tracers]
        outs = inline_jaxpr(closed, ins, self.constvars, self.consts, self.eqns, "", here)
        # make_jaxpr starts a fresh name stack: put the staged equations under the caller's scopes
        scope = self._scope()
        if scope:
            self.eqns[start:] = [_in_scope(e, scope) for e in self.eqns[start:]]
        for v, c in zip(self.constvars, self.consts):
            self.values.setdefault(v, c)
        with jc.set_current_trace(self.parent):
            for eqn in self.eqns[start:]:
                self.values.update(zip(eqn.outputs, eqn.impl(*read_all(self.values, eqn.inputs))))
        return [self.tracer(value, a) for value, a in zip(read_all(self.values, outs), outs)]


def _as_list(out):
    return out if isinstance(out, (list, tuple)) else [out]


def _spec(value):
    """What ``jax.make_jaxpr`` traces at: the value's shape, dtype and weak type (never its numbers)."""
    aval = jc.aval_of(value)
    return jax.ShapeDtypeStruct(aval.shape, aval.dtype, weak_type=getattr(aval, "weak_type", False))


def _in_scope(eqn: Eqn, scope: str) -> Eqn:
    source = eqn.source
    if source.scope.startswith(scope):
        return eqn
    joined = f"{scope}/{source.scope}" if source.scope else scope
    return dataclasses.replace(eqn, source=dataclasses.replace(source, scope=joined))


def can_trace_concretely(flat_args: Sequence[Any]) -> bool:
    """Whether the values are all concrete and no transformation is active (or only a recording one)."""
    trace = jc.current_trace()
    if not (jc.is_eval_trace(trace) or isinstance(trace, _Recorder)):
        return False
    return all(jc.to_concrete_value(x) is not None for x in flat_args)


class _Count:
    """How many concrete traces were made (``funcgrad.api.hot`` keeps such functions eager: ``jax.jit``
    cannot trace their Python control flow on values)."""

    made = 0


def concrete_traces_made() -> int:
    return _Count.made


def trace_concrete(fun: Callable, flat_args: Sequence[Any]) -> Traced:
    """Run ``fun(*flat_args)`` on value-carrying tracers and return the graph of the branch it took.

    ``Traced.values`` holds every value the run computed, keyed by ``Var``, so the sweep need not run
    the function again."""
    _Count.made += 1
    recorder = _Recorder(jc.current_trace())
    inputs = [Var(type_of(x)) for x in flat_args]
    recorder.values.update(zip(inputs, flat_args))
    tracers = [recorder.tracer(x, v) for x, v in zip(flat_args, inputs)]
    with jc.set_current_trace(recorder):
        out = fun(*tracers)
    leaves, out_tree = jax.tree_util.tree_flatten(out)
    outputs = tuple(recorder.atom_of(leaf) for leaf in leaves)
    graph = Graph(tuple(inputs), tuple(recorder.eqns), outputs, tuple(recorder.constvars), tuple(recorder.consts))
    return Traced(graph, out_tree, values=recorder.values)
