"""One pytest process over some test files, with or without funcgrad swapped in; outcomes from its JUnit XML.

Shared by ``scripts/jax_suite.py`` (JAX's own suites) and ``scripts/third_party_suites.py`` (optax,
Equinox, Flax). The funcgrad run loads ``scripts/jax_suite_plugin.py`` (``-p jax_suite_plugin``), which
points JAX's differentiation functions at funcgrad's and counts, per test, how many times funcgrad
built a VJP: a test "reached funcgrad" if that count is positive, the proof that the swap is live.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence

ROOT = pathlib.Path(__file__).resolve().parents[1]


@dataclasses.dataclass
class Run:
    passed: set
    failed: set
    skipped: int
    seconds: float
    error: str = ""
    reached: set = dataclasses.field(default_factory=set)  # tests in which funcgrad built a VJP


def run_pytest(
    paths: Sequence[pathlib.Path],
    rootdir: pathlib.Path,
    *,
    select: str | None = None,
    funcgrad: bool,
    jobs: int = 1,
    env: dict | None = None,
    extra_args: Sequence[str] = (),
    cwd: pathlib.Path | None = None,
    keep: pathlib.Path | None = None,
) -> Run:
    """Runs pytest over ``paths`` in a fresh process; ``funcgrad`` loads the swap plugin; ``keep``: a copy
    of the JUnit XML report goes there."""
    with tempfile.TemporaryDirectory() as tmp:
        report = pathlib.Path(tmp) / "report.xml"
        calls = pathlib.Path(tmp) / "calls"
        calls.mkdir()
        cmd = [sys.executable, "-m", "pytest", *map(str, paths), "-q", "-p", "no:cacheprovider"]
        cmd += [f"--junitxml={report}", "--rootdir", str(rootdir), "-o", "addopts=", "-W", "ignore", *extra_args]
        if select:
            cmd += ["-k", select]
        if jobs > 1:
            cmd += ["-n", str(jobs)]
        full_env = {**os.environ, "JAX_PLATFORMS": "cpu", **(env or {})}
        full_env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "scripts"), str(ROOT), full_env.get("PYTHONPATH", "")])
        if funcgrad:
            cmd += ["-p", "jax_suite_plugin"]
            full_env["FUNCGRAD_SUITE_CALLS"] = str(calls)
        start = time.perf_counter()
        done = subprocess.run(cmd, cwd=cwd or tmp, env=full_env, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if not report.exists():
            return Run(set(), set(), 0, seconds, error=(done.stdout + done.stderr)[-3000:])
        if keep is not None:
            keep.parent.mkdir(parents=True, exist_ok=True)
            keep.write_bytes(report.read_bytes())
        run = outcomes(report, seconds)
        for part in calls.glob("*.json"):
            run.reached |= {_short(k) for k, n in json.loads(part.read_text()).items() if n > 0}
        if not run.passed and not run.failed:
            run.error = (done.stdout + done.stderr)[-3000:]
        return run


def _short(nodeid: str) -> str:
    """pytest's node id ``dir/file.py::Class::test`` as the JUnit report names it: ``file.Class::test``."""
    path, _, rest = nodeid.partition("::")
    cls, _, name = rest.rpartition("::")
    module = path.removesuffix(".py").replace("/", ".")
    return f"{module}{'.' + cls if cls else ''}::{name}"


def outcomes(report: pathlib.Path, seconds: float) -> Run:
    passed, failed, skipped = set(), set(), 0
    for case in ET.parse(report).getroot().iter("testcase"):
        name = f"{case.get('classname', '')}::{case.get('name', '')}"
        kinds = {child.tag for child in case}
        if "skipped" in kinds:
            skipped += 1
        elif kinds & {"failure", "error"}:
            failed.add(name)
        else:
            passed.add(name)
    return Run(passed, failed, skipped, seconds)


def read_allowed(path: pathlib.Path | None) -> set:
    """Known differences: one test id per line, ``#`` starts a comment (the reason)."""
    if path is None or not path.exists():
        return set()
    return {line.split("#")[0].strip() for line in path.read_text().splitlines()} - {""}
