"""optax's, Equinox's and Flax's own test suites, with funcgrad standing in for jax.grad, beside pure JAX.

    python scripts/third_party_suites.py                       # the three suites, every file that differentiates
    python scripts/third_party_suites.py --quick               # the small subset .ci/run runs
    python scripts/third_party_suites.py --suites flax --files tests/nnx/transforms_test.py
    python scripts/third_party_suites.py --suites optax --break mul   # prove the swap is live

Each suite is the one of the *installed* version of the library:

* optax ships its tests inside the package (``optax/**/*_test.py``);
* Flax's are in its sdist, downloaded with ``pip download --no-binary :all: flax==<version>``;
* Equinox's sdist has none, so they come from its git repository at the tag ``v<version>``
  (``--equinox-git``: a URL or a local clone or mirror; default: GitHub).

Sources are cached under ``~/.cache/funcgrad-third-party`` (``FUNCGRAD_THIRD_PARTY_DIR``). Of each
suite, the files that differentiate (they name ``grad``, ``vjp``, ``jacrev``, ``value_and_grad``,
... ) run twice, each time in one pytest process: pure JAX, then with ``scripts/jax_suite_plugin.py``,
which points ``jax.grad``, ``jax.value_and_grad``, ``jax.vjp`` and ``jax.jacrev`` at funcgrad's (the
libraries look them up on ``jax`` when called: ``nnx.grad``, ``eqx.filter_grad``, ``nn.vjp``, optax's
tests) and counts the tests in which funcgrad built a VJP (the "reached funcgrad" column: the swap is
live). The table lists per suite the tests passed by each run; a test that passes with pure JAX and
fails with funcgrad is named, and makes the exit status 1 unless ``--allow`` lists it with its reason
(default: scripts/third_party_deviations.txt).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata
import importlib.util
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile

from suite_runs import ROOT, read_allowed, run_pytest

CACHE = pathlib.Path(os.environ.get("FUNCGRAD_THIRD_PARTY_DIR", pathlib.Path.home() / ".cache/funcgrad-third-party"))
EQUINOX_GIT = "https://github.com/patrick-kidger/equinox"

# a file "differentiates" if it calls or decorates with one of JAX's (or the library's) differentiation functions
DIFFERENTIATES = re.compile(r"(\b|_)(grad|vjp|jacrev|jacfwd|value_and_grad|hessian)\b(\(|,|$)|@.*(grad|vjp)", re.M)

# the CI subset (.ci/run): short files whose tests differentiate, under a minute per suite on 2 cores.
# Under --break mul each subset loses tests (optax: _complex_valued_test; Equinox: test_ad; Flax:
# core_lift_test's test_vjp, which checks lift.vjp against known values), so CI fails on a wrong rule;
# Flax's other quick files compare nnx with linen gradients, both taken through the swapped jax.grad.
QUICK = {
    "optax": [
        "optax/_src/utils_test.py",
        "optax/losses/_ranking_test.py",
        "optax/contrib/_sam_test.py",
        "optax/contrib/_complex_valued_test.py",
    ],
    "flax": [
        "tests/nnx/integration_test.py",
        "tests/core/design/core_custom_vjp_test.py",
        "tests/core/core_lift_test.py",
    ],
    "equinox": ["tests/test_ad.py", "tests/test_noinline.py"],
}


@dataclasses.dataclass
class Suite:
    name: str
    version: str
    rootdir: pathlib.Path  # pytest's rootdir: test ids are relative to it
    files: list  # relative to rootdir


def _version(dist: str) -> str:
    return importlib.metadata.version(dist)


def optax_suite() -> Suite:
    package = pathlib.Path(importlib.util.find_spec("optax").origin).parent
    files = sorted(str(p.relative_to(package.parent)) for p in package.rglob("*_test.py"))
    return Suite("optax", _version("optax"), package.parent, files)


def flax_suite() -> Suite:
    version = _version("flax")
    where = CACHE / f"flax-{version}"
    if not (where / "tests").is_dir():
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:"]
            subprocess.run([*cmd, f"flax=={version}", "-d", tmp], check=True)
            (sdist,) = pathlib.Path(tmp).glob("flax-*.tar.gz")
            with tarfile.open(sdist) as tar:
                prefix = f"flax-{version}/tests/"
                members = [m for m in tar.getmembers() if m.name.startswith(prefix)]
                for m in members:
                    m.name = m.name.removeprefix(f"flax-{version}/")
                where.mkdir(parents=True, exist_ok=True)
                tar.extractall(where, members=members, filter="data")
    files = sorted(str(p.relative_to(where)) for p in (where / "tests").rglob("*_test.py"))
    return Suite("flax", version, where, files)


def equinox_suite(git: str) -> Suite:
    version = _version("equinox")
    where = CACHE / f"equinox-{version}"
    if not (where / "tests").is_dir():
        tag = f"v{version}"
        if where.exists():
            shutil.rmtree(where)
        where.mkdir(parents=True)
        if pathlib.Path(git).is_dir():  # a local clone or bare mirror
            archive = subprocess.run(["git", "-C", git, "archive", tag, "tests"], check=True, capture_output=True)
            subprocess.run(["tar", "x", "-C", str(where)], input=archive.stdout, check=True)
        else:
            with tempfile.TemporaryDirectory() as tmp:
                subprocess.run(["git", "clone", "-q", "--depth", "1", "--branch", tag, git, tmp], check=True)
                shutil.copytree(pathlib.Path(tmp) / "tests", where / "tests")
    files = sorted(str(p.relative_to(where)) for p in (where / "tests").glob("test_*.py"))
    return Suite("equinox", version, where, files)


def differentiating(suite: Suite) -> list:
    return [f for f in suite.files if DIFFERENTIATES.search((suite.rootdir / f).read_text(errors="replace"))]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suites", default="optax,equinox,flax", help="comma-separated (default: all three)")
    parser.add_argument(
        "--files", nargs="*", help="test files, relative to the suite's root (default: all that differentiate)"
    )
    parser.add_argument("--quick", action="store_true", help="the CI subset (QUICK)")
    parser.add_argument("--jobs", type=int, default=2, help="pytest-xdist workers per run")
    parser.add_argument("--equinox-git", default=os.environ.get("FUNCGRAD_EQUINOX_GIT", EQUINOX_GIT))
    parser.add_argument("--break", dest="broken", help="register a deliberately wrong rule for this primitive")
    parser.add_argument("--allow", type=pathlib.Path, default=ROOT / "scripts/third_party_deviations.txt")
    parser.add_argument("--out", type=pathlib.Path, help="also write the table (markdown) here")
    parser.add_argument("--reports", type=pathlib.Path, help="keep each run's JUnit XML report in this folder")
    opts = parser.parse_args(argv)

    makers = {"optax": optax_suite, "flax": flax_suite, "equinox": lambda: equinox_suite(opts.equinox_git)}
    allowed = read_allowed(opts.allow)
    extra = {"FUNCGRAD_SUITE_BREAK": opts.broken} if opts.broken else {}
    rows, regressions, status = [], [], 0
    for name in opts.suites.split(","):
        try:
            suite = makers[name]()
        except (subprocess.CalledProcessError, OSError, ImportError, AttributeError) as e:
            print(f"{name}: could not obtain its tests ({e}); it was NOT run", file=sys.stderr)
            status = 2
            continue
        files = opts.files or (QUICK[name] if opts.quick else differentiating(suite))
        paths = [suite.rootdir / f for f in files]
        runs = {}
        for label, swapped in (("pure JAX", False), ("funcgrad", True)):
            runs[label] = run_pytest(
                paths,
                suite.rootdir,
                funcgrad=swapped,
                jobs=opts.jobs,
                env=extra if swapped else {},
                cwd=suite.rootdir,
                keep=opts.reports / f"{name}-{'funcgrad' if swapped else 'jax'}.xml" if opts.reports else None,
            )
            if runs[label].error:
                print(f"{name} ({label}) output:\n{runs[label].error}", file=sys.stderr)
        base, mine = runs["pure JAX"], runs["funcgrad"]
        lost = sorted(base.passed - mine.passed)
        regressions += [(name, t) for t in lost]
        rows.append((suite, len(files), base, mine, lost))
        print(
            f"{name} {suite.version} ({len(files)} files): JAX {len(base.passed)} passed, {len(base.failed)} failed; "
            f"funcgrad {len(mine.passed)} passed, {len(mine.failed)} failed, {len(mine.reached)} tests reached "
            f"funcgrad; {len(lost)} lost [{base.seconds:.0f} s / {mine.seconds:.0f} s]",
            flush=True,
        )

    lines = [
        "| suite | files | pure JAX passed / failed / skipped | funcgrad passed / failed / skipped "
        "| tests that reached funcgrad | pass with JAX, fail with funcgrad | seconds (JAX / funcgrad) |",
        "|---|---|---|---|---|---|---|",
    ]
    for suite, n, base, mine, lost in rows:
        lines.append(
            f"| {suite.name} {suite.version} | {n} | {len(base.passed)} / {len(base.failed)} / {base.skipped} | "
            f"{len(mine.passed)} / {len(mine.failed)} / {mine.skipped} | {len(mine.reached)} | {len(lost)} | "
            f"{base.seconds:.0f} / {mine.seconds:.0f} |"
        )
    table = "\n".join(lines)
    print("\n" + table)
    unexpected = [(n, t) for n, t in regressions if t not in allowed]
    if regressions:
        print(
            f"\n{len(regressions)} tests pass with pure JAX and fail with funcgrad ({len(unexpected)} not in --allow):"
        )
        for n, t in regressions:
            print(f"  {n}: {t}{'   (allowed)' if t in allowed else ''}")
    if opts.broken:
        print(f"\n(--break {opts.broken}: funcgrad ran with a deliberately wrong rule; losses are expected)")
    if opts.out:
        opts.out.write_text(table + "\n")
    if any(not mine.reached for _, _, _, mine, _ in rows):
        print("a suite in which no test reached funcgrad: the swap is not live", file=sys.stderr)
        status = status or 1
    return status or (1 if unexpected and not opts.broken else 0)


if __name__ == "__main__":
    sys.exit(main())
