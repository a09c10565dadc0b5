"""The values at the masked points of one mask (``MaskedValues``): whether a value depends on what the
condition tests, the range it can take there, and whether the double-where or a clamp blocks a NaN."""

from __future__ import annotations

from funcgrad.core.activity import Activity
from funcgrad.core.ir import Var
from funcgrad.core.where_traps.graph_index import Index, constant_region
from funcgrad.core.where_traps.interval_arithmetic import range_of
from funcgrad.core.where_traps.masks import Mask
from funcgrad.core.where_traps.primitives import ELEMENTWISE, MAX_DEPTH, SAME_VALUE
from funcgrad.core.where_traps.regions import EVERYTHING, Interval, Region, UnsafeSet, intersect


class MaskedValues:
    """For one mask: whether a value depends on what the condition tests (point by point), and the
    range of values it can take at the masked points."""

    def __init__(self, index: Index, mask: Mask, act: Activity):
        self.index, self.mask, self.act = index, mask, act
        self._linked: dict[int, bool] = {}
        self._range: dict[int, Region] = {}

    def can_be_unsafe(self, operand, bad: UnsafeSet, depth: int = 0) -> bool:
        """Whether ``operand`` can take a value of ``bad`` at the masked points: a constant that is
        one; the double-where's substituted values; else a value tied to the condition whose range
        there meets ``bad``."""
        base = self.index.peel(operand)
        constant = self.index.constant(base)
        if constant is not None:
            return bad.meets(constant_region(constant))
        cases = self._same_mask_cases(base)
        if cases is not None and depth < MAX_DEPTH:
            return any(self.can_be_unsafe(c, bad, depth + 1) for c in cases)
        return self.linked(base) and bad.meets(self.range(base))

    def blocks(self, operand, bad: UnsafeSet, is_unsafe_operand: bool) -> bool:
        """Whether a NaN cotangent arriving at ``operand`` at the masked points is dropped there:
        by the double-where (its select_n sends it only to the substituted values, which carry no
        gradient), or by a ``lax.clamp`` whose VJP selects (where it clamps; so only the values
        inside its bounds can be the unsafe ones)."""
        base = self.index.peel(operand)
        cases = self._same_mask_cases(base)
        if cases is not None:
            return not any(self.act.is_active(c) for c in cases)
        eqn = self.index.made_by(base)
        if is_unsafe_operand and eqn is not None and eqn.primitive == "clamp":
            lo, hi = self.index.scalar(eqn.inputs[0]), self.index.scalar(eqn.inputs[2])
            if lo is not None and hi is not None:
                inside = intersect(self.range(eqn.inputs[1]), (Interval(lo, hi, False, False),))
                return not bad.meets(inside)
        return False

    def _same_mask_cases(self, atom) -> list | None:
        eqn = self.index.made_by(atom)
        return self.mask.masked_cases(eqn) if eqn is not None and eqn.primitive == "select_n" else None

    def linked(self, atom, depth: int = 0) -> bool:
        if not isinstance(atom, Var) or depth > MAX_DEPTH:
            return False
        key = id(atom)
        if key not in self._linked:
            self._linked[key] = False  # a guard while it is decided
            self._linked[key] = self._decide_linked(atom, depth)
        return self._linked[key]

    def _decide_linked(self, atom: Var, depth: int) -> bool:
        if self.index.number(atom) in self.mask.related:
            return True
        eqn = self.index.made_by(atom)
        if eqn is None or not (eqn.primitive in ELEMENTWISE or eqn.primitive in SAME_VALUE):
            return False
        if eqn.primitive == "select_n":
            cases = self.mask.masked_cases(eqn)
            return any(self.linked(c, depth + 1) for c in (eqn.inputs[1:] if cases is None else cases))
        return any(self.linked(a, depth + 1) for a in eqn.inputs)

    def range(self, atom, depth: int = 0) -> Region:
        constant = self.index.constant(atom)
        if constant is not None:
            return constant_region(constant)
        if not isinstance(atom, Var) or depth > MAX_DEPTH:
            return EVERYTHING
        key = id(atom)
        if key not in self._range:
            self._range[key] = EVERYTHING
            self._range[key] = self._decide_range(atom, depth)
        return self._range[key]

    def _decide_range(self, atom: Var, depth: int) -> Region:
        computed = self._computed_range(atom, depth)
        refined = self.mask.refined.get(self.index.number(atom))
        # a tested value takes, at the masked points, values both possible and masked (none: the
        # condition is constant and never masks, as jnp.var's test of its normaliser)
        return computed if refined is None else intersect(refined, computed)

    def _computed_range(self, atom: Var, depth: int) -> Region:
        eqn = self.index.made_by(atom)
        if eqn is None or len(eqn.outputs) != 1:
            return EVERYTHING
        if eqn.primitive == "select_n":
            cases = self.mask.masked_cases(eqn)
            return tuple(iv for c in (eqn.inputs[1:] if cases is None else cases) for iv in self.range(c, depth + 1))
        if eqn.primitive in SAME_VALUE or eqn.primitive in ("reduce_max", "reduce_min", "copy"):
            return self.range(eqn.inputs[0], depth + 1)
        ranges = [self.range(a, depth + 1) for a in eqn.inputs]
        return range_of(eqn, ranges, [self.index.scalar(a) for a in eqn.inputs], self.index)
