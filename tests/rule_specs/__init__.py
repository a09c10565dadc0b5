"""Rule specs: one row per primitive, shared by the table-driven rule test.

A row says how to produce the primitive (``fn``, a function of arrays built
from ``jax.lax``/``jax.numpy``), how to build its inputs (``args``, given a
NumPy random generator, a float dtype and a case name), and at which tie/kink
points to check JAX's convention (``kinks``). Each family lives in its own
module (``elementwise.py``, ``shape.py``, ...) as a list named ``SPECS``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

# The cases every row is checked on, when its ``args`` builder supports them.
CASES = ("random", "broadcast", "scalar", "empty")


@dataclasses.dataclass(frozen=True)
class RuleSpec:
    """How to exercise one primitive's VJP rule."""

    primitive: str
    fn: Callable[..., Any]
    # args(rng, dtype, case) -> list of inputs, or None if the case does not apply
    args: Callable[[np.random.Generator, Any, str], Sequence[Any] | None]
    # explicit inputs at ties and kinks (built in the test dtype); checked as extra cases
    kinks: Sequence[Sequence[Any]] = ()
    # differentiate only these positional inputs (others are integer indices, predicates, ...)
    argnums: Sequence[int] | None = None
    rtol: float | None = None
    atol: float | None = None
    dtypes: Sequence[str] = ("float32", "float64")
    name: str | None = None
    # the first JAX release on which ``fn`` produces ``primitive`` (older releases lack the primitive or
    # lower ``fn`` differently); the row is skipped on older releases, e.g. (0, 10) for ``stack``
    min_jax: tuple[int, ...] = ()
    # a function with the same values and derivatives that JAX can differentiate, for rows where JAX's
    # own rule fails (from_edtype: JAX's transpose reads .dtype off an undefined primal); None: ``fn``
    reference: Callable[..., Any] | None = None

    @property
    def id(self) -> str:
        return self.name or self.primitive


def unary(shape=(3, 4), low=-2.0, high=2.0):
    """Argument builder for a unary elementwise op on values in [low, high]."""

    def build(rng, dtype, case):
        shp = {"random": shape, "broadcast": shape, "scalar": (), "empty": (0, 3)}[case]
        return [rng.uniform(low, high, shp).astype(dtype)]

    return build


def binary(low=-2.0, high=2.0, low2=None, high2=None):
    """Argument builder for a binary elementwise op; 'broadcast' pairs an array with a rank-0 value."""
    low2 = low if low2 is None else low2
    high2 = high if high2 is None else high2

    def build(rng, dtype, case):
        a_shape, b_shape = {
            "random": ((3, 4), (3, 4)),
            "broadcast": ((3, 4), ()),
            "scalar": ((), ()),
            "empty": ((0, 4), (0, 4)),
        }[case]
        return [rng.uniform(low, high, a_shape).astype(dtype), rng.uniform(low2, high2, b_shape).astype(dtype)]

    return build


def fixed(*arrays_fn):
    """Argument builder from a function (rng, dtype) -> inputs, used for every case that applies ('random')."""

    def build(rng, dtype, case):
        if case != "random":
            return None
        return list(arrays_fn[0](rng, dtype))

    return build


# spec modules not imported on this JAX release -> why (they need a newer one: tests/jax_compat.py)
UNAVAILABLE: dict[str, str] = {}


def all_specs() -> list[RuleSpec]:
    """Every family's rows (except families that need a newer JAX release, listed in ``UNAVAILABLE``)."""
    import importlib
    import pkgutil

    from tests.jax_compat import module_unavailable

    specs = []
    for mod in pkgutil.iter_modules(__path__):
        why = module_unavailable(mod.name)
        if why is not None:
            UNAVAILABLE[mod.name] = why
            continue
        module = importlib.import_module(f"{__name__}.{mod.name}")
        specs.extend(getattr(module, "SPECS", []))
    return specs
