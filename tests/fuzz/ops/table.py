"""The operation table's machinery: ``Op``, the ``op`` decorator, and helpers shared by the families."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import jax
import numpy as np

from tests.fuzz.programs import LIMIT, MAX_SIZE, Builder, Val, _num


@dataclasses.dataclass(frozen=True)
class Op:
    """One operation the generator can apply."""

    name: str
    family: str
    build: Callable[[Builder], Val | None]
    weight: int = 2


OPS: list[Op] = []
# the table's order (a program drawn from a seed depends on it): families in this order, each in definition order
FAMILIES = (
    "elementwise",
    "reduce",
    "cumulative",
    "shape",
    "linear",
    "index",
    "sort",
    "window",
    "fft",
    "linalg",
    "control",
)


def op(name: str, family: str, weight: int = 2):
    """Register ``build`` as the operation ``name`` (a decorator)."""

    def register(build):
        OPS.append(Op(name, family, build, weight))
        return build

    return register


def _result_dtype(*vals: Val) -> str:
    # jnp promotion between float32 and float64 arrays; Python scalars ("weak") take the other's dtype
    dts = [v.dtype for v in vals if v.dtype != "weak"]
    return "float64" if "float64" in dts else (dts[0] if dts else "float32")


def _bshape(*vals: Val) -> tuple[int, ...]:
    return tuple(np.broadcast_shapes(*(v.shape for v in vals)))


def _prepare(b: Builder, x: Val, domain: str) -> Val:
    """``x`` moved into an operation's domain (a Python scalar is moved directly)."""
    if x.dtype == "weak":
        c = float(x.name)
        value = {
            "any": c,
            "small": max(-2.0, min(2.0, c)),
            "pos": c * c + 0.25,
            "one": c * c + 1.25,
            "unit": 0.9 * math.tanh(c),
            "tan": 1.2 * math.tanh(c),
        }[domain]
        return Val(_num(value), (), "weak", abs(value))
    if domain == "any":
        return b.bounded(x, LIMIT)
    if domain == "small":
        return b.bounded(x, 2.0)
    if domain == "pos":
        return b.positive(x)
    if domain == "one":
        return b.positive(x, low=1.25)
    if domain == "unit":
        return b.unit(x)
    if domain == "tan":
        return b.unit(x, 1.2)
    raise ValueError(domain)


def _shape_of(expr: str, operands: dict[str, Val]):
    """(shape, dtype) of ``expr`` evaluated on ``operands``, computed abstractly by JAX."""
    from tests.conftest import x64
    from tests.fuzz.programs import namespace

    names = list(operands)
    structs = [jax.ShapeDtypeStruct(operands[n].shape, np.dtype(operands[n].dtype)) for n in names]
    fn = eval(f"lambda {', '.join(names)}: {expr}", namespace())  # noqa: S307 (generated test code)
    with x64():
        out = jax.eval_shape(fn, *structs)
    return tuple(out.shape), str(out.dtype)


def _emit_auto(b: Builder, expr: str, operands: list[Val], bound: float) -> Val | None:
    """Emit ``expr`` with its type computed by ``jax.eval_shape``; None if too large."""
    ops = {v.name: v for v in operands if v.dtype != "weak" and v.name.isidentifier()}
    shape, dtype = _shape_of(expr, ops)
    if int(np.prod(shape, dtype=np.int64)) > MAX_SIZE or len(shape) > 4:
        return None
    return b.emit(expr, shape, dtype, bound)


def _broadcasts(a, b) -> bool:
    try:
        np.broadcast_shapes(a, b)
        return True
    except ValueError:
        return False


def _same_but(b: Builder, x: Val, axis: int | None) -> Val:
    """A pool value with ``x``'s shape (except along ``axis``), or ``x`` itself (a fan-out)."""
    y = b.pick(
        lambda v: v.ndim == x.ndim and all(d == e or a == axis for a, (d, e) in enumerate(zip(v.shape, x.shape)))
    )
    return y if y is not None and b.draw.integer(0, 3) else x
