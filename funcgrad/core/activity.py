"""Which equations of a graph the reverse sweep differentiates: the one pass that decides it.

A variable is *active* when it is floating-point and depends on a differentiated input. An
equation is active when one of its inputs is active and it can pass a gradient on:

* an equation whose results reach no output is never active (dead code: no cotangent can reach
  it, so it needs no rule, as after JAX's dead-code elimination);
* a primitive the registry marks as stopping the gradient (``stop_gradient``, and every
  zero-derivative primitive: comparisons, rounding, random bits) is never active;
* an equation with no floating-point output passes nothing back (a comparison, a cast to int),
  unless the registry refuses its primitive: then it is active, so that the refusal is reported;
* an equation holding a program (``cond``, ``scan``, ``while``, ``checkpoint``) has per-output
  activity: an output is active only if a perturbed input reaches it through the program (for a
  loop, a fixpoint over the carries: a carry is perturbed if its initial value is or the body makes
  it so from perturbed values), as JAX's JVP rules for these primitives decide their nonzero
  tangents. An unperturbed carry then carries no gradient into the body, and a ``while`` whose
  perturbed inputs reach none of its floating outputs is not differentiated at all.

The answer depends only on the graph's structure, the input flags and the registry, so it is
decided once per (graph, flags) and kept while the graph lives. The sweep, the pre-flight report
(``checking.differentiability``) and the inspection tools all read it from here.
"""

from __future__ import annotations

import dataclasses
import weakref
from collections.abc import Sequence

from funcgrad.core import registry
from funcgrad.core.graph_edit import live_eqns
from funcgrad.core.ir import Eqn, Graph, Var


@dataclasses.dataclass(frozen=True)
class Activity:
    """The active variables (by ``id``) and the active equations (in graph order) of one graph."""

    active: frozenset[int]
    eqns: tuple[Eqn, ...]

    def is_active(self, atom) -> bool:
        return isinstance(atom, Var) and id(atom) in self.active


_memo: weakref.WeakKeyDictionary[Graph, dict] = weakref.WeakKeyDictionary()


def activity(graph: Graph, wrt: Sequence[bool]) -> Activity:
    """The active part of ``graph`` when input ``i`` is differentiated iff ``wrt[i]`` (and floating)."""
    key = (tuple(bool(w) for w in wrt), registry.version())
    per_graph = _memo.get(graph)
    if per_graph is None:
        per_graph = _memo[graph] = {}
    found = per_graph.get(key)
    if found is None:
        found = per_graph[key] = _decide(graph, key[0])
    return found


def _decide(graph: Graph, wrt: tuple[bool, ...]) -> Activity:
    live = {id(e) for e in live_eqns(graph)}
    active = {id(v) for v, w in zip(graph.inputs, wrt, strict=True) if w and v.type.is_float}
    eqns = []
    for eqn in graph.eqns:
        if id(eqn) not in live:
            continue
        record = registry.lookup(eqn.primitive)
        if record is not None and record.stops_gradient:
            continue
        if not any(isinstance(a, Var) and id(a) in active for a in eqn.inputs):
            continue
        if record is not None and record.outputs_perturbed is not None:
            perturbed = tuple(isinstance(a, Var) and id(a) in active for a in eqn.inputs)
            reached = record.outputs_perturbed(perturbed, **eqn.params)
            float_outs = [id(v) for v, r in zip(eqn.outputs, reached, strict=True) if r and v.type.is_float]
            if not float_outs:
                continue  # no perturbation reaches a floating output (refused or not: nothing to refuse)
        else:
            float_outs = [id(v) for v in eqn.outputs if v.type.is_float]
            if not float_outs and not (record is not None and record.kind == "refused"):
                continue  # comparisons, argmax, casts to int: nothing flows back
        eqns.append(eqn)
        active.update(float_outs)
    return Activity(frozenset(active), tuple(eqns))


def outputs_reached(graph: Graph, perturbed: Sequence[bool]) -> list[bool]:
    """Per output of ``graph``: whether a perturbation of the flagged inputs reaches it."""
    act = activity(graph, perturbed)
    return [act.is_active(v) for v in graph.outputs]


def loop_perturbed(body: Graph, perturbed: Sequence[bool], carry_slots: slice, out_carry: slice) -> list[bool]:
    """The loop body's input flags once the carries reach their fixpoint: carry ``k`` (inputs
    ``carry_slots``, outputs ``out_carry`` of ``body``) is perturbed if its initial value is, or if the
    body makes it so from perturbed values (JAX's scan/while JVP fixpoint on nonzero tangents)."""
    flags = [bool(p) for p in perturbed]
    while True:
        reached = outputs_reached(body, flags)[out_carry]
        carry = flags[carry_slots]
        new = [a or b for a, b in zip(carry, reached, strict=True)]
        if new == carry:
            return flags
        flags[carry_slots] = new
