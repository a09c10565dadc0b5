"""Check one VJP rule on its own: ``funcgrad.check_rule``, and the table ``funcgrad.rule_coverage``.

For people who add or override rules with ``funcgrad.defvjp``: ``check_rule``
runs the rule through ``funcgrad.check_grads`` on random, broadcasting (an
array with a rank-0 operand), 0-d, size-0 and kink inputs, in float32 and
float64. Away from kinks funcgrad must agree with JAX's own derivative and with
finite differences; at kinks (ties, zeros) only with JAX's, whose convention
funcgrad reproduces. (JAX's derivative is computed by ``funcgrad.check``, the
one module that calls JAX's AD; this module does not.) Every call is remembered, and ``rule_coverage`` tabulates
which registered rules exist, were checked, and failed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
from collections.abc import Callable, Sequence
from typing import Any

import jax.numpy as jnp
import numpy as np
from jax import lax

from funcgrad import api
from funcgrad.checking.check_grads import check_grads
from funcgrad.checking.report import GradCheckReport
from funcgrad.core.ir import Graph
from funcgrad.core.jax_compat import enable_x64
from funcgrad.core.registry import no_vjp_reasons, vjp_rules, zero_vjp_primitives
from funcgrad.errors import InputError

CASES = ("random", "broadcast", "scalar", "empty", "kink")
# Default kink point (the format of tests/rule_specs: a list of points, each one value list per
# argument; a single value list is used for every argument): zero, and ties x == y.
DEFAULT_KINKS = (([0.0, 1.0, -1.0],),)


@dataclasses.dataclass
class RuleCase:
    """One input case of ``check_rule``: its report, or the error funcgrad raised."""

    case: str
    dtype: str
    report: GradCheckReport | None = None
    error: str | None = None
    primitives: frozenset = frozenset()  # the primitives the function produced

    @property
    def ok(self) -> bool:
        return self.error is None and self.report is not None and self.report.ok

    def __str__(self) -> str:
        return self.format(full=not self.ok)

    def format(self, full: bool) -> str:
        """One line; with ``full``, the error or the failing check's whole report under it."""
        head = f"{self.case} / {self.dtype}: {'ok' if self.ok else 'FAILED'}"
        if self.ok:
            return head
        if self.error is not None:
            detail = self.error
        elif full:
            detail = str(self.report)
        else:
            worst = [str(c) for leaf in self.report.failures for c in leaf.comparisons if not c.ok]
            return f"{head}: {worst[0]}" if worst else head
        return f"{head}\n    " + detail.replace("\n", "\n    ")


@dataclasses.dataclass
class RuleCheckReport:
    """All cases ``check_rule`` ran for one primitive."""

    primitive: str
    cases: list[RuleCase]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.cases)

    def __str__(self) -> str:
        failed = [c for c in self.cases if not c.ok]
        head = f"check_rule({self.primitive!r}): {len(self.cases)} cases, {len(failed)} failed"
        # the first failure in full, the others on one line each
        lines = [f"  {c.format(full=bool(failed) and c is failed[0])}" for c in self.cases]
        return "\n".join([head, *lines])

    def raise_if_failed(self) -> None:
        if not self.ok:
            raise AssertionError(str(self))


@dataclasses.dataclass
class _Tally:
    cases: int = 0
    failed: int = 0
    first_failure: str = ""


# primitive -> what the latest check_rule of it found (in this process)
_tallies: dict[str, _Tally] = {}


def check_rule(
    op: str | Callable,
    *,
    primitive: str | None = None,
    args: Sequence[Any] | Callable | None = None,
    shape: tuple[int, ...] = (3, 4),
    low: float = -2.0,
    high: float = 2.0,
    kinks: Sequence[Sequence[Any]] | None = None,
    dtypes: Sequence[str] = ("float32", "float64"),
    argnums: Sequence[int] | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    seed: int = 0,
    raise_on_failure: bool = True,
) -> RuleCheckReport:
    """Check the VJP rule of one primitive against JAX's derivative and finite differences.

    Example::

        funcgrad.defvjp("cube", cube_vjp)
        funcgrad.check_rule(lambda x: cube_p.bind(x), primitive="cube")
        funcgrad.check_rule("log", low=0.2, high=3.0)      # a jax.lax function of the same name

    Args:
      op: a primitive name with a ``jax.lax`` function of that name (``"sin"``, ``"atan2"``), or a
        function of arrays that produces the primitive.
      primitive: the primitive under test when ``op`` is a function (default: the primitives it produces).
      args: example inputs (a list of arrays: checked as given and at random values of the same shapes),
        or a builder ``args(rng, dtype, case) -> list | None`` (None skips a case). Default: elementwise
        inputs uniform in ``[low, high]`` of ``shape``; 'broadcast' pairs the first with rank-0 operands.
      kinks: inputs at ties/kinks, one list of values per argument per point (default: 0, 1, -1 for
        every argument); checked against JAX's derivative only.
      dtypes: float dtypes to check in (float64 runs inside a scoped ``enable_x64``).
      argnums: which arguments are differentiated (default: every floating argument).
      rtol, atol: tolerances against finite differences (see ``funcgrad.check_grads``).
      seed: seed of the inputs, directions and cotangents.
      raise_on_failure: raise ``AssertionError`` with the report if a case fails.

    Returns:
      A ``RuleCheckReport``; ``funcgrad.rule_coverage()`` records it.
    """
    fn, name = _resolve(op, primitive)
    build, arity = _builder(fn, args, shape, low, high)
    kink_points = DEFAULT_KINKS if kinks is None else kinks
    cases = []
    for dtype in dtypes:
        for case in CASES:
            points = [None] if case != "kink" else range(len(kink_points))
            for point in points:
                with enable_x64() if dtype == "float64" else contextlib.nullcontext():
                    if case == "kink":
                        inputs = _kink_inputs(kink_points[point], arity, dtype)
                    else:
                        inputs = build(np.random.default_rng(seed), dtype, case)
                    if inputs is None:
                        continue
                    label = case if point is None or len(kink_points) == 1 else f"kink{point}"
                    cases.append(_run_case(fn, name, inputs, label, str(dtype), argnums, rtol, atol, seed))
    report = RuleCheckReport(name, cases)
    _record(report, named=isinstance(op, str) or primitive is not None)
    if raise_on_failure:
        report.raise_if_failed()
    return report


def _resolve(op, primitive) -> tuple[Callable, str]:
    if isinstance(op, str):
        fn = getattr(lax, op, None)
        if not callable(fn):
            raise InputError(
                f"there is no jax.lax function named {op!r} to produce the primitive.\n"
                f"  fix: pass a function that produces it, e.g. "
                f"funcgrad.check_rule(lambda x: my_p.bind(x, **params), primitive={op!r}, args=[example])"
            )
        name = op
    else:
        fn = op
        name = primitive or getattr(op, "__name__", "rule")
    if name in vjp_rules or (not isinstance(op, str) and primitive is None):
        return fn, name
    reason = f": {no_vjp_reasons[name]}" if name in no_vjp_reasons else ""
    raise InputError(
        f"no VJP rule is registered for {name!r}{reason}\n  fix: register one with funcgrad.defvjp({name!r}, rule)"
    )


def _builder(fn, args, shape, low, high) -> tuple[Callable, int]:
    """(inputs(rng, dtype, case) -> list | None, number of arguments): the user's builder, from
    example arrays, or elementwise by default."""
    if callable(args):
        probe = args(np.random.default_rng(0), np.dtype("float32"), "random")
        return args, len(probe) if probe is not None else _arity(fn)
    if args is not None:
        examples = [np.asarray(a) for a in args]

        def from_examples(rng, dtype, case):
            if case == "random":
                return [_cast(rng.uniform(low, high, a.shape), dtype) if _is_float(a) else a for a in examples]
            if case == "scalar" and all(a.ndim == 0 for a in examples):
                return [_cast(a, dtype) if _is_float(a) else a for a in examples]
            return None

        return from_examples, len(examples)
    arity = _arity(fn)

    def elementwise(rng, dtype, case):
        empty = (0, *shape[1:])
        shapes = {
            "random": [shape] * arity,
            "broadcast": [shape] + [()] * (arity - 1),
            "scalar": [()] * arity,
            "empty": [empty] * arity,
        }[case]
        if case == "broadcast" and arity < 2:
            return None
        return [_cast(rng.uniform(low, high, s), dtype) for s in shapes]

    return elementwise, arity


def _arity(fn) -> int:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError) as err:
        raise InputError(f"cannot tell how many arguments {fn!r} takes; pass args=[...]") from err
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(p.kind in positional and p.default is inspect.Parameter.empty for p in params)


def _is_float(a) -> bool:
    return np.issubdtype(a.dtype, np.floating)


def _cast(x, dtype):
    return jnp.asarray(np.asarray(x), dtype)


def _kink_inputs(point, arity, dtype) -> list:
    # a point with one value list is used for every argument (zeros, and ties x == y)
    values = list(point) * arity if len(point) == 1 else list(point)
    return [_cast(v, dtype) if np.asarray(v).dtype.kind == "f" else np.asarray(v) for v in values]


def _run_case(fn, name, inputs, case, dtype, argnums, rtol, atol, seed) -> RuleCase:
    result = RuleCase(case, dtype)
    nums = argnums if argnums is not None else [i for i, a in enumerate(inputs) if _is_float(np.asarray(a))]
    try:
        produced = _primitives_in(api.trace(fn)(*inputs))
        result.primitives = frozenset(produced)
        if name in vjp_rules and name not in produced:
            result.error = f"the function does not produce primitive {name!r} (it produces {sorted(produced)})"
            return result
        result.report = check_grads(
            fn,
            tuple(inputs),
            argnums=tuple(nums),
            rtol=rtol,
            atol=atol,
            seed=seed,
            fd=not case.startswith("kink"),
            raise_on_failure=False,
        )
    except Exception as err:  # noqa: BLE001 - a rule that raises is a failing case, reported with its message
        result.error = f"{type(err).__name__}: {err}"
    return result


def _primitives_in(graph: Graph) -> set[str]:
    return {eqn.primitive for eqn, _ in graph.walk()}


def _record(report: RuleCheckReport, named: bool) -> None:
    """Remember the latest check of each primitive: the named one, or every ruled primitive produced.

    A failure is charged to the equation that check_grads named as the culprit, when it named one.
    """
    fresh: dict[str, _Tally] = {}
    for case in report.cases:
        names = {report.primitive} if named else {p for p in case.primitives if p in vjp_rules}
        culprit = case.report.culprit if case.report is not None else None
        for name in names:
            tally = fresh.setdefault(name, _Tally())
            tally.cases += 1
            if not case.ok and (culprit is None or culprit.primitive == name):
                tally.failed += 1
                tally.first_failure = tally.first_failure or f"{case.case}/{case.dtype}"
    _tallies.update(fresh)


@dataclasses.dataclass(frozen=True)
class CoverageRow:
    primitive: str
    rule: str  # "vjp", "zero", "no vjp"
    cases: int
    failed: int
    first_failure: str


@dataclasses.dataclass
class CoverageTable:
    """Which primitives have a rule, were checked by ``check_rule`` in this process, and failed its latest check."""

    rows: list[CoverageRow]

    def __str__(self) -> str:
        width = max([len(r.primitive) for r in self.rows] + [9])
        lines = [f"{'primitive':<{width}}  rule    tested  failing"]
        for r in self.rows:
            tested = f"{r.cases:>6}" if r.cases else "     -"
            failing = f"{r.failed} ({r.first_failure})" if r.failed else "-"
            lines.append(f"{r.primitive:<{width}}  {r.rule:<6}  {tested}  {failing}")
        n_tested = sum(r.cases > 0 for r in self.rows)
        n_failing = sum(r.failed > 0 for r in self.rows)
        lines.append(f"{len(self.rows)} primitives, {n_tested} tested, {n_failing} failing")
        return "\n".join(lines)


def rule_coverage(primitives: Sequence[str] | None = None, *, print_table: bool = False) -> CoverageTable:
    """The coverage table: every registered rule, whether ``check_rule`` tested it, and whether it failed.

    Args:
      primitives: restrict the table to these names (default: every primitive known to the registry
        or to ``check_rule``).
      print_table: also print the table.

    Returns:
      A ``CoverageTable`` (``.rows``; ``str()`` is the table).
    """
    names = set(vjp_rules) | set(no_vjp_reasons) | set(_tallies)
    if primitives is not None:
        names = set(primitives)
    rows = []
    for name in sorted(names):
        if name in zero_vjp_primitives:
            rule = "zero"
        elif name in vjp_rules:
            rule = "vjp"
        elif name in no_vjp_reasons:
            rule = "no vjp"
        else:
            rule = "none"
        tally = _tallies.get(name, _Tally())
        rows.append(CoverageRow(name, rule, tally.cases, tally.failed, tally.first_failure))
    table = CoverageTable(rows)
    if print_table:
        print(table)
    return table
