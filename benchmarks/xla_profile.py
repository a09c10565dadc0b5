"""Where the time of a compiled gradient step goes, op by op: XLA's own per-op profile on this CPU.

Usage (from the repository root; needs ``pip install xprof``, the reader of JAX's profiles)::

    python -m benchmarks.xla_profile             # the CNN (C) and the transformer block (D)
    python -m benchmarks.xla_profile C --steps 20 --top 12
    python -m benchmarks.xla_profile --no-write  # print only; by default also the RESULTS.md section

Per workload, ``jax.jit(funcgrad.value_and_grad(loss))`` and ``jax.jit(jax.value_and_grad(loss))``
run ``--steps`` times each under ``jax.profiler.trace``. XLA:CPU records one event per thunk (one
fused kernel, convolution, dot, copy, ...) of the program; xprof's trace viewer converts the
profile, and the events of each program's HLO instructions are summed by instruction and by kind
(what the fused computation does: convolution, dot, transpose/copy, select, reduce, elementwise).
The figures are per-step means (the summed events over the steps), in ms; the load of the machine is
recorded with them.
"""

from __future__ import annotations

import argparse
import collections
import glob
import json
import os
import re
import tempfile

import jax
import jax.numpy as jnp

import funcgrad
from benchmarks import report
from benchmarks.workloads import make_workloads

# an HLO instruction line: "%name = f32[...] opcode(...), ..., calls=%computation" (names without %
# in newer XLA text)
_INSTRUCTION = re.compile(r"^\s*(?:ROOT\s+)?%?([\w.\-]+)\s*=\s*\S+(?:\[[^\]]*\])?(?:\{[^}]*\})?\s+([\w\-]+)\(")
_CALLS = re.compile(r"calls=%?([\w.\-]+)")
_COMPUTATION = re.compile(r"^(?:ENTRY\s+)?%?([\w.\-]+)\s.*\{\s*$")


def _computations(hlo: str) -> dict[str, list[str]]:
    """computation name -> its instruction lines."""
    found, current = {}, None
    for line in hlo.splitlines():
        m = _COMPUTATION.match(line)
        if m and not line.startswith(" "):
            current = found.setdefault(m.group(1), [])
        elif current is not None and line.strip() and line.strip() != "}":
            current.append(line)
    return found


def _kind(opcodes: set[str]) -> str:
    """What an instruction does, by the opcodes it (or its fused computation) runs."""
    for kind, ops in (
        ("convolution", {"convolution"}),
        ("dot", {"dot"}),
        ("reduce-window / select-and-scatter", {"reduce-window", "select-and-scatter"}),
        ("select / pad (max-pool backward)", {"select", "pad"}),
        ("reduce", {"reduce"}),
        ("transpose / copy", {"transpose", "copy"}),
    ):
        if opcodes & ops:
            return kind
    return "elementwise / other"


def describe(hlo: str) -> dict[str, tuple[str, str]]:
    """instruction name -> (kind, opcodes) for every instruction of the program's computations."""
    comps = _computations(hlo)

    def opcodes_of(lines, seen=()):
        ops = set()
        for line in lines:
            m = _INSTRUCTION.match(line)
            if not m:
                continue
            ops.add(m.group(2))
            for callee in _CALLS.findall(line):
                if callee in comps and callee not in seen:
                    ops |= opcodes_of(comps[callee], (*seen, callee))
        return ops

    out = {}
    for lines in comps.values():
        for line in lines:
            m = _INSTRUCTION.match(line)
            if m:
                ops = opcodes_of([line])
                ops.discard("fusion")
                out[m.group(1)] = (_kind(ops), ",".join(sorted(ops - {"parameter", "bitcast", "constant"})))
    return out


def _events(trace_dir: str) -> list[dict]:
    from xprof.convert import raw_to_tool_data

    paths = sorted(glob.glob(os.path.join(trace_dir, "**", "*.xplane.pb"), recursive=True))
    data, _ = raw_to_tool_data.xspace_to_tool_data(paths[-1:], "trace_viewer@", {})
    return [e for e in json.loads(data).get("traceEvents", []) if e.get("ph") == "X"]


def profile(step, args, steps: int) -> tuple[list[dict], str]:
    """Events of ``steps`` runs of the compiled ``step`` (after a warm-up run), and its HLO text."""
    compiled = step.lower(*args).compile()
    jax.block_until_ready(compiled(*args))
    with tempfile.TemporaryDirectory() as trace_dir:
        with jax.profiler.trace(trace_dir):
            for _ in range(steps):
                jax.block_until_ready(compiled(*args))
        return _events(trace_dir), compiled.as_text()


def per_op(events: list[dict], hlo: str, steps: int) -> tuple[dict, dict, float]:
    """(instruction -> (ms per step, kind, opcodes), kind -> ms per step, total ms per step)."""
    names = describe(hlo)
    times = collections.defaultdict(list)
    for e in events:
        if e["name"] in names:
            times[e["name"]].append(e.get("dur", 0) / 1e3)
    ops = {n: (sum(ts) / steps, *names[n]) for n, ts in times.items()}
    kinds = collections.Counter()
    for ms, kind, _ in ops.values():
        kinds[kind] += ms
    return ops, dict(kinds), sum(kinds.values())


def rows(names, steps: int, top: int) -> tuple[list[dict], list[str]]:
    workloads = make_workloads()
    found, details = [], []
    for name in names:
        w = workloads[name]
        params = jax.tree_util.tree_map(jnp.asarray, w.params)
        batch = tuple(jnp.asarray(x) for x in w.batch)
        results = {}
        for label, grad in (("funcgrad", funcgrad.value_and_grad), ("jax", jax.value_and_grad)):
            events, hlo = profile(jax.jit(grad(w.loss)), (params, *batch), steps)
            results[label] = per_op(events, hlo, steps)
        kinds = sorted({k for r in results.values() for k in r[1]}, key=lambda k: -results["jax"][1].get(k, 0.0))
        for kind in kinds:
            f, j = results["funcgrad"][1].get(kind, 0.0), results["jax"][1].get(kind, 0.0)
            found.append({"workload": name, "kind": kind, "funcgrad ms": f, "jax ms": j})
        f_total, j_total = results["funcgrad"][2], results["jax"][2]
        found.append({"workload": name, "kind": "all ops", "funcgrad ms": f_total, "jax ms": j_total})
        for label, (ops, _, _) in results.items():
            details.append(f"{name}, {label}: the {top} slowest ops (ms per step, kind, opcodes)")
            for op, (ms, kind, opcodes) in sorted(ops.items(), key=lambda kv: -kv[1][0])[:top]:
                details.append(f"  {ms:8.3f}  {op:32s} {kind:36s} {opcodes}")
    return found, details


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("workloads", nargs="*", default=["C", "D"])
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--top", type=int, default=10)
    ap.add_argument("--no-write", action="store_true")
    opts = ap.parse_args(argv)
    load = report.load_average()
    found, details = rows(opts.workloads, opts.steps, opts.top)
    lines = [
        f"| {r['workload']} | {r['kind']} | {r['funcgrad ms']:.2f} | {r['jax ms']:.2f} | "
        f"{(r['funcgrad ms'] / r['jax ms']) if r['jax ms'] else float('nan'):.2f} |"
        for r in found
    ]
    table = "\n".join(
        [
            "| workload | kind of op | funcgrad jit (ms/step) | jax jit (ms/step) | ratio |",
            "|---|---|---|---|---|",
            *lines,
        ]
    )
    text = (
        f"{opts.steps} steps each, XLA:CPU thunk events summed per step (mean over steps); load: {load}\n\n"
        f"{table}\n\n```\n" + "\n".join(details) + "\n```"
    )
    print(text)
    if not opts.no_write:
        report.write_section("XLA PROFILE", "XLA per-op profile of the compiled steps (CPU)", text)


if __name__ == "__main__":
    main()
