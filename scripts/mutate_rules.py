"""Mutation testing of the rule table: does tests/test_rules.py catch a wrong VJP rule?

Run ``python scripts/mutate_rules.py [--families elementwise,linalg] [--primitives sin,cos] [--jobs 1]
[--out report.md]`` from the repository root (tests/test_mutation.py runs it on a few primitives).

For every primitive whose record is a VJP rule (kind ``"rule"``; ``"zero"``, ``"stop"`` and
``"refused"`` records are skipped) and that has at least one row in ``tests/rule_specs``, the script
wraps the registered rule (no source is edited) into deliberately wrong variants, the *mutants*:

* ``scale``: every returned floating-point cotangent multiplied by 1.01;
* ``negate``: every returned floating-point cotangent negated;
* ``swap``: the cotangents of the first two differentiable (floating-point) inputs exchanged, in the
  calls where both are arrays of the same shape and dtype (a mutant that never applies is skipped);
* ``drop``: the first returned floating-point cotangent replaced by zeros of its shape.

Each mutant is registered with ``funcgrad.defvjp(name, mutant, symbolic_zeros=...)`` (the original
record's flag) inside a ``with`` block, which puts the original record back, and the primitive's rows
are run through the rule table test's own check (``tests.test_rules.check_row``: the same inputs,
cotangents, tolerances and assertions, in every dtype, case and kink point). A mutant is *killed* when
any of those checks fails, and *survives* when all pass.

First the unmutated rule goes through the same checks (the sanity run); a check it fails is reported
separately and left out of the mutants' runs, since there a mutant would be "killed" by the rule's own
error. The sanity run also records, for every check, which mutants change anything in it (a swap needs
two matching cotangents, every mutant needs a floating-point cotangent); a mutant runs only on those
checks (elsewhere it is the original rule, which passed) and stops at its first failure.

A primitive's family is the module that registered its rule (``RuleRecord.owner``):
``funcgrad.rules.elementwise`` -> ``elementwise``. The report gives, per family, the primitives, the
mutants run, how many were killed and the kill rate, then every surviving mutant, every mutant that
did not apply, and every check the original rule fails.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import multiprocessing
import pathlib
import sys
import time
import traceback
from collections.abc import Callable, Sequence

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import funcgrad  # noqa: E402
from funcgrad.core import registry  # noqa: E402
from tests import test_rules as table  # noqa: E402

SCALE = 1.01
MUTANT_KINDS = ("scale", "negate", "swap", "drop")
DESCRIPTIONS = {
    "scale": f"every cotangent scaled by {SCALE}",
    "negate": "every cotangent negated",
    "swap": "the first two differentiable inputs' cotangents swapped",
    "drop": "the first cotangent replaced by zeros",
}


# ----------------------------------------------------------------------------------------------- mutants


def _is_float(x) -> bool:
    """Whether ``x`` is an array (or tracer) of a floating-point or complex dtype."""
    return x is not None and jnp.issubdtype(jnp.result_type(x), jnp.inexact)


def _differentiable_inputs(primals) -> list[int]:
    return [i for i, p in enumerate(primals) if _is_float(p)]


def _float_cotangents(cts) -> list[int]:
    return [i for i, c in enumerate(cts) if _is_float(c)]


def _swap_pair(primals, cts) -> tuple[int, int] | None:
    """The first two differentiable inputs, if their cotangents are arrays of one shape and dtype."""
    inputs = [i for i in _differentiable_inputs(primals) if i < len(cts)]
    if len(inputs) < 2:
        return None
    i, j = inputs[:2]
    a, b = cts[i], cts[j]
    if not (_is_float(a) and _is_float(b)):
        return None
    if jnp.shape(a) != jnp.shape(b) or jnp.result_type(a) != jnp.result_type(b):
        return None
    return i, j


def applies(kind: str, primals: Sequence, cts: Sequence) -> bool:
    """Whether mutant ``kind`` changes the cotangents ``cts`` a rule returned for ``primals``.

    A mutant that leaves every value as it was is *equivalent* there (swapping two equal cotangents,
    as ``add`` returns; scaling a NaN): no test could tell it from the rule, so it does not count.
    Traced cotangents (under ``jax.jit``) cannot be compared and count as changed."""
    if kind == "swap" and _swap_pair(primals, cts) is None:
        return False
    if kind != "swap" and not _float_cotangents(cts):
        return False
    return _changes(cts, mutate(kind, primals, cts))


def _changes(before: Sequence, after: Sequence) -> bool:
    for a, b in zip(before, after):
        if a is b:
            continue
        if isinstance(a, jax.core.Tracer) or isinstance(b, jax.core.Tracer):
            return True
        if not np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True):
            return True
    return False


def mutate(kind: str, primals: Sequence, cts: Sequence) -> list:
    """The cotangents ``cts`` (one per input of ``primals``) as mutant ``kind`` returns them."""
    cts = list(cts)
    if kind == "scale":
        return [jnp.multiply(c, SCALE) if _is_float(c) else c for c in cts]
    if kind == "negate":
        return [jnp.negative(c) if _is_float(c) else c for c in cts]
    if kind == "drop":
        floats = _float_cotangents(cts)
        if floats:
            cts[floats[0]] = jnp.zeros_like(cts[floats[0]])
        return cts
    if kind == "swap":
        pair = _swap_pair(primals, cts)
        if pair is not None:
            i, j = pair
            cts[i], cts[j] = cts[j], cts[i]
        return cts
    raise ValueError(f"unknown mutant kind {kind!r}; expected one of {MUTANT_KINDS}")


def wrapped_rule(rule: Callable, transform: Callable[[Sequence, Sequence], Sequence]) -> Callable:
    """A VJP rule calling ``rule`` and returning ``transform(primals, cotangents)``, in ``rule``'s container."""

    def mutant(ct, *primals, out, **params):
        result = rule(ct, *primals, out=out, **params)
        container = type(result) if isinstance(result, (tuple, list)) else tuple
        cts = list(result) if isinstance(result, (tuple, list)) else [result]
        return container(transform(primals, cts))

    mutant.__name__ = f"mutant_of_{getattr(rule, '__name__', 'rule')}"
    return mutant


# ------------------------------------------------------------------------------------------------ checks


@dataclasses.dataclass(frozen=True)
class Check:
    """One check of the rule table: a row, a dtype, a case (or a kink point)."""

    spec: object
    dtype: str
    case: str
    kink: int | None
    id: str


@dataclasses.dataclass
class Outcome:
    """What one check gave: ``"pass"``, ``"fail"`` (with the error's first line) or ``"skip"`` (with why)."""

    check: str
    status: str
    message: str = ""


def checks_for(primitive: str) -> list[Check]:
    """Every check of every row of ``primitive`` in tests/rule_specs, in the rule table test's order."""
    return [
        Check(spec, dtype, case, kink, case_id)
        for spec in table.SPECS
        if spec.primitive == primitive
        for dtype, case, kink, case_id in table.row_cases(spec)
    ]


def run_check(check: Check) -> Outcome:
    """Run one check through the rule table test's ``check_row``; any exception but a skip is a failure."""
    try:
        table.check_row(check.spec, check.dtype, check.case, check.kink)
    except pytest.skip.Exception as e:
        return Outcome(check.id, "skip", str(e))
    except Exception as e:  # an assertion, or an error the wrong rule caused: the test would fail either way
        lines = str(e).strip().splitlines() or [""]
        return Outcome(check.id, "fail", f"{type(e).__name__}: {lines[0]}"[:300])
    return Outcome(check.id, "pass")


def run_with_rule(primitive: str, rule: Callable, checks: Sequence[Check], *, stop_at_failure: bool) -> list[Outcome]:
    """Run ``checks`` with ``rule`` registered for ``primitive`` (the original record comes back afterwards)."""
    record = registry.lookup(primitive)
    outcomes = []
    with funcgrad.defvjp(
        primitive, rule, symbolic_zeros=record.symbolic_zeros, perturbed=record.perturbed, forward=record.forward
    ):
        for check in checks:
            outcome = run_check(check)
            outcomes.append(outcome)
            if stop_at_failure and outcome.status == "fail":
                break
    return outcomes


# ---------------------------------------------------------------------------------------------- results


@dataclasses.dataclass
class MutantResult:
    """One mutant of one primitive: ``"killed"`` (by ``detail``), ``"survived"`` or ``"skipped"`` (why)."""

    primitive: str
    kind: str
    status: str
    detail: str = ""
    checks_run: int = 0


@dataclasses.dataclass
class PrimitiveResult:
    """The sanity run and the mutants of one primitive."""

    primitive: str
    family: str
    rows: list[str]
    checks: int
    rule_calls: int
    original_failures: list[Outcome]
    skipped_checks: list[Outcome]
    mutants: list[MutantResult]
    seconds: float
    error: str = ""

    @property
    def original_ok(self) -> bool:
        return not self.original_failures and not self.error


def family_of(record: registry.RuleRecord) -> str:
    """The rule family: the last part of the module that registered the rule (``elementwise``)."""
    owner = record.owner or "?"
    return owner.rsplit(".", 1)[-1] if owner.startswith("funcgrad.rules.") else owner


def mutable_primitives() -> dict[str, registry.RuleRecord]:
    """Every primitive with a VJP rule (kind ``"rule"``) and at least one row, by name (sorted)."""
    with_rows = {spec.primitive for spec in table.SPECS}
    return {
        name: record
        for name, record in sorted(registry.records().items())
        if record.kind == "rule" and name in with_rows
    }


def mutate_primitive(primitive: str, kinds: Sequence[str] = MUTANT_KINDS) -> PrimitiveResult:
    """The sanity run of ``primitive``'s registered rule, then each mutant of ``kinds`` on its rows."""
    start = time.perf_counter()
    record = registry.lookup(primitive)
    if record is None or record.kind != "rule":
        raise ValueError(f"{primitive!r} has no VJP rule of kind 'rule' (record: {record})")
    checks = checks_for(primitive)
    rows = sorted({c.spec.id for c in checks})
    if not checks:
        raise ValueError(f"{primitive!r} has no row in tests/rule_specs")

    # the sanity run: the original rule, observed (not changed) to learn which checks each mutant alters
    current = [0]  # the index of the check running
    calls = [0]
    altered: dict[str, set[int]] = {kind: set() for kind in kinds}

    def observe(primals, cts):
        calls[0] += 1
        for kind in kinds:
            if applies(kind, primals, cts):
                altered[kind].add(current[0])
        return cts

    observer = wrapped_rule(record.vjp, observe)
    outcomes = []
    with funcgrad.defvjp(
        primitive, observer, symbolic_zeros=record.symbolic_zeros, perturbed=record.perturbed, forward=record.forward
    ):
        for index, check in enumerate(checks):
            current[0] = index
            outcomes.append(run_check(check))
    failures = [o for o in outcomes if o.status == "fail"]
    skipped = [o for o in outcomes if o.status == "skip"]
    passed = {i for i, o in enumerate(outcomes) if o.status == "pass"}

    mutants = []
    for kind in kinds:
        targets = [c for i, c in enumerate(checks) if i in passed and i in altered[kind]]
        if not passed:
            mutants.append(MutantResult(primitive, kind, "skipped", "the original rule passes no check"))
            continue
        if not targets:
            why = "the rule is never called" if calls[0] == 0 else _why_not_applicable(kind)
            mutants.append(MutantResult(primitive, kind, "skipped", why))
            continue
        rule = wrapped_rule(record.vjp, lambda primals, cts, kind=kind: mutate(kind, primals, cts))
        results = run_with_rule(primitive, rule, targets, stop_at_failure=True)
        failed = [o for o in results if o.status == "fail"]
        if failed:
            mutants.append(
                MutantResult(primitive, kind, "killed", f"{failed[0].check}: {failed[0].message}", len(results))
            )
        else:
            mutants.append(MutantResult(primitive, kind, "survived", "", len(results)))
    return PrimitiveResult(
        primitive,
        family_of(record),
        rows,
        len(checks),
        calls[0],
        failures,
        skipped,
        mutants,
        time.perf_counter() - start,
    )


def _why_not_applicable(kind: str) -> str:
    if kind == "swap":
        return (
            "no call has two differentiable inputs whose cotangents match in shape and dtype and differ "
            "(equal ones, as add's, make the swap an equivalent mutant)"
        )
    return "no call returns a floating-point cotangent the mutant changes (a NaN stays NaN, zeros stay zeros)"


def _mutate_safely(primitive: str, kinds: Sequence[str]) -> PrimitiveResult:
    """``mutate_primitive``, turning an error of the machinery itself into a reported result."""
    try:
        return mutate_primitive(primitive, kinds)
    except Exception:
        record = registry.lookup(primitive)
        family = family_of(record) if record is not None else "?"
        return PrimitiveResult(primitive, family, [], 0, 0, [], [], [], 0.0, traceback.format_exc(limit=3))


def run(
    primitives: Sequence[str], kinds: Sequence[str] = MUTANT_KINDS, jobs: int = 1, progress=None
) -> list[PrimitiveResult]:
    """Mutate each of ``primitives``; with ``jobs > 1`` several primitives at once, in fresh processes."""
    results = []
    if jobs <= 1 or not primitives:
        for name in primitives:
            results.append(_mutate_safely(name, kinds))
            if progress:
                progress(results[-1])
        return results
    context = multiprocessing.get_context("spawn")  # JAX is not fork-safe
    workers = min(jobs, len(primitives))
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = [pool.submit(_mutate_safely, name, tuple(kinds)) for name in primitives]
        for future in concurrent.futures.as_completed(futures):
            results.append(future.result())
            if progress:
                progress(results[-1])
    order = {name: i for i, name in enumerate(primitives)}
    return sorted(results, key=lambda r: order[r.primitive])


# ----------------------------------------------------------------------------------------------- report


def family_table(results: Sequence[PrimitiveResult]) -> list[tuple[str, int, int, int, str]]:
    """Per family (and a total row): primitives, mutants run (killed + survived), killed, kill rate."""

    def row(name, group):
        ran = [m for r in group for m in r.mutants if m.status in ("killed", "survived")]
        killed = sum(m.status == "killed" for m in ran)
        rate = f"{100 * killed / len(ran):.1f}%" if ran else "n/a"
        return name, len(group), len(ran), killed, rate

    families = sorted({r.family for r in results})
    rows = [row(f, [r for r in results if r.family == f]) for f in families]
    rows.append(row("**total**", list(results)))
    return rows


def report(results: Sequence[PrimitiveResult], *, command: str = "", seconds: float | None = None) -> str:
    """The markdown report: the per-family table, then survivors, mutants that did not apply, failures."""
    lines = ["# Rule-table mutation testing", ""]
    if command:
        lines.append(f"Command: `{command}`  ")
    meta = f"JAX {jax.__version__}"
    if seconds is not None:
        meta += f", wall time {seconds:.0f} s ({seconds / 60:.1f} min)"
    checks = sum(r.checks for r in results)
    lines += [f"{meta}; {len(results)} primitives, {checks} rule-table checks in the sanity runs.", ""]
    lines += ["Mutants: " + "; ".join(f"`{k}`: {DESCRIPTIONS[k]}" for k in MUTANT_KINDS) + ".", ""]
    lines += ["| family | primitives | mutants | killed | kill rate |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {f} | {p} | {m} | {k} | {rate} |" for f, p, m, k, rate in family_table(results)]

    survivors = [(r, m) for r in results for m in r.mutants if m.status == "survived"]
    lines += ["", f"## Surviving mutants ({len(survivors)})", ""]
    if survivors:
        lines += ["| family | primitive | mutant | checks run | rows |", "|---|---|---|---:|---|"]
        lines += [
            f"| {r.family} | {r.primitive} | {m.kind} | {m.checks_run} | {', '.join(r.rows)} |" for r, m in survivors
        ]
    else:
        lines.append("None.")

    not_run = [(r, m) for r in results for m in r.mutants if m.status == "skipped"]
    lines += ["", f"## Mutants that did not apply ({len(not_run)})", ""]
    by_reason: dict[tuple[str, str], list[str]] = {}
    for r, m in not_run:
        by_reason.setdefault((m.kind, m.detail), []).append(r.primitive)
    for (kind, why), names in sorted(by_reason.items()):
        lines.append(f"* `{kind}` ({why}): {', '.join(names)}")
    if not not_run:
        lines.append("None.")

    broken = [r for r in results if not r.original_ok]
    lines += ["", f"## Checks the original rule fails ({sum(len(r.original_failures) for r in broken)})", ""]
    for r in broken:
        if r.error:
            lines.append(f"* {r.primitive}: the mutation machinery failed:\n\n```\n{r.error.strip()}\n```")
        for o in r.original_failures:
            lines.append(f"* {r.primitive}: `{o.check}`: {o.message}")
    if not broken:
        lines.append("None: every unmutated rule passes all its checks.")

    skipped = [(r, o) for r in results for o in r.skipped_checks]
    if skipped:
        lines += ["", f"## Checks skipped on this JAX ({len(skipped)})", ""]
        lines += [f"* {r.primitive}: `{o.check}`: {o.message}" for r, o in skipped]

    kills = [(r, m) for r in results for m in r.mutants if m.status == "killed"]
    if kills:
        lines += ["", f"## Killed mutants ({len(kills)}): the first check each one fails", ""]
        lines += [f"* {r.primitive} `{m.kind}`: {m.detail[:160]}" for r, m in kills]
    return "\n".join(lines) + "\n"


def select(families: Sequence[str] | None, primitives: Sequence[str] | None) -> list[str]:
    """The primitives to mutate: those with a rule and a row, filtered by family and by name."""
    candidates = mutable_primitives()
    if primitives:
        unknown = [p for p in primitives if p not in candidates]
        if unknown:
            raise SystemExit(f"no VJP rule of kind 'rule' with a row in tests/rule_specs: {', '.join(unknown)}")
        candidates = {p: candidates[p] for p in primitives}
    if families:
        known = {family_of(r) for r in mutable_primitives().values()}
        unknown = sorted(set(families) - known)
        if unknown:
            raise SystemExit(f"unknown families {unknown}; known: {', '.join(sorted(known))}")
        candidates = {p: r for p, r in candidates.items() if family_of(r) in families}
    return sorted(candidates, key=lambda p: (family_of(candidates[p]), p))


def _names(text: str | None) -> list[str] | None:
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: mutate, print the report, write it to ``--out``; exit 1 if the machinery itself failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", help="comma-separated rule families (modules of funcgrad/rules), e.g. linalg")
    parser.add_argument("--primitives", help="comma-separated primitive names, e.g. sin,cos")
    parser.add_argument("--kinds", default=",".join(MUTANT_KINDS), help=f"mutants (default {','.join(MUTANT_KINDS)})")
    parser.add_argument("--jobs", type=int, default=1, help="primitives mutated at once, in separate processes")
    parser.add_argument("--out", type=pathlib.Path, help="also write the markdown report to this file")
    parser.add_argument("--quiet", action="store_true", help="no progress line per primitive on stderr")
    args = parser.parse_args(argv)
    kinds = _names(args.kinds)
    bad = sorted(set(kinds) - set(MUTANT_KINDS))
    if bad:
        parser.error(f"unknown mutant kinds {bad}")
    names = select(_names(args.families), _names(args.primitives))

    def progress(r: PrimitiveResult):
        if args.quiet:
            return
        summary = " ".join(f"{m.kind}={m.status}" for m in r.mutants)
        ok = "ok" if r.original_ok else f"ORIGINAL FAILS {len(r.original_failures)} {r.error[-200:]}"
        print(f"[{r.family}] {r.primitive}: {r.checks} checks, {ok}, {summary} ({r.seconds:.1f} s)", file=sys.stderr)

    start = time.perf_counter()
    results = run(names, kinds, jobs=args.jobs, progress=progress)
    seconds = time.perf_counter() - start
    command = " ".join(["python", "scripts/mutate_rules.py", *(sys.argv[1:] if argv is None else argv)])
    text = report(results, command=command, seconds=seconds)
    print(text)
    if args.out:
        args.out.write_text(text)
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
