"""Run the benchmarks and write the figures into ``benchmarks/RESULTS.md``.

Usage (from the repository root; needs the ``bench`` extra: ``pip install -e .[bench]``)::

    python -m benchmarks.run                      # everything, writes benchmarks/RESULTS.md
    python -m benchmarks.run --workloads A1,B --quick --no-write

Only the part of RESULTS.md between the ``BEGIN/END GENERATED`` markers is
replaced; the hand-written analysis around it is kept.

PyTorch, torch.compile, HIPS autograd and Equinox are timed each in its own process by ``python -m benchmarks.peers``.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np

import funcgrad
from benchmarks import measure, report
from benchmarks.workloads import make_workloads

BEGIN, END = "<!-- BEGIN GENERATED -->", "<!-- END GENERATED -->"
TARGETS = {"jit": 1.02, "first call": 1.5, "eager": 1.0, "peak memory": 1.05}
COMPARED = [("funcgrad jit", "jax jit"), ("funcgrad eager", "jax eager")]


def _max_rel_err(got, want) -> float:
    errs = [
        np.max(np.abs(np.asarray(g) - np.asarray(v))) / (np.max(np.abs(np.asarray(v))) + 1e-30)
        for g, v in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want))
    ]
    return float(max(errs))


def bench_workload(w, quick: bool) -> dict:
    params = jax.tree_util.tree_map(jnp.asarray, w.params)
    batch = tuple(jnp.asarray(b) for b in w.batch)
    args = (params, *batch)
    res = {"workload": w, "errors": {}, "unsupported": None}
    want = jax.grad(w.loss)(*args)
    try:
        res["errors"]["funcgrad"] = _max_rel_err(funcgrad.grad(w.loss)(*args), want)
    except funcgrad.FuncgradError as err:
        res["unsupported"] = str(err).splitlines()[0]
    steps = {"jax jit": lambda: jax.jit(jax.grad(w.loss)), "jax eager": lambda: jax.grad(w.loss)}
    if res["unsupported"] is None:
        steps = {
            "funcgrad jit": lambda: jax.jit(funcgrad.grad(w.loss)),
            **steps,
            "funcgrad eager": lambda: funcgrad.grad(w.loss),
        }
    steps = {k: (lambda g: lambda: g(*args))(make()) for k, make in steps.items()}
    print(f"[{w.name}] timing {', '.join(steps)}", file=sys.stderr)
    # funcgrad and jax.grad of the same mode are timed against each other (alternating).
    res["steady"] = {}
    for group in COMPARED:
        found = {name: steps[name] for name in group if name in steps}
        if found:
            res["steady"].update(measure.steady_state(found, min_reps=10, budget_s=0.3 if quick else 2.0))
    if res["unsupported"] is None:
        print(f"[{w.name}] first call, XLA and memory analyses", file=sys.stderr)
        res["first"] = measure.first_call(w.loss, args, reps=1 if quick else 3)
        res["xla"] = measure.xla_analysis(w.loss, args)
        res["held"] = measure.eager_held_bytes(w.loss, params, batch)
    try:
        from benchmarks.torch_workloads import saved_bytes

        res.setdefault("held", {})["torch"] = saved_bytes(w)
    except ImportError:
        pass
    return res


# ------------------------------------------------------------------- markdown


def _steady_section(results) -> str:
    cols = ["funcgrad jit", "jax jit", "funcgrad eager", "jax eager"]
    rows = []
    for r in results:
        s = r["steady"]
        cells = [report.spread(s[c]) if c in s else "–" for c in cols]
        fj = report.ratio(s["funcgrad jit"]["median"], s["jax jit"]["median"]) if "funcgrad jit" in s else "unsupported"
        fe = (
            report.ratio(s["funcgrad eager"]["median"], s["jax eager"]["median"])
            if "funcgrad eager" in s
            else "unsupported"
        )
        rows.append([f"{r['workload'].name}: {r['workload'].description}", *cells, fj, fe])
    head = ["workload", *[f"{c} ms" for c in cols], "funcgrad/jax (jit)", "funcgrad/jax (eager)"]
    n = min(min(v["n"] for v in r["steady"].values()) for r in results)
    note = (
        f"Median [25th–75th percentile] of one gradient step (forward and backward pass, the gradient of every parameter), "
        f"in milliseconds, over at least {n} runs after 2 warm-up calls; funcgrad and jax.grad of the same mode "
        "are timed alternately (one call each per round, order swapping). PyTorch, HIPS autograd and Equinox: "
        "`python -m benchmarks.peers` (each in its own process)."
    )
    return note + "\n\n" + report.table(head, rows)


def _first_call_section(results) -> str:
    rows = []
    for r in results:
        if "first" not in r:
            continue
        f, j = r["first"]["funcgrad"], r["first"]["jax"]
        for stage in ("trace", "backward", "grad", "lower", "compile", "total"):
            rows.append(
                [r["workload"].name, stage, report.ms(f[stage]), report.ms(j[stage]), report.ratio(f[stage], j[stage])]
            )
    return report.table(["workload", "stage", "funcgrad ms", "jax ms", "ratio"], rows)


def _xla_section(results) -> str:
    rows = []
    for r in results:
        if "xla" not in r:
            continue
        f, j = r["xla"]["funcgrad"], r["xla"]["jax"]
        rows.append(
            [
                r["workload"].name,
                f"{f['flops']:.4g} / {j['flops']:.4g}",
                f"{f['bytes accessed']:.4g} / {j['bytes accessed']:.4g}",
                f"{report.mib(f['temp'])} / {report.mib(j['temp'])}",
                f"{report.mib(f['peak'])} / {report.mib(j['peak'])}",
                report.ratio(f["peak"], j["peak"]),
                f"{sum(f['hlo'].values())} / {sum(j['hlo'].values())}",
                measure.hlo_difference(f["hlo"], j["hlo"]),
            ]
        )
    head = [
        "workload",
        "FLOPs fg / jax",
        "bytes accessed fg / jax",
        "temp MiB fg / jax",
        "peak MiB fg / jax",
        "peak ratio",
        "HLO instructions fg / jax",
        "instructions not in both",
    ]
    return report.table(head, rows)


def _held_section(results) -> str:
    calls = measure.CALLS_MEASURED
    rows = []
    for r in results:
        h = r.get("held", {})
        fg, jx = h.get("funcgrad"), h.get("jax")
        cells = []
        for call in calls:
            cells += [report.mib(fg[call]), report.ratio(fg[call], jx[call])] if fg else ["–", "–"]
        rows.append(
            [
                r["workload"].name,
                report.mib(jx["steady"]) if jx else "–",
                *cells,
                f"{report.mib(fg['cached'])} / {report.mib(jx['cached'])}" if fg else "–",
                report.mib(h["torch"]) if "torch" in h else "–",
            ]
        )
    head = ["workload", "jax.vjp MiB"]
    for call in calls:
        head += [f"funcgrad.vjp MiB, {call} call", "ratio"]
    head += ["kept by caches MiB, funcgrad / jax", "torch saved tensors MiB"]
    return report.table(head, rows)


def _targets_section(results) -> str:
    rows = []
    for r in results:
        if r["unsupported"] is not None:
            rows.append([r["workload"].name, "unsupported: " + r["unsupported"], "", "", ""])
            continue
        s, f, x = r["steady"], r["first"], r["xla"]
        vals = {
            "jit": s["funcgrad jit"]["median"] / s["jax jit"]["median"],
            "first call": f["funcgrad"]["total"] / f["jax"]["total"],
            "eager": s["funcgrad eager"]["median"] / s["jax eager"]["median"],
            "peak memory": x["funcgrad"]["peak"] / x["jax"]["peak"],
        }
        rows.append(
            [r["workload"].name, *[f"{v:.2f} {'met' if v <= TARGETS[k] else 'MISSED'}" for k, v in vals.items()]]
        )
    head = ["workload", *[f"{k} (≤ {v})" for k, v in TARGETS.items()]]
    return report.table(head, rows)


def _errors_section(results) -> str:
    rows = [
        [
            r["workload"].name,
            f"{r['errors']['funcgrad']:.1e}" if "funcgrad" in r["errors"] else "–",
        ]
        for r in results
    ]
    return report.table(["workload", "funcgrad"], rows)


def markdown(results, info, load_before, load_after, command, scaling_md) -> str:
    parts = [
        BEGIN,
        f"Command: `{command}`  ",
        f"Machine: {info['cpu']}, {info['cores']} cores, CPU only (no GPU/TPU); JAX devices: {info['devices']}  ",
        f"Versions: {info['versions']}  ",
        f"Date: {info['date']}  ",
        f"Load average (1/5/15 min) before: {load_before}; after: {load_after}",
        "",
        "### Targets (funcgrad / jax.grad; reported, not asserted)",
        "",
        _targets_section(results),
        "",
        "### Steady-state step time",
        "",
        _steady_section(results),
        "",
        "### First-call latency under jit (cold caches, median of runs)",
        "",
        "`trace`: forward tracing (`funcgrad.trace` / `jax.make_jaxpr`); `backward`: `grad - trace`, building the backward "
        "pass; `grad`: `jax.make_jaxpr(grad(f))`; `lower`: `jax.jit(grad(f)).lower()`; `compile`: `.compile()`; "
        "`total`: the first `jax.jit(grad(f))(*args)`, including execution.",
        "",
        _first_call_section(results),
        "",
        "### Compiled programs under jit (XLA cost and memory analysis)",
        "",
        "peak = argument + output + temp − alias bytes of the compiled `jit(grad(f))`. Instructions are those of the "
        "optimized HLO with names, metadata and schedule order removed; 0 not in both means the same operations on the same shapes.",
        "",
        _xla_section(results),
        "",
        "### Eager memory held between forward and backward",
        "",
        "funcgrad / jax: growth of `jax.live_arrays()` bytes across `vjp(f, params)` (residuals kept for the backward "
        "pass, plus the loss), less what stays live once the pullback is dropped (`measure.eager_held_bytes`), for "
        "each of the first three calls of the signature: funcgrad's first runs eagerly, its second compiles the hot "
        "program, the third runs it (ratio: to jax.vjp's same call; target ≤ 1.05). Kept by caches: what the calls "
        "left live after their pullbacks were dropped (jax.jit's copy of the closed-over batch). torch: bytes of "
        "the non-leaf tensors autograd saves for backward (`saved_tensors_hooks`). HIPS autograd: not measured.",
        "",
        _held_section(results),
        "",
        "### Gradient agreement with jax.grad (max |diff| / max |jax|)",
        "",
        _errors_section(results),
        "",
    ]
    if scaling_md:
        parts += ["### Scaling with graph size", "", scaling_md, ""]
    parts.append(END)
    return "\n".join(parts)


def write_results(path: pathlib.Path, generated: str) -> None:
    text = path.read_text() if path.exists() else f"# Benchmark results\n\n{BEGIN}\n{END}\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        text = head + generated + tail
    else:
        text = text.rstrip() + "\n\n" + generated + "\n"
    path.write_text(text)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workloads", default="A1,A128,B,C,D", help="comma-separated names (A1, A128, B, C, D)")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (for checking the harness)")
    parser.add_argument("--no-scaling", action="store_true", help="skip the graph-size scaling measurement")
    parser.add_argument("--out", default=str(pathlib.Path(__file__).with_name("RESULTS.md")))
    parser.add_argument("--no-write", action="store_true", help="print the tables instead of writing RESULTS.md")
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=None,
        help="torch.set_num_threads for the saved-tensor count (torch timings: benchmarks.peers --threads)",
    )
    opts = parser.parse_args(argv)
    if opts.torch_threads is not None:
        import torch

        torch.set_num_threads(opts.torch_threads)
    command = "python -m benchmarks.run " + " ".join(argv if argv is not None else sys.argv[1:])
    load_before = report.load_average()
    info = report.machine()
    workloads = make_workloads()
    results = [bench_workload(workloads[n], opts.quick) for n in opts.workloads.split(",")]
    scaling_md = ""
    if not opts.no_scaling:
        from benchmarks import scaling

        scaling_md = scaling.markdown(scaling.run(quick=opts.quick))
    generated = markdown(results, info, load_before, report.load_average(), command.strip(), scaling_md)
    print(generated)
    if not opts.no_write:
        write_results(pathlib.Path(opts.out), generated)


if __name__ == "__main__":
    main()
