"""The bytes of forward values the backward pass keeps, per equation that made them.

Measured as ``funcgrad.saved_residuals`` measures them (``funcgrad.core.backward_reads``): the
backward pass is traced as a function of every forward value it could read and of the output
cotangent; a value is kept when the traced gradients still depend on it after dead code is dropped.
What a rule's own forward saves (a ``custom_vjp``'s residuals, a ``jax.checkpoint`` policy's saved
values) counts for its equation. Arguments and captured constants are kept too, but exist anyway:
they are counted apart.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from funcgrad.core.activity import Activity
from funcgrad.core.backward_reads import backward_program, saved_shapes
from funcgrad.core.ir import Graph, Type


def _nbytes(t: Type) -> int:
    try:
        return t.size * np.dtype(t.dtype).itemsize
    except TypeError:  # extended dtypes (PRNG keys)
        return 0


@dataclasses.dataclass(frozen=True)
class Kept:
    """What the backward pass keeps: by producing equation, and the arguments and constants."""

    by_eqn: dict  # id(eqn) -> bytes of its outputs (and of what its rule saved) that are kept
    kept_vars: frozenset  # id(var) of every kept value
    argument_bytes: int
    error: str = ""  # why it could not be measured ("" if it was)

    def of(self, eqns) -> int:
        return sum(self.by_eqn.get(id(e), 0) for e in eqns)


def kept(graph: Graph, act: Activity, wrt: list[bool]) -> Kept:
    """Measure what the backward pass of ``graph`` (its first output differentiated) keeps."""
    if not graph.outputs:
        return Kept({}, frozenset(), 0)
    try:
        program = backward_program(graph, act, [0], [k for k, w in enumerate(wrt) if w], saved_shapes(act))
        reads = program.reads()
    except Exception as err:  # a primitive the traced backward pass cannot handle: say so, show the rest
        return Kept({}, frozenset(), 0, f"not measured ({type(err).__name__}: {str(err).splitlines()[0]})")
    producer = {id(v): e for e in graph.eqns for v in e.outputs}
    by_eqn: dict[int, int] = {}
    kept_vars, arguments = set(), 0
    for v, read in zip(program.candidates, reads):
        if not read:
            continue
        kept_vars.add(id(v))
        eqn = producer.get(id(v))
        if eqn is None:
            arguments += _nbytes(v.type)
        else:
            by_eqn[id(eqn)] = by_eqn.get(id(eqn), 0) + _nbytes(v.type)
    for leaf, read in zip(program.saved, reads[len(program.candidates) :]):
        if read:
            by_eqn[id(leaf.eqn)] = by_eqn.get(id(leaf.eqn), 0) + _nbytes(leaf.type)
    return Kept(by_eqn, frozenset(kept_vars), arguments)
