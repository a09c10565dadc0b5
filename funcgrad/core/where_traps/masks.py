"""The mask of a ``select_n`` case (``Mask``): the points where the case is not selected, what the
condition tests and the values it takes there, and the condition's canonical form (the same condition
written twice, or negated)."""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np

from funcgrad.core.ir import Eqn, Var
from funcgrad.core.where_traps.graph_index import Index
from funcgrad.core.where_traps.interval_arithmetic import preimage
from funcgrad.core.where_traps.primitives import BOOLEAN, COMPARISONS, ELEMENTWISE, MAX_DEPTH, MAX_WALK, SAME_VALUE
from funcgrad.core.where_traps.regions import EVERYTHING, Region, above, below, complement, point

# canonical comparisons: gt(a, b) = lt(b, a); ge(a, b) = not lt(a, b); le(a, b) = not lt(b, a); ne = not eq
_CANONICAL = {
    "lt": ("lt", False, False),
    "gt": ("lt", True, False),
    "ge": ("lt", False, True),
    "le": ("lt", True, True),
    "eq": ("eq", False, False),
    "ne": ("eq", False, True),
}


def _true_region(op: str, c: float, t_left: bool) -> Region:
    """Where ``op(t, c)`` (``t_left``) or ``op(c, t)`` holds, as values of ``t``."""
    if not t_left:
        op = {"lt": "gt", "gt": "lt", "le": "ge", "ge": "le"}.get(op, op)
    if op == "lt":
        return below(c, False)
    if op == "le":
        return below(c, True)
    if op == "gt":
        return above(c, False)
    if op == "ge":
        return above(c, True)
    if op == "eq":
        return point(c)
    return complement(point(c))


class Mask:
    """The condition of one ``select_n`` and one of its cases: the points where that case is *not*
    selected (the masked points), what the condition tests, and where it is the same condition."""

    def __init__(self, index: Index, sel: Eqn, case: int):
        self.index, self.case, self.n_cases = index, case, len(sel.inputs) - 1
        pred = sel.inputs[0]
        # an int condition converted from a bool selects like the bool
        self.boolean = self.n_cases == 2 and index.peel(pred).type.dtype == np.bool_
        self.key, self.negated = self.mask_key(pred)
        self.tested: dict[int, object] = {}  # value number -> an atom holding it
        self.refined: dict[int, Region] = {}  # value number of the tested value -> its values at masked points
        self._read_condition(pred)
        self._refine(pred)
        self.related = self._ancestors()

    def mask_key(self, pred) -> tuple[Hashable, bool]:
        """(what the condition computes, negated?), equal for the same condition written twice."""
        pred, negated = self._strip_not(pred)
        eqn = self.index.made_by(pred)
        if eqn is not None and eqn.primitive in COMPARISONS:
            op, swap, flip = _CANONICAL[eqn.primitive]
            a, b = (self.index.number(x) for x in eqn.inputs)
            operands = (b, a) if swap else (a, b)
            if op == "eq":
                operands = tuple(sorted(operands))
            return (op, operands), negated ^ flip
        return ("value", self.index.number(pred)), negated

    def _strip_not(self, pred) -> tuple[object, bool]:
        negated = False
        for _ in range(MAX_DEPTH):
            pred = self.index.peel(pred)
            eqn = self.index.made_by(pred)
            if eqn is None or eqn.primitive != "not":
                break
            negated, pred = not negated, eqn.inputs[0]
        return pred, negated

    def _read_condition(self, pred, depth: int = 0) -> None:
        """Collect the values the condition compares (through and/or/not)."""
        eqn = self.index.made_by(self.index.peel(pred))
        if eqn is None or depth > MAX_DEPTH:
            return
        if eqn.primitive in BOOLEAN:
            for operand in eqn.inputs:
                self._read_condition(operand, depth + 1)
        elif eqn.primitive == "is_finite" or eqn.primitive in COMPARISONS:
            for atom in eqn.inputs:
                if isinstance(atom, Var) and self.index.constant(atom) is None:
                    self.tested.setdefault(self.index.number(atom), atom)

    def _refine(self, pred) -> None:
        """When the condition is one comparison of a value with a constant (or ``is_finite``), the
        values that value takes at the masked points: bool case k is selected where the condition
        is k, so masked where it is 1 - k."""
        if not self.boolean:
            return
        pred, negated = self._strip_not(pred)
        eqn = self.index.made_by(pred)
        if eqn is None:
            return
        if eqn.primitive == "is_finite":
            tested, true_region = eqn.inputs[0], EVERYTHING
        elif eqn.primitive in COMPARISONS:
            a, b = eqn.inputs
            ca, cb = self.index.scalar(a), self.index.scalar(b)
            if (ca is None) == (cb is None):
                return
            tested = b if cb is None else a
            true_region = _true_region(eqn.primitive, ca if cb is None else cb, tested is a)
        else:
            return
        pred_true = complement(true_region) if negated else true_region
        masked = pred_true if self.case == 0 else complement(pred_true)
        for _ in range(MAX_DEPTH):
            self.refined[self.index.number(tested)] = masked
            step = preimage(self.index.made_by(tested), masked, self.index)
            if step is None:
                return
            tested, masked = step

    def _ancestors(self) -> set[int]:
        """The tested values and what they are computed from elementwise (aligned point by point)."""
        found = set(self.tested)
        stack, steps = list(self.tested.values()), 0
        while stack and steps < MAX_WALK:
            steps += 1
            eqn = self.index.made_by(stack.pop())
            if eqn is None or not (eqn.primitive in ELEMENTWISE or eqn.primitive in SAME_VALUE):
                continue
            for a in eqn.inputs:
                if isinstance(a, Var) and self.index.number(a) not in found:
                    found.add(self.index.number(a))
                    stack.append(a)
        return found

    def masked_cases(self, sel: Eqn) -> list | None:
        """If ``sel`` tests this very condition (or its negation), the cases it picks at the masked
        points; else None."""
        key, negated = self.mask_key(sel.inputs[0])
        if key != self.key or len(sel.inputs) - 1 != self.n_cases:
            return None
        cases = sel.inputs[1:]
        picked = [j for j in range(self.n_cases) if j != self.case]
        if negated != self.negated:
            if not self.boolean:
                return None
            picked = [1 - j for j in picked]
        return [cases[j] for j in picked]
