"""Is funcgrad's compiled gradient program the same as it was at another commit?

    python -m benchmarks.hlo_compare d24048c            # A1, A128 and B
    python -m benchmarks.hlo_compare d24048c A1 C D     # any workloads of benchmarks/workloads.py

For each workload, ``jax.jit(funcgrad.grad(loss))`` is compiled by this tree and, in a subprocess,
by a ``git worktree`` of the given commit (its own funcgrad, the same JAX); the optimized HLO of
both is reduced to ``measure.hlo_signature`` (instructions with names, metadata and schedule order
removed) and the instructions not in both are counted. 0 means the same operations on the same
shapes: a refactoring that changed no rule left the compiled program alone.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import pathlib
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]

# run inside the tree under test (the current one, or the worktree): print each workload's signature
_PROBE = """
import json, sys
import jax, funcgrad
from benchmarks import measure, workloads
w = workloads.make_workloads()
out = {"__file__": funcgrad.__file__}
for name in sys.argv[1:]:
    wl = w[name]
    compiled = jax.jit(funcgrad.grad(wl.loss)).lower(wl.params, *wl.batch).compile()
    out[name] = measure.hlo_signature(compiled.as_text())
print(json.dumps(out))
"""


def signatures(tree: pathlib.Path, names: list[str], probe_tree: pathlib.Path) -> dict[str, collections.Counter]:
    """HLO signatures of ``names`` compiled with the funcgrad of ``tree`` (``benchmarks/`` from the first of
    ``tree`` and ``probe_tree`` that has it)."""
    env = {**os.environ, "PYTHONPATH": f"{tree}{os.pathsep}{probe_tree}", "JAX_PLATFORMS": "cpu"}
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *names], cwd=tempfile.gettempdir(), env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"compiling with the funcgrad of {tree} failed:\n{done.stderr[-3000:]}")
    found = json.loads(done.stdout.strip().splitlines()[-1])
    where = pathlib.Path(found.pop("__file__")).resolve()
    if tree.resolve() not in where.parents:
        raise SystemExit(f"the probe imported funcgrad from {where}, not from {tree}")
    return {k: collections.Counter(v) for k, v in found.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rev", help="the commit to compare against (e.g. the previous release)")
    parser.add_argument("workloads", nargs="*", default=["A1", "A128", "B"])
    opts = parser.parse_args(argv)
    from benchmarks.measure import hlo_difference

    with tempfile.TemporaryDirectory() as tmp:
        old_tree = pathlib.Path(tmp) / "tree"
        subprocess.run(["git", "worktree", "add", "--detach", str(old_tree), opts.rev], cwd=ROOT, check=True,
                       capture_output=True)  # fmt: skip
        try:
            old = signatures(old_tree, opts.workloads, ROOT)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(old_tree)], cwd=ROOT, check=False)
    new = signatures(ROOT, opts.workloads, ROOT)
    print(f"| workload | HLO instructions at {opts.rev} / now | instructions not in both |")
    print("|---|---|---|")
    worst = 0
    for name in opts.workloads:
        diff = hlo_difference(old[name], new[name])
        worst = max(worst, diff)
        print(f"| {name} | {sum(old[name].values())} / {sum(new[name].values())} | {diff} |")
    return 1 if worst else 0


if __name__ == "__main__":
    sys.exit(main())
