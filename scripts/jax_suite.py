"""JAX's own autodiff tests, with funcgrad's reverse mode standing in for JAX's, beside a pure-JAX run.

    python scripts/jax_suite.py                          # every file below, x64 off and on
    python scripts/jax_suite.py --files linalg_test.py --x64 1
    python scripts/jax_suite.py --quick                  # the small subset .ci/run runs
    python scripts/jax_suite.py --break mul --files lax_autodiff_test.py   # prove the swap is live
    python scripts/jax_suite.py --forward --quick        # funcgrad's forward mode in JAX's checks too

JAX's test files for the installed version live in ../shared/jax-tests/jax-vX.Y.Z/tests (they are not
in JAX's PyPI sdist). Each selected file runs twice in its own pytest process: pure JAX, then with
scripts/jax_suite_plugin.py loaded, which makes JAX's gradient checker use ``funcgrad.vjp`` for its
reverse-mode checks (to second order) and points ``jax.grad``/``value_and_grad``/``vjp``/``jacrev`` at
funcgrad's. The table gives, per file and x64 mode, the tests passed by each run, and the tests that
pass with pure JAX but fail with funcgrad are listed by name. Exit status 1 if there are any
(``--allow`` lists known ones: one test id per line, ``#`` comments).
"""

from __future__ import annotations

import argparse
import pathlib
import sys

from suite_runs import ROOT, Run, read_allowed, run_pytest

# file -> the -k expression selecting its gradient tests (None: the whole file)
FILES = {
    "lax_autodiff_test.py": None,
    "custom_api_test.py": "CustomJVPTest or CustomVJPTest or CustomVJP3Test",
    "lax_control_flow_test.py": "grad or Grad or vjp or Vjp",
    "linalg_test.py": "grad or Grad",
    "lax_scipy_special_functions_test.py": None,
    "nn_test.py": "grad or Grad",
    "lax_test.py": "grad or Grad",
    "lax_numpy_test.py": "grad or Grad",
    "lax_numpy_indexing_test.py": "grad or Grad",
    "fft_test.py": "testFft or testIrfft",
    "lax_scipy_test.py": "grad or Grad",
}

# the quick subset for CI (about 3.5 min on 2 cores): 258 gradient checks across lax, indexing and FFT
# (linalg's gradient tests compile slowly: 28 of them took 4 min, so they run in the full table only)
QUICK = {
    "lax_autodiff_test.py": "testOpGrad2 or testReduceGrad or testScatterAddGrad or testReduceWindowGrad",
    "lax_numpy_indexing_test.py": "grad or Grad",
    "fft_test.py": "testFft and not Errors",
}


def tests_dir() -> pathlib.Path | None:
    import jax

    found = ROOT.parent / "shared" / "jax-tests" / f"jax-v{jax.__version__}" / "tests"
    return found if found.is_dir() else None


def run_file(test_file: pathlib.Path, select: str | None, x64: bool, funcgrad: bool, jobs: int, extra_env) -> Run:
    """One pytest process over one JAX test file."""
    env = {"JAX_ENABLE_X64": "1" if x64 else "0", **extra_env}
    return run_pytest([test_file], test_file.parent, select=select, funcgrad=funcgrad, jobs=jobs, env=env)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", nargs="*", help="test files (default: all of FILES)")
    parser.add_argument("--x64", choices=["0", "1", "both"], default="both")
    parser.add_argument("--quick", action="store_true", help="the small CI subset (QUICK), x64 off")
    parser.add_argument("--jobs", type=int, default=1, help="pytest-xdist workers per run")
    parser.add_argument(
        "--forward", action="store_true", help="swap in funcgrad's forward mode too (the checker's jvp, jax.jvp, ...)"
    )
    parser.add_argument("--break", dest="broken", help="register a deliberately wrong rule for this primitive")
    parser.add_argument("--no-baseline", action="store_true", help="skip the pure-JAX runs (then nothing is compared)")
    parser.add_argument("--allow", type=pathlib.Path, help="known differences, one test id per line")
    parser.add_argument("--out", type=pathlib.Path, help="also write the table (markdown) here")
    opts = parser.parse_args(argv)

    where = tests_dir()
    if where is None:
        print("JAX's test files for this JAX version are not in ../shared/jax-tests: nothing to run", file=sys.stderr)
        return 2
    selection = QUICK if opts.quick else FILES
    names = opts.files or list(selection)
    modes = [False] if opts.quick or opts.x64 == "0" else [True] if opts.x64 == "1" else [False, True]
    extra = {"FUNCGRAD_SUITE_BREAK": opts.broken} if opts.broken else {}
    if opts.forward:
        extra["FUNCGRAD_SUITE_FORWARD"] = "1"
    allowed = read_allowed(opts.allow)

    rows, regressions = [], []
    for name in names:
        select = selection.get(name, FILES.get(name))
        for x64 in modes:
            base = None if opts.no_baseline else run_file(where / name, select, x64, False, opts.jobs, {})
            mine = run_file(where / name, select, x64, True, opts.jobs, extra)
            for run, label in ((base, "pure JAX"), (mine, "funcgrad")):
                if run is not None and run.error:
                    print(f"{name} (x64={int(x64)}, {label}) did not run:\n{run.error}", file=sys.stderr)
            lost = sorted((base.passed - mine.passed) if base else [])
            regressions += [(name, x64, t) for t in lost]
            rows.append((name, x64, base, mine, len(lost)))
            _print_row(rows[-1])

    lines = [
        "| JAX test file (selection) | x64 | pure JAX passed / failed | funcgrad passed / failed | pass with JAX, fail with funcgrad | seconds (JAX / funcgrad) |",
        "|---|---|---|---|---|---|",
    ]
    for name, x64, base, mine, lost in rows:
        sel = selection.get(name, FILES.get(name))
        b = f"{len(base.passed)} / {len(base.failed)}" if base else "-"
        bs = f"{base.seconds:.0f}" if base else "-"
        lines.append(
            f"| {name}{f' (`-k {sel}`)' if sel else ''} | {'on' if x64 else 'off'} | {b} | "
            f"{len(mine.passed)} / {len(mine.failed)} | {lost} | {bs} / {mine.seconds:.0f} |"
        )
    table = "\n".join(lines)
    print("\n" + table)
    unexpected = [(n, x, t) for n, x, t in regressions if t not in allowed]
    if regressions:
        print(
            f"\n{len(regressions)} tests pass with pure JAX and fail with funcgrad ({len(unexpected)} not in --allow):"
        )
        for _, x, t in regressions:
            print(f"  x64={int(x)}  {t}{'' if t not in allowed else '   (allowed)'}")
    if opts.out:
        opts.out.write_text(table + "\n")
    return 1 if unexpected else 0


def _print_row(row) -> None:
    name, x64, base, mine, lost = row
    b = f"JAX {len(base.passed)} passed, {len(base.failed)} failed" if base else "no baseline"
    print(
        f"{name} x64={int(x64)}: {b}; funcgrad {len(mine.passed)} passed, {len(mine.failed)} failed "
        f"({len(mine.reached)} tests reached funcgrad); {lost} lost",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
