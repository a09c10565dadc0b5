"""Small whole-graph edits used by the inspection tools: liveness, pruning, relabelling, perturbing.

``perturb`` (zero perturbations of chosen values, inside loops, branches and checkpoints too) lives in
``funcgrad.core.perturbation`` and is re-exported here for its users.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

from funcgrad.core.ir import Eqn, Graph, Source, Var
from funcgrad.core.perturbation import perturb  # noqa: F401  (re-exported for funcgrad.api.per_example)


def live_eqns(graph: Graph) -> list[Eqn]:
    """The equations whose results reach the graph's outputs (graph order)."""
    needed = {id(a) for a in graph.outputs if isinstance(a, Var)}
    live = []
    for eqn in reversed(graph.eqns):
        if any(id(v) in needed for v in eqn.outputs):
            live.append(eqn)
            needed.update(id(a) for a in eqn.inputs if isinstance(a, Var))
    return live[::-1]


def prune(graph: Graph) -> Graph:
    """``graph`` without the equations whose results are never used (as XLA would drop them)."""
    return dataclasses.replace(graph, eqns=tuple(live_eqns(graph)))


def used_inputs(graph: Graph) -> list[bool]:
    """For each graph input, whether a live equation or an output reads it."""
    read = {id(a) for e in live_eqns(graph) for a in e.inputs if isinstance(a, Var)}
    read |= {id(a) for a in graph.outputs if isinstance(a, Var)}
    return [id(v) in read for v in graph.inputs]


def inputs_reached(
    graph: Graph, from_outputs: list[bool], cut: Callable[[str], bool] = lambda primitive: False
) -> list[bool]:
    """For each graph input, whether a path of equations leads from it to an output marked in
    ``from_outputs``; equations whose primitive ``cut(primitive)`` holds for do not pass the path on."""
    needed = {id(a) for a, m in zip(graph.outputs, from_outputs) if m and isinstance(a, Var)}
    for eqn in reversed(graph.eqns):
        if not cut(eqn.primitive) and any(id(v) in needed for v in eqn.outputs):
            needed.update(id(a) for a in eqn.inputs if isinstance(a, Var))
    return [id(v) in needed for v in graph.inputs]


def relabel(graph: Graph, labels: Mapping[int, str], sources: Mapping[int, Source] = {}) -> Graph:
    """A copy of ``graph`` whose variables ``id(v) in labels`` carry that label, and whose equations
    ``id(e) in sources`` carry that source."""
    new: dict[int, Var] = {}

    def var(v):
        if not isinstance(v, Var):
            return v
        if id(v) in labels:
            if id(v) not in new:
                new[id(v)] = Var(v.type, labels[id(v)])
            return new[id(v)]
        return v

    eqns = tuple(
        dataclasses.replace(
            e,
            inputs=tuple(var(a) for a in e.inputs),
            outputs=tuple(var(v) for v in e.outputs),
            source=sources.get(id(e), e.source),
        )
        for e in graph.eqns
    )
    return Graph(
        tuple(var(v) for v in graph.inputs),
        eqns,
        tuple(var(a) for a in graph.outputs),
        tuple(var(v) for v in graph.constvars),
        graph.consts,
    )
