"""The graph, indexed for the search: ``Index`` (who produces each variable, the constants, value
numbers), and the region of a constant's values."""

from __future__ import annotations

from collections.abc import Hashable

import jax
import numpy as np

from funcgrad.core.ir import Eqn, Graph, Literal, Var
from funcgrad.core.where_traps.primitives import MAX_DEPTH, NOT_NUMBERED, SAME_VALUE
from funcgrad.core.where_traps.regions import Interval, Region


class Index:
    """Who produces each variable, the constants, and value numbers: two variables have the same
    number when they are computed the same way from the same values (``x > 0`` written twice)."""

    def __init__(self, graph: Graph):
        self.producer: dict[int, Eqn] = {}
        self.numbers: dict[int, int] = {}
        self._interned: dict[Hashable, int] = {}
        self._consts = {id(v): c for v, c in zip(graph.constvars, graph.consts)}
        for v in (*graph.constvars, *graph.inputs):
            self.numbers[id(v)] = self._fresh()
        for eqn in graph.eqns:
            key = self._eqn_key(eqn)
            for i, v in enumerate(eqn.outputs):
                self.producer[id(v)] = eqn
                self.numbers[id(v)] = self._fresh() if key is None else self._intern((key, i))

    def _fresh(self) -> int:
        return self._intern(object())

    def _intern(self, key: Hashable) -> int:
        return self._interned.setdefault(key, len(self._interned))

    def number(self, atom) -> int:
        if isinstance(atom, Literal):
            value = np.asarray(atom.value)
            return self._intern(("literal", value.dtype.str, value.shape, value.tobytes()))
        return self.numbers.setdefault(id(atom), self._fresh())

    def _eqn_key(self, eqn: Eqn) -> Hashable | None:
        if eqn.subgraphs() or any(word in eqn.primitive for word in NOT_NUMBERED):
            return None
        key = (eqn.primitive, tuple(sorted(eqn.params.items())), tuple(self.number(a) for a in eqn.inputs))
        try:
            hash(key)
        except TypeError:
            return None
        return key

    def made_by(self, atom) -> Eqn | None:
        return self.producer.get(id(atom)) if isinstance(atom, Var) else None

    def peel(self, atom):
        """``atom`` with value-preserving equations (casts, broadcasts, reshapes) stepped through."""
        for _ in range(MAX_DEPTH):
            eqn = self.made_by(atom)
            if eqn is None or eqn.primitive not in SAME_VALUE:
                return atom
            atom = eqn.inputs[0]
        return atom

    def constant(self, atom) -> np.ndarray | None:
        """The value of a small constant (a literal, or a concrete captured array), else None."""
        atom = self.peel(atom)
        if isinstance(atom, Literal):
            return np.asarray(atom.value)
        value = self._consts.get(id(atom))
        if value is None or isinstance(value, jax.core.Tracer) or np.size(value) > 64:
            return None
        return np.asarray(value)

    def scalar(self, atom) -> float | None:
        value = self.constant(atom)
        if value is None or value.size != 1 or not np.isrealobj(value):
            return None
        return float(value.reshape(()))


def constant_region(value: np.ndarray) -> Region:
    values = np.asarray(value, np.float64).ravel() if np.isrealobj(value) else np.abs(value).ravel()
    values = values[np.isfinite(values)]
    return tuple(Interval(float(v), float(v)) for v in np.unique(values)[:64])
