"""funcgrad beside its peers, every peer in a process of its own: JAX, Equinox, PyTorch, HIPS autograd.

Usage (from the repository root; PyTorch and autograd come with ``pip install -e .[bench]``)::

    python -m benchmarks.peers                      # all workloads, writes RESULTS.md's PEERS section
    python -m benchmarks.peers --workloads A1,A128 --quick --no-write

For each workload, each peer of ``benchmarks.peer_worker.PEERS`` runs in a fresh
``python -m benchmarks.peer_worker`` process, one after the other (never two at once), with its
own thread settings (each library's default unless ``--threads``): in one process PyTorch's and
autograd's thread pools would compete with XLA's. The parameters, the batch and the reference
gradients (``jax.grad``) go to the workers in a temporary .npz, so the PyTorch and autograd
workers never import JAX.

Load: the CPU time used by *other* processes while each worker ran (all CPUs' busy time in
/proc/stat minus this process's and its children's) is measured, and a figure taken while they
used more than ``LOADED`` (0.25) cores is marked †. The 1-minute load average at each worker's
start is recorded too, but not used to mark: the benchmark's own previous workers count in it.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import platform
import resource
import subprocess
import sys
import tempfile
import time

from benchmarks import peer_worker, report

LOADED = 0.25  # cores used by other processes during a worker's run
BASELINE = "jax jit"
SECTION = "PEERS"
HEADING = "Peers, each in its own process (python -m benchmarks.peers)"


def _busy_seconds():
    """All CPUs' busy time since boot (seconds), from /proc/stat; None where unreadable."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _cpu(who) -> float:
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def run_worker(peer: str, data: str, quick: bool, threads=None, timeout=None) -> dict:
    """Run one worker; its JSON record plus ``load1`` (1-min load average at its start), ``load``
    (1/5/15 before), ``others_cores`` (other processes' CPU use during the run, in cores) and ``wall_s``."""
    cmd = [sys.executable, "-m", "benchmarks.peer_worker", peer, pathlib.Path(data).stem, "--data", data]
    cmd += ["--budget", "0.3" if quick else "2.0"]
    if threads is not None:
        cmd += ["--threads", str(threads)]
    timeout = timeout or (300 if quick else 900)
    load1 = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    load = report.load_average()
    busy0, self0, kids0, t0 = _busy_seconds(), _cpu(resource.RUSAGE_SELF), _cpu(resource.RUSAGE_CHILDREN), time.time()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
        if lines:
            record = json.loads(lines[-1])
        else:
            tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            record = {"peer": peer, "status": "failed", "error": f"exit {proc.returncode}: {tail}"}
    except subprocess.TimeoutExpired:
        record = {"peer": peer, "status": "failed", "error": f"timed out after {timeout} s"}
    wall = time.time() - t0
    busy1 = _busy_seconds()
    own = (_cpu(resource.RUSAGE_SELF) - self0) + (_cpu(resource.RUSAGE_CHILDREN) - kids0)
    others = None if busy0 is None or busy1 is None else max(0.0, (busy1 - busy0) - own) / max(wall, 1e-9)
    record.update(load1=load1, load=load, others_cores=others, wall_s=wall)
    return record


def rows(names, quick: bool, threads=None, peers=peer_worker.PEERS) -> list[dict]:
    found = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            data = os.path.join(tmp, f"{name}.npz")
            peer_worker.save_data(name, data)
            records = {}
            for peer in peers:
                print(f"[{name}] {peer}", file=sys.stderr, flush=True)
                records[peer] = run_worker(peer, data, quick, threads)
                r = records[peer]
                detail = f"{report.ms(r['median_s'])} ms" if r.get("status") == "ok" else r.get("status")
                print(f"[{name}] {peer}: {detail} (load {r['load1']:.2f})", file=sys.stderr, flush=True)
            found.append({"name": name, "records": records})
    return found


def _mark(r) -> str:
    others = r.get("others_cores")
    return "†" if others is None or others > LOADED else ""  # unmeasured counts as loaded


def cell(r: dict, base) -> str:
    """``median ms (ratio to the baseline)``, or why there is no figure."""
    status = r.get("status")
    if status == "ok":
        ratio = report.ratio(r["median_s"], base) if base else "–"
        return f"{report.ms(r['median_s'])} ({ratio}){_mark(r)}"
    if status == "not installed":
        return f"not installed ({r.get('install') or 'pip install -e .[bench]'})"
    if status == "unsupported":
        return "no version of this workload"
    return "failed: " + str(r.get("error", "")).replace("|", "/")[:120]


def _median(records, peer):
    r = records.get(peer, {})
    return r["median_s"] if r.get("status") == "ok" else None


def _jax_devices(found: list[dict]) -> str:
    """What the JAX workers ran on (their ``device`` field), e.g. ``cpu`` or ``NVIDIA H200``."""
    seen = sorted({d for w in found for r in w["records"].values() if (d := r.get("versions", {}).get("device"))})
    return ", ".join(seen) or "no JAX worker ran"


def table(found: list[dict], command: str) -> str:
    peers = [p for p in peer_worker.PEERS if all(p in w["records"] for w in found)]  # those run (--peers)
    fg_peers = [p for p in peers if p not in ("funcgrad jit", "funcgrad eager")]
    main_rows, fg_rows, detail = [], [], []
    loads = []
    for w in found:
        rec = w["records"]
        base = _median(rec, BASELINE)
        main_rows.append([w["name"], *[cell(rec[p], base) for p in peers]])
        for fg in [p for p in ("funcgrad jit", "funcgrad eager") if p in peers]:
            mine = _median(rec, fg)
            ratios = [report.ratio(mine, _median(rec, p)) if mine and _median(rec, p) else "–" for p in fg_peers]
            fg_rows.append([w["name"], fg, *ratios])
        for p in peers:
            r = rec[p]
            loads.append(r["load1"])
            others_cpu = "unknown" if r.get("others_cores") is None else f"{r['others_cores']:.2f}"
            if r.get("status") == "ok":
                vals = [
                    report.ms(r["median_s"]) + _mark(r),
                    report.ms(r["min_s"]),
                    r["repeats"],
                    report.ms(r["first_call_s"]),
                    r["threads"],
                    f"{r['max_rel_err']:.1e}",
                ]
            else:
                vals = [cell(r, None), "", "", "", "", ""]
            versions = ", ".join(f"{k} {v}" for k, v in r.get("versions", {}).items() if k not in ("python", "numpy"))
            detail.append(
                [
                    w["name"],
                    p,
                    *vals,
                    f"{r['load1']:.2f}",
                    others_cpu,
                    "yes" if r.get("jax_imported") else "no",
                    versions,
                ]
            )
    marked = any(p.get("status") == "ok" and _mark(p) for w in found for p in w["records"].values())
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    intro = (
        f"Command: `{command}`  \n"
        f"Machine: {report.cpu_model()}, {os.cpu_count()} cores; JAX on {_jax_devices(found)}; "
        f"Python {platform.python_version()}; {now}  \n"
        f"1-minute load average when each worker started: {min(loads):.2f}–{max(loads):.2f} "
        f"(machine load after the run, 1/5/15 min: {report.load_average()})\n\n"
        "Median ms of one training step (forward and backward, the gradient of every parameter), each peer in "
        "a fresh process of its own, run one after the other, with its own library's thread defaults; in "
        f"parentheses the ratio to `{BASELINE}` (`jax.jit(jax.value_and_grad)`). Eager peers build their "
        "`value_and_grad` once and call it; the first call, 2 warm-up calls, then timed calls.\n\n"
    )
    foot = (
        f"\n\n† taken while other processes used more than {LOADED} cores (or where that could not be "
        "measured: see 'others' CPU' below); rerun on a quieter machine."
        if marked
        else f"\n\nNo figure was taken while other processes used more than {LOADED} cores."
    )
    fg_table = report.table(["workload", "funcgrad", *[f"÷ {p}" for p in fg_peers]], fg_rows)
    detail_head = [
        "workload",
        "peer",
        "median ms",
        "min ms",
        "repeats",
        "first call ms",
        "threads",
        "max rel. err vs jax.grad",
        "1-min load at start",
        "others' CPU during run (cores)",
        "JAX imported",
        "versions",
    ]
    return (
        intro
        + report.table(["workload", *peers], main_rows)
        + foot
        + "\n\nfuncgrad's ratio to each peer (funcgrad median ÷ peer median; below 1: funcgrad faster):\n\n"
        + fg_table
        + "\n\nPer worker: first call (a fresh process: compilation included), thread settings, gradient agreement, "
        "the load when it started and the CPU other processes used while it ran.\n\n"
        + report.table(detail_head, detail)
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", default="A1,A128,B,C,D", help="comma-separated names (A1, A128, B, C, D)")
    parser.add_argument("--quick", action="store_true", help="0.3 s of timed calls per peer instead of 2 s")
    parser.add_argument("--threads", type=int, default=None, help="torch / BLAS threads for every worker")
    parser.add_argument("--no-write", action="store_true", help="print only; leave benchmarks/RESULTS.md alone")
    parser.add_argument("--peers", default=None, help="comma-separated peers (default: all of peer_worker.PEERS)")
    parser.add_argument(
        "--section", default=SECTION, help="the RESULTS.md section written (benchmarks/gpu.sh: GPU PEERS)"
    )
    parser.add_argument("--heading", default=HEADING, help="that section's heading, the first time it is written")
    parser.add_argument("--out", default=None, help="write the table to this file instead of benchmarks/RESULTS.md")
    opts = parser.parse_args(argv)
    peers = peer_worker.PEERS if opts.peers is None else tuple(p.strip() for p in opts.peers.split(","))
    for p in peers:
        if p not in peer_worker.PEERS:
            parser.error(f"unknown peer {p!r}; the peers: {', '.join(peer_worker.PEERS)}")
    command = "python -m benchmarks.peers " + " ".join(argv if argv is not None else sys.argv[1:])
    names = opts.workloads.split(",")
    for n in names:
        if n not in peer_worker.WORKLOADS:
            parser.error(f"unknown workload {n!r}")
    block = table(rows(names, opts.quick, opts.threads, peers), command.strip())
    print(block)
    if opts.out is not None:
        pathlib.Path(opts.out).write_text(block + "\n")
    elif not opts.no_write:
        report.write_section(opts.section, opts.heading, block)


if __name__ == "__main__":
    main()
