"""Interval arithmetic through the elementwise primitives: the range of an equation's output from its
inputs' (``range_of``), the exact preimage of a one-input map (``preimage``), and the region maps they
use."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from funcgrad.core.ir import Eqn
from funcgrad.core.where_traps.graph_index import Index
from funcgrad.core.where_traps.primitives import SAME_VALUE
from funcgrad.core.where_traps.regions import EVERYTHING, INF, Interval, Region, above, below, intersect, meets, point


def range_of(eqn: Eqn, ranges: list[Region], scalars: list[float | None], index: Index) -> Region:
    """Interval arithmetic for the elementwise primitives that keep ranges informative."""
    p = eqn.primitive
    if p == "neg":
        return _affine(ranges[0], -1.0, 0.0)
    if p in ("add", "sub", "mul", "div") and (scalars[0] is None) != (scalars[1] is None):
        return _with_constant(p, ranges, scalars)
    if p in ("add", "add_any", "sub", "mul", "max", "min"):
        if p == "mul" and index.number(eqn.inputs[0]) == index.number(eqn.inputs[1]):
            return _map(_abs_region(ranges[0]), lambda x: x * x)
        return _hull_binary(p, _hull(ranges[0]), _hull(ranges[1]))
    if p in _MONOTONE:
        fn, floor_, closed_lo = _MONOTONE[p]
        return _map(ranges[0], fn, floor_, closed_lo)
    if p in ("sin", "cos", "tanh", "erf", "logistic") and ranges[0]:
        return (Interval(0.0, 1.0),) if p == "logistic" else (Interval(-1.0, 1.0),)
    if p == "abs":
        return _abs_region(ranges[0])
    if p == "clamp":  # max(lo, min(x, hi))
        return _hull_binary("max", _hull(ranges[0]), _hull_binary("min", _hull(ranges[1]), _hull(ranges[2])))
    if p == "square" or (p == "integer_pow" and eqn.params["y"] > 0 and eqn.params["y"] % 2 == 0):
        y = 2 if p == "square" else eqn.params["y"]
        return _map(_abs_region(ranges[0]), lambda x: x**y)
    if p == "integer_pow" and eqn.params["y"] > 0:
        y = eqn.params["y"]
        return _map(ranges[0], lambda x: x**y)
    if p == "reduce_sum":
        whole = _hull(ranges[0])
        if whole and whole[0].lo >= 0:
            return above(0.0, True)
        if whole and whole[0].hi <= 0:
            return below(0.0, True)
    return EVERYTHING


def preimage(eqn: Eqn | None, region: Region, index: Index) -> tuple[object, Region] | None:
    """(the input, the values it takes) given that ``eqn``'s output takes values in ``region``, for
    the one-input maps whose preimage is exact (casts, affine maps, sign, abs); else None."""
    if eqn is None or len(eqn.outputs) != 1:
        return None
    p = eqn.primitive
    if p in SAME_VALUE:
        return eqn.inputs[0], region
    if p == "neg":
        return eqn.inputs[0], _affine(region, -1.0, 0.0)
    if p == "sign":
        parts = [(-1.0, below(0.0, False)), (0.0, point(0.0)), (1.0, above(0.0, False))]
        return eqn.inputs[0], tuple(iv for s, r in parts if meets(region, point(s)) for iv in r)
    if p == "abs":
        nonneg = intersect(region, above(0.0, True))
        return eqn.inputs[0], (*nonneg, *_affine(nonneg, -1.0, 0.0))
    if p not in ("add", "sub", "mul", "div"):
        return None
    scalars = [index.scalar(a) for a in eqn.inputs]
    if (scalars[0] is None) == (scalars[1] is None):
        return None
    const_first = scalars[0] is not None
    c, x = (scalars[0], eqn.inputs[1]) if const_first else (scalars[1], eqn.inputs[0])
    if p == "add":
        return x, _affine(region, 1.0, -c)
    if p == "sub":  # c - x or x - c
        return x, _affine(region, -1.0, c) if const_first else _affine(region, 1.0, c)
    if p == "mul" and c != 0:
        return x, _affine(region, 1.0 / c, 0.0)
    if p == "div" and not const_first and c != 0:  # x / c
        return x, _affine(region, c, 0.0)
    return None


def _safe_call(fn, x: float, fallback: float) -> float:
    with np.errstate(all="ignore"):
        y = float(fn(np.float64(x)))
    return fallback if math.isnan(y) else y


# primitive -> (increasing function, lowest input of its domain, result closed at its low end
# whatever the input: exp underflows to 0 exactly)
_MONOTONE: dict[str, tuple[Callable, float, bool]] = {
    "exp": (np.exp, -INF, True),
    "exp2": (np.exp2, -INF, True),
    "expm1": (np.expm1, -INF, True),
    "log": (np.log, 0.0, False),
    "log1p": (np.log1p, -1.0, False),
    "sqrt": (np.sqrt, 0.0, False),
    "cbrt": (np.cbrt, -INF, False),
    "atan": (np.arctan, -INF, False),
    "asinh": (np.arcsinh, -INF, False),
    "sinh": (np.sinh, -INF, False),
}


def _map(region: Region, fn, domain_lo: float = -INF, closed_lo: bool = False) -> Region:
    """An increasing ``fn`` applied to each interval (clamped to its domain); finite ends are closed,
    which can only widen the result."""
    out = []
    for iv in region:
        lo, hi = max(iv.lo, domain_lo), iv.hi
        if lo > hi:
            continue
        a, b = _safe_call(fn, lo, -INF), _safe_call(fn, hi, INF)
        out.append(Interval(a, b, math.isfinite(a) or closed_lo, math.isfinite(b)))
    return tuple(out)


def _affine(region: Region, scale: float, shift: float) -> Region:
    """``scale * x + shift`` of each interval, exactly (ends keep their closedness)."""
    if scale == 0:
        return point(shift) if region else ()
    out = []
    for iv in region:
        lo, hi = iv.lo * scale + shift, iv.hi * scale + shift
        if scale > 0:
            out.append(Interval(lo, hi, iv.lo_closed, iv.hi_closed))
        else:
            out.append(Interval(hi, lo, iv.hi_closed, iv.lo_closed))
    return tuple(out)


def _with_constant(p: str, ranges: list[Region], scalars: list[float | None]) -> Region:
    const_first = scalars[0] is not None
    c = scalars[0] if const_first else scalars[1]
    region = ranges[1] if const_first else ranges[0]
    if p == "add":
        return _affine(region, 1.0, c)
    if p == "sub":
        return _affine(region, -1.0, c) if const_first else _affine(region, 1.0, -c)
    if p == "mul":
        return _affine(region, c, 0.0)
    if not const_first and c != 0:  # x / c
        return _affine(region, 1.0 / c, 0.0)
    return EVERYTHING


def _hull(region: Region) -> Region:
    if not region:
        return ()
    lo = min(region, key=lambda i: (i.lo, not i.lo_closed))
    hi = max(region, key=lambda i: (i.hi, i.hi_closed))
    return (Interval(lo.lo, hi.hi, lo.lo_closed, hi.hi_closed),)


def _hull_binary(p: str, a: Region, b: Region) -> Region:
    if not a or not b:
        return ()
    x, y = a[0], b[0]
    with np.errstate(all="ignore"):
        if p in ("add", "add_any"):
            ends = [x.lo + y.lo, x.hi + y.hi]
        elif p == "sub":
            ends = [x.lo - y.hi, x.hi - y.lo]
        elif p == "mul":
            ends = [u * v for u in (x.lo, x.hi) for v in (y.lo, y.hi)]
        elif p == "max":
            ends = [max(x.lo, y.lo), max(x.hi, y.hi)]
        else:
            ends = [min(x.lo, y.lo), min(x.hi, y.hi)]
    if any(math.isnan(e) for e in ends):
        return EVERYTHING
    lo, hi = min(ends), max(ends)
    return (Interval(lo, hi, math.isfinite(lo), math.isfinite(hi)),)


def _abs_region(region: Region) -> Region:
    out = []
    for iv in region:
        if iv.lo >= 0:
            out.append(iv)
        elif iv.hi <= 0:
            out.append(Interval(-iv.hi, -iv.lo, iv.hi_closed, iv.lo_closed))
        else:
            out.append(Interval(0.0, max(-iv.lo, iv.hi), True, math.isfinite(max(-iv.lo, iv.hi))))
    return tuple(out)
