"""What the gradient checks found, as data with a readable ``__str__``.

``compare`` measures one number against another (funcgrad against JAX, or a
derivative against finite differences); ``LeafReport`` gathers the comparisons
of one differentiated leaf; ``GradCheckReport`` gathers the leaves and, when
funcgrad and JAX disagree, the first equation whose VJP rule is to blame
(``EqnMismatch``). Nothing here computes a derivative.
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

from funcgrad.core.ir import Eqn, Graph

# funcgrad against JAX: the same math in the same dtype, so only rounding differs.
AD_RTOL = {"float64": 1e-9, "float32": 1e-4, "float16": 1e-2, "bfloat16": 5e-2}
# a derivative in this dtype against float64 finite differences: the derivative's own rounding.
FD_RTOL = {"float64": 1e-6, "float32": 2e-3, "float16": 2e-2, "bfloat16": 1e-1}


def dtype_name(dtype) -> str:
    return np.dtype(dtype).name


def default_rtol(table: dict, dtype) -> float:
    """The table's tolerance for ``dtype`` (float32's for dtypes it does not list)."""
    return table.get(dtype_name(dtype), table["float32"])


def least_precise(dtypes) -> np.dtype:
    """The floating dtype with the largest machine epsilon among ``dtypes``."""
    floats = [np.dtype(d) for d in dtypes if jnp.issubdtype(d, jnp.floating)]
    if not floats:
        return np.dtype("float32")
    return max(floats, key=lambda d: float(jnp.finfo(d).eps))


@dataclasses.dataclass(frozen=True)
class Comparison:
    """One value (``tested``) against a reference, elementwise or along a direction."""

    label: str  # e.g. "funcgrad vs jax"
    tested: str  # which method produced ``tested_value``: "funcgrad", "jax", ...
    reference: str  # "jax" or "finite differences"
    kind: str  # "elementwise" or "along a random direction"
    max_abs: float
    max_rel: float
    index: tuple | None  # the worst element (None for a directional derivative or no elements)
    tested_value: float
    reference_value: float
    rtol: float
    atol: float
    ok: bool
    detail: str = ""  # set instead of the numbers when the values cannot be compared (shape, dtype)

    def __str__(self) -> str:
        if self.detail:
            return f"{self.label}: {'ok' if self.ok else 'MISMATCH'}: {self.detail}"
        where = "" if self.index is None else f" at index {self.index}"
        status = "ok" if self.ok else "MISMATCH"
        return (
            f"{self.label} ({self.kind}): {status}: max abs err {self.max_abs:.3g}, max rel err "
            f"{self.max_rel:.3g}{where}: {self.tested} = {self.tested_value:.8g}, "
            f"{self.reference} = {self.reference_value:.8g}  [rtol {self.rtol:.2g}, atol {self.atol:.2g}]"
        )


def compare(label, tested, reference, a, b, *, rtol, atol=None, scale=None, kind="elementwise") -> Comparison:
    """Compare ``a`` (from ``tested``) with ``b`` (from ``reference``): ``|a - b| <= atol + rtol |b|``.

    Args:
      label, tested, reference, kind: names used in the report.
      a, b: arrays of the same shape (any float dtype; compared in float64).
      rtol: relative tolerance.
      atol: absolute tolerance; by default ``rtol * scale``, with ``scale`` defaulting to
        ``max |b|`` (so elements tiny next to the largest one are not held to their own size).

    Returns:
      A ``Comparison``. NaN equals NaN and an infinity equals itself (JAX's conventions at
      singular points are reproduced, not judged).
    """
    a = np.asarray(a).astype(np.float64)
    b = np.asarray(b).astype(np.float64)
    if a.shape != b.shape:
        detail = f"{tested} gave shape {a.shape}, {reference} gave {b.shape}"
        return Comparison(
            label, tested, reference, kind, np.inf, np.inf, None, np.nan, np.nan, rtol, 0.0, False, detail
        )
    finite_b = np.where(np.isfinite(b), np.abs(b), 0.0)
    if atol is None:
        atol = rtol * (float(finite_b.max(initial=0.0)) if scale is None else float(scale))
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.where(same, 0.0, np.abs(a - b))
        err = np.where(np.isnan(err), np.inf, err)
        allowed = atol + rtol * finite_b
        rel = np.where(err == 0, 0.0, err / np.where(finite_b > 0, finite_b, np.inf))
        rel = np.where((err > 0) & (finite_b == 0), np.inf, rel)
    if a.size == 0:
        return Comparison(label, tested, reference, kind, 0.0, 0.0, None, 0.0, 0.0, rtol, atol, True)
    bad = err > allowed
    with np.errstate(invalid="ignore"):
        badness = np.where(bad, err - allowed, -np.inf) if bad.any() else err
    worst = int(np.argmax(badness))
    index = tuple(int(i) for i in np.unravel_index(worst, a.shape)) if a.ndim and kind == "elementwise" else None
    return Comparison(
        label,
        tested,
        reference,
        kind,
        float(err.max()),
        float(rel.max()),
        index,
        float(a.reshape(-1)[worst]),
        float(b.reshape(-1)[worst]),
        rtol,
        float(atol),
        not bool(bad.any()),
    )


@dataclasses.dataclass
class LeafReport:
    """Every comparison made for one differentiated leaf, and the values compared (by method)."""

    path: str
    type: str  # e.g. "f32[3,4]"
    comparisons: list[Comparison] = dataclasses.field(default_factory=list)
    # method -> the derivative it gave, e.g. "funcgrad", "jax", "finite differences (elementwise)"
    values: dict = dataclasses.field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        # jax vs finite differences is a diagnosis (a kink, a bad step), not funcgrad's failure,
        # but funcgrad must agree with both.
        return all(c.ok for c in self.comparisons if c.tested == "funcgrad")

    def __str__(self) -> str:
        if self.ok:
            worst = {}
            for c in self.comparisons:
                if c.tested == "funcgrad":
                    worst[c.reference] = max(worst.get(c.reference, 0.0), c.max_rel)
            summary = ", ".join(f"max rel err vs {k} {v:.2g}" for k, v in worst.items())
            return f"{self.path}  {self.type}: ok ({summary})"
        lines = [f"{self.path}  {self.type}: FAILED"]
        lines += [f"    {c}" for c in self.comparisons]
        return "\n".join(lines)


@dataclasses.dataclass
class EqnMismatch:
    """The first equation (in backward order) whose funcgrad VJP differs from ``jax.vjp`` of it."""

    eqn: Eqn
    input_index: int
    comparison: Comparison
    order: int = 1

    @property
    def primitive(self) -> str:
        return self.eqn.primitive

    @property
    def where(self) -> str:
        return self.eqn.source.where()

    def __str__(self) -> str:
        e = self.eqn
        ins = ", ".join(a.type.short() for a in e.inputs)
        outs = ", ".join(v.type.short() for v in e.outputs)
        fn = f" (in {e.source.function})" if e.source.function else ""
        scope = f"  scope: {e.source.scope}\n" if e.source.scope else ""
        params = format_params(e.params)
        params = f"[{params}]" if params else ""
        order = "" if self.order == 1 else " (in the graph of funcgrad's first-order gradient)"
        return (
            f"first equation whose funcgrad VJP differs from jax.vjp of the same primitive{order}:\n"
            f"  primitive {e.primitive!r} at {self.where}{fn}\n"
            f"{scope}"
            f"  equation: ({outs}) = {e.primitive}{params}({ins})\n"
            f"  cotangent of input {self.input_index} ({e.inputs[self.input_index].type.short()}): "
            f"{self.comparison}\n"
            f"  fix: correct the VJP rule of {e.primitive!r} (funcgrad.defvjp) or check it alone with "
            f"funcgrad.check_rule({e.primitive!r})"
        )


def format_params(params, limit: int = 160) -> str:
    """Equation parameters as ``k=v`` text; nested graphs are abbreviated."""
    parts = []
    for k, v in params.items():
        if v is None:
            continue
        if isinstance(v, Graph):
            v = f"<graph: {len(v.eqns)} eqns>"
        elif isinstance(v, (tuple, list)) and v and all(isinstance(g, Graph) for g in v):
            v = f"<{len(v)} graphs>"
        parts.append(f"{k}={v}")
    text = " ".join(parts)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclasses.dataclass
class GradCheckReport:
    """The result of ``funcgrad.check_grads``: one ``LeafReport`` per differentiated leaf and order."""

    fun_name: str
    order: int
    leaves: list[LeafReport]
    culprit: EqnMismatch | None = None
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(leaf.ok for leaf in self.leaves)

    @property
    def failures(self) -> list[LeafReport]:
        return [leaf for leaf in self.leaves if not leaf.ok]

    def __str__(self) -> str:
        head = "passed" if self.ok else "FAILED"
        lines = [f"check_grads of {self.fun_name} (order {self.order}): {head}"]
        for leaf in self.leaves:
            lines.append("  " + str(leaf).replace("\n", "\n  "))
        if self.culprit is not None:
            lines.append(str(self.culprit))
        lines += self.notes
        return "\n".join(lines)

    def raise_if_failed(self) -> None:
        """Raise ``AssertionError`` with this report if any leaf failed."""
        if not self.ok:
            raise AssertionError(str(self))
