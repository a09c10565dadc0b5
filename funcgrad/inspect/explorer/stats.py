"""The numbers the explorer shows for a value or a cotangent: a summary, a histogram, a heat-map.

* ``mean``, ``std`` (population, ddof=0), ``min``, ``max`` and ``l2`` (the Euclidean norm) are taken
  over the finite entries, accumulated in float64; ``zeros`` is the fraction of entries equal to 0;
  ``nan`` and ``inf`` count the entries that are NaN and ±Inf. Complex values are summarised by
  their modulus, booleans as 0/1.
* The histogram has ``BINS`` equal bins between min and max, over every entry of arrays up to
  ``SAMPLE`` entries and over ``SAMPLE`` evenly strided ones beyond (``hist_of`` says how many).
* The heat-map shows the value as a matrix (leading axes flattened into rows, the last axis as
  columns; one row for a vector) at up to ``HEAT_ROWS`` x ``HEAT_COLS`` evenly spaced entries,
  each quantised to 1..255 (0 marks NaN/Inf) between ``lo`` and ``hi``; ``lo = -hi`` when the
  values have both signs, so that zero sits in the middle of a diverging colour map.
"""

from __future__ import annotations

import base64
import dataclasses
import math

import numpy as np

BINS = 24
SAMPLE = 1 << 16
HEAT_ROWS = 32
HEAT_COLS = 64


@dataclasses.dataclass(frozen=True)
class Summary:
    """What the explorer shows for one array (see the module docstring for the definitions)."""

    shape: tuple[int, ...]
    dtype: str
    size: int
    mean: float
    std: float
    min: float
    max: float
    l2: float
    zeros: float  # fraction of entries equal to 0
    nan: int
    inf: int
    hist: tuple[int, ...] = ()
    hist_of: int = 0  # entries the histogram counts
    heat: tuple | None = None  # (rows, cols, lo, hi, base64 of rows*cols uint8)

    @property
    def finite(self) -> bool:
        return self.nan == 0 and self.inf == 0

    def to_json(self) -> dict:
        out = {
            "shape": list(self.shape),
            "dtype": self.dtype,
            "n": self.size,
            "mean": _num(self.mean),
            "std": _num(self.std),
            "min": _num(self.min),
            "max": _num(self.max),
            "l2": _num(self.l2),
            "zeros": _num(self.zeros),
            "nan": self.nan,
            "inf": self.inf,
            "hist": list(self.hist),
            "hist_of": self.hist_of,
        }
        if self.heat is not None:
            rows, cols, lo, hi, data = self.heat
            out["heat"] = {"rows": rows, "cols": cols, "lo": _num(lo), "hi": _num(hi), "data": data}
        return out


def _num(x: float):
    """A float for JSON (NaN and Inf have no JSON spelling: null)."""
    return float(x) if math.isfinite(x) else None


def summarize(x, *, pictures: bool = True) -> Summary | None:
    """The ``Summary`` of an array, or None for what has no numbers (PRNG keys, float0 tangents).

    Args:
      x: a JAX or NumPy array (or a Python number).
      pictures: also compute the histogram and the heat-map.
    """
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError):
        return None
    dtype = str(getattr(x, "dtype", arr.dtype))
    if arr.dtype.kind == "c":
        arr = np.abs(arr)
    elif arr.dtype.kind == "b":
        arr = arr.astype(np.int8)
    elif arr.dtype.kind not in "fiu" or arr.dtype.itemsize == 0:
        return None
    if arr.dtype.kind == "f" and arr.dtype.itemsize < 4:
        arr = arr.astype(np.float32)  # bfloat16/float16: NumPy's reductions want a native float
    size = int(arr.size)
    if size == 0:
        return Summary(tuple(arr.shape), dtype, 0, *(math.nan,) * 5, 0.0, 0, 0)
    flat = arr.reshape(-1)
    nan = inf = 0
    finite = flat
    if arr.dtype.kind == "f" and not np.isfinite(flat).all():
        nan = int(np.count_nonzero(np.isnan(flat)))
        inf = int(np.count_nonzero(np.isinf(flat)))
        finite = flat[np.isfinite(flat)]
    if finite.size:
        mean = float(np.mean(finite, dtype=np.float64))
        std = float(np.std(finite, dtype=np.float64))
        lo, hi = float(finite.min()), float(finite.max())
        l2 = math.sqrt(finite.size * (std * std + mean * mean))  # sum x^2 = n (var + mean^2)
    else:
        mean = std = lo = hi = l2 = math.nan
    zeros = float(np.count_nonzero(flat == 0)) / size
    hist, hist_of, heat = (), 0, None
    if pictures and finite.size:
        hist, hist_of = _histogram(finite, lo, hi)
        heat = _heat_map(arr, lo, hi)
    return Summary(tuple(arr.shape), dtype, size, mean, std, lo, hi, l2, zeros, nan, inf, hist, hist_of, heat)


def _histogram(finite: np.ndarray, lo: float, hi: float) -> tuple[tuple[int, ...], int]:
    step = max(1, -(-finite.size // SAMPLE))
    sample = finite[::step].astype(np.float64)
    if hi > lo:  # bin i holds lo + i w <= x < lo + (i + 1) w, the last one also x == hi
        which = np.clip(((sample - lo) / (hi - lo) * BINS).astype(np.int64), 0, BINS - 1)
    else:  # one value: the middle bin
        which = np.full(sample.shape, BINS // 2)
    counts = np.bincount(which, minlength=BINS)
    return tuple(int(c) for c in counts), int(sample.size)


def _heat_map(arr: np.ndarray, lo: float, hi: float) -> tuple | None:
    if arr.size < 2:
        return None
    grid = arr.reshape(1, -1) if arr.ndim <= 1 else arr.reshape(-1, arr.shape[-1])
    rows = np.unique(np.linspace(0, grid.shape[0] - 1, min(HEAT_ROWS, grid.shape[0])).round().astype(int))
    cols = np.unique(np.linspace(0, grid.shape[1] - 1, min(HEAT_COLS, grid.shape[1])).round().astype(int))
    cells = grid[np.ix_(rows, cols)].astype(np.float64)
    if lo < 0 < hi:
        hi = max(-lo, hi)
        lo = -hi
    span = hi - lo if hi > lo else 1.0
    finite = np.isfinite(cells)
    quantised = np.where(finite, 1 + np.round((np.where(finite, cells, lo) - lo) / span * 254), 0)
    data = base64.b64encode(np.clip(quantised, 0, 255).astype(np.uint8).tobytes()).decode()
    return (len(rows), len(cols), lo, hi, data)
