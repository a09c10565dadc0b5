"""Sets of real numbers: an ``Interval``, a ``Region`` (a union of intervals) and its helpers, and the
unsafe sets of the operations (``Values``, ``Poles``)."""

from __future__ import annotations

import dataclasses
import math

INF = math.inf


@dataclasses.dataclass(frozen=True)
class Interval:
    """An interval of the real line; an end at +-inf is always open (inf/NaN inputs are not traps)."""

    lo: float
    hi: float
    lo_closed: bool = True
    hi_closed: bool = True

    def contains(self, x: float) -> bool:
        above = self.lo < x or (self.lo_closed and x == self.lo and math.isfinite(x))
        below = x < self.hi or (self.hi_closed and x == self.hi and math.isfinite(x))
        return above and below

    def meets(self, other: Interval) -> bool:
        lo, hi = max(self.lo, other.lo), min(self.hi, other.hi)
        if lo < hi:
            return True
        return lo == hi and self.contains(lo) and other.contains(lo)


# A set of reals is a tuple of intervals (a union).
Region = tuple[Interval, ...]

EVERYTHING: Region = (Interval(-INF, INF, False, False),)


def point(x: float) -> Region:
    return (Interval(x, x),)


def below(x: float, closed: bool) -> Region:
    return (Interval(-INF, x, False, closed),)


def above(x: float, closed: bool) -> Region:
    return (Interval(x, INF, closed, False),)


def meets(a: Region, b: Region) -> bool:
    return any(i.meets(j) for i in a for j in b)


def intersect(a: Region, b: Region) -> Region:
    """The reals in both."""
    out = []
    for i in a:
        for j in b:
            lo = max((i.lo, not i.lo_closed), (j.lo, not j.lo_closed))
            hi = min((i.hi, i.hi_closed), (j.hi, j.hi_closed))
            iv = Interval(lo[0], hi[0], not lo[1], hi[1])
            if iv.lo < iv.hi or (iv.lo == iv.hi and iv.contains(iv.lo)):
                out.append(iv)
    return tuple(out)


def complement(region: Region) -> Region:
    """The reals not in ``region``."""
    gaps, lo, lo_closed = [], -INF, False
    for iv in sorted(region, key=lambda i: (i.lo, not i.lo_closed)):
        if lo < iv.lo or (lo == iv.lo and lo_closed and not iv.lo_closed):
            gaps.append(Interval(lo, iv.lo, lo_closed, not iv.lo_closed))
        if iv.hi > lo:
            lo, lo_closed = iv.hi, not iv.hi_closed
        elif iv.hi == lo:
            lo_closed = lo_closed and not iv.hi_closed
    if lo < INF:
        gaps.append(Interval(lo, INF, lo_closed, False))
    return tuple(g for g in gaps if g.lo < g.hi or (g.lo_closed and g.hi_closed))


class Poles:
    """The non-positive integers (the poles of lgamma and digamma)."""

    def meets(self, region: Region) -> bool:
        return any(_has_pole(iv) for iv in region)


def _has_pole(iv: Interval) -> bool:
    top = min(iv.hi, 0.0)
    if top == -INF:
        return False
    n = math.floor(top)
    if n == iv.hi and not iv.hi_closed:
        n -= 1
    return iv.contains(n) or (iv.lo == -INF and n <= 0)


class Values:
    """A set of reals given by a ``Region``, as an unsafe set of an operation."""

    def __init__(self, region: Region):
        self.region = region

    def meets(self, region: Region) -> bool:
        return meets(self.region, region)


UnsafeSet = Values | Poles
