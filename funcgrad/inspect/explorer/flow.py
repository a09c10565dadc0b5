"""Which equation makes each value of a graph and which use it: what enters and leaves a group of equations."""

from __future__ import annotations

from collections.abc import Iterable

from funcgrad.core.ir import Eqn, Graph, Var


class Flow:
    """Producers and consumers of one graph's variables (its nested programs are graphs of their own)."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self.producer: dict[int, Eqn] = {}
        self.consumers: dict[int, list[Eqn]] = {}
        for eqn in graph.eqns:
            for v in eqn.outputs:
                self.producer[id(v)] = eqn
            for a in eqn.inputs:
                if isinstance(a, Var):
                    self.consumers.setdefault(id(a), []).append(eqn)
        self.outputs = {id(a) for a in graph.outputs if isinstance(a, Var)}

    def inputs_of(self, eqns: Iterable[Eqn]) -> list[Var]:
        """Variables the equations read that none of them makes, in order of first use."""
        eqns = list(eqns)
        mine = {id(e) for e in eqns}
        seen, out = set(), []
        for e in eqns:
            for a in e.inputs:
                if isinstance(a, Var) and id(a) not in seen:
                    made_by = self.producer.get(id(a))
                    if made_by is None or id(made_by) not in mine:
                        seen.add(id(a))
                        out.append(a)
        return out

    def outputs_of(self, eqns: Iterable[Eqn]) -> list[Var]:
        """Variables the equations make that another equation reads or that the graph returns."""
        eqns = list(eqns)
        mine = {id(e) for e in eqns}
        out = []
        for e in eqns:
            for v in e.outputs:
                used_outside = any(id(c) not in mine for c in self.consumers.get(id(v), ()))
                if used_outside or id(v) in self.outputs:
                    out.append(v)
        return out
