"""The search: ``find_traps`` of a graph and input flags (decided once per graph and flags, nested
programs included), the where traps and the clip traps."""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Sequence

import numpy as np

from funcgrad.core import registry
from funcgrad.core.activity import Activity, activity, loop_perturbed
from funcgrad.core.ir import Eqn, Graph, Literal
from funcgrad.core.where_traps.graph_index import Index, constant_region
from funcgrad.core.where_traps.masked_values import MaskedValues
from funcgrad.core.where_traps.masks import Mask
from funcgrad.core.where_traps.primitives import ELEMENTWISE, MAX_DEPTH, MAX_WALK, OPAQUE, SAME_VALUE
from funcgrad.core.where_traps.regions import UnsafeSet
from funcgrad.core.where_traps.report import NaNTrap, clip_trap, where_trap
from funcgrad.core.where_traps.unsafe_ops import UNSAFE_OPS


def find_traps(graph: Graph, wrt: Sequence[bool]) -> tuple[NaNTrap, ...]:
    """Every NaN trap of ``graph`` differentiated with respect to the inputs flagged in ``wrt``
    (decided once per graph and flags), nested programs included."""
    return tuple(trap for _, trap in traps_by_holder(graph, wrt))


def traps_by_holder(graph: Graph, wrt: Sequence[bool]) -> tuple[tuple[Eqn, NaNTrap], ...]:
    """``_search``, kept while the graph lives (as ``activity`` keeps its answer)."""
    key = (tuple(bool(w) for w in wrt), registry.version())
    per_graph = _memo.get(graph)
    if per_graph is None:
        per_graph = _memo[graph] = {}
    if key not in per_graph:
        per_graph[key] = tuple(_search(graph, key[0]))
    return per_graph[key]


_memo: weakref.WeakKeyDictionary[Graph, dict] = weakref.WeakKeyDictionary()


def _search(graph: Graph, wrt: tuple[bool, ...]) -> list[tuple[Eqn, NaNTrap]]:
    """(the top-level equation holding it, trap) for each trap of ``graph`` and its nested programs."""
    act = activity(graph, wrt)
    found: list[tuple[Eqn, NaNTrap]] = []
    if any(e.primitive in UNSAFE_OPS for e in act.eqns):
        index = Index(graph)
        reported: set[int] = set()
        for sel in act.eqns:
            if sel.primitive == "select_n":
                found += [(u, trap) for u, trap in _where_traps(sel, act, index) if id(u) not in reported]
                reported.update(id(u) for u, _ in found)
        for eqn in act.eqns:
            if eqn.primitive in UNSAFE_OPS and id(eqn) not in reported:
                found += [(eqn, trap) for trap in _clip_traps(eqn, act, index)]
    for eqn in act.eqns:
        if eqn.primitive in OPAQUE:
            continue
        for sub, sub_wrt in _nested_activity(eqn, act):
            found += [(eqn, trap) for _, trap in traps_by_holder(sub, sub_wrt)]
    return found


def _where_traps(sel: Eqn, act: Activity, index: Index) -> list[tuple[Eqn, NaNTrap]]:
    if isinstance(sel.inputs[0], Literal):
        return []
    traps = []
    for k, case in enumerate(sel.inputs[1:]):
        if not act.is_active(case):
            continue
        candidates = _unsafe_ops_feeding(case, act, index)
        if not candidates:
            continue
        values = MaskedValues(index, Mask(index, sel, k), act)
        for unsafe in candidates:
            trap = _masked_trap(sel, unsafe, values, act)
            if trap is not None:
                traps.append((unsafe, trap))
    return traps


def _unsafe_ops_feeding(case, act: Activity, index: Index) -> list[Eqn]:
    """The active unsafe equations a case is computed from through elementwise equations (the
    zero cotangent the masked points get reaches them point by point)."""
    found, stack, seen = [], [case], set()
    while stack and len(seen) < MAX_WALK:
        atom = stack.pop()
        if not act.is_active(atom) or id(atom) in seen:
            continue
        seen.add(id(atom))
        eqn = index.made_by(atom)
        if eqn is None or not (eqn.primitive in ELEMENTWISE or eqn.primitive in SAME_VALUE):
            continue
        if eqn.primitive in UNSAFE_OPS and eqn not in found:
            found.append(eqn)
        stack.extend(eqn.inputs[1:] if eqn.primitive == "select_n" else eqn.inputs)
    return found


def _masked_trap(sel: Eqn, unsafe: Eqn, values: MaskedValues, act: Activity) -> NaNTrap | None:
    """A trap if the unsafe operand can be unsafe at the masked points and the NaN the rule then
    computes reaches a differentiated input (some active input of ``unsafe`` does not block it)."""
    row = UNSAFE_OPS[unsafe.primitive]
    bad = row.unsafe_set(unsafe)
    if bad is None:
        return None
    operands = [unsafe.inputs[i] for i in row.operands]
    hits = [values.can_be_unsafe(o, bad) for o in operands]
    if not (all(hits) if row.all_operands else any(hits)):
        return None
    # the rule's NaN goes to every active input: blocked only where each of them drops it
    if all(values.blocks(a, bad, any(a is o for o in operands)) for a in unsafe.inputs if act.is_active(a)):
        return None
    return where_trap(sel, unsafe, row)


def _show(value: np.ndarray) -> str:
    flat = np.asarray(value).ravel()
    return repr(float(flat[0])) if flat.size == 1 or np.all(flat == flat[0]) else "an unsafe constant"


def _clip_traps(unsafe: Eqn, act: Activity, index: Index) -> list[NaNTrap]:
    row = UNSAFE_OPS[unsafe.primitive]
    bad = row.unsafe_set(unsafe)
    if bad is None or row.all_operands:
        return []
    traps = []
    for i in row.operands:
        clip = _unsafe_clip(unsafe.inputs[i], bad, act, index)
        if clip is not None:
            traps.append(clip_trap(clip[0], unsafe, row, clip[1]))
    return traps


def _unsafe_clip(operand, bad: UnsafeSet, act: Activity, index: Index) -> tuple[Eqn, str] | None:
    """The max/min pinning a differentiated ``operand`` to an unsafe constant, and that constant."""
    for _ in range(MAX_DEPTH):
        eqn = index.made_by(index.peel(operand))
        if eqn is None or eqn.primitive not in ("max", "min") or not act.is_active(eqn.outputs[0]):
            return None
        consts = [index.constant(a) for a in eqn.inputs]
        if (consts[0] is None) == (consts[1] is None):
            return None
        bound = consts[0] if consts[0] is not None else consts[1]
        if bad.meets(constant_region(bound)):
            return eqn, _show(bound)
        operand = eqn.inputs[1] if consts[0] is not None else eqn.inputs[0]
    return None


def _nested_activity(eqn: Eqn, act: Activity) -> Iterator[tuple[Graph, tuple[bool, ...]]]:
    """Each nested program of an active equation, with the flags of its inputs that carry a gradient."""
    perturbed = [act.is_active(a) for a in eqn.inputs]
    for sub in eqn.subgraphs():
        n = len(sub.inputs)
        if eqn.primitive == "scan" and n == len(perturbed):
            consts, carries = eqn.params["num_consts"], eqn.params["num_carry"]
            flags = loop_perturbed(sub, perturbed, slice(consts, consts + carries), slice(0, carries))
        elif n == len(perturbed):  # checkpoint, and other calls that pass their operands through
            flags = perturbed
        elif eqn.primitive == "cond" and n == len(perturbed) - 1:  # the first operand is the branch index
            flags = perturbed[1:]
        else:  # conservatively, every floating input of the body may carry a gradient
            flags = [v.type.is_float for v in sub.inputs]
        yield sub, tuple(flags)
