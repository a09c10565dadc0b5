"""Jit speed without jit: funcgrad's eager value_and_grad with hot compilation on and off, beside jax.jit.

Usage (from the repository root)::

    python -m benchmarks.hot_calls             # prints the table and writes its RESULTS.md section
    python -m benchmarks.hot_calls --no-write

Per workload of ``benchmarks.workloads``, in one process, interleaved (``measure.steady_state``):
``jax.jit(jax.value_and_grad(loss))``, ``funcgrad.value_and_grad(loss)`` written without jit (its hot
calls run compiled: docs/speed.md), the same with ``funcgrad.hot_compilation(False)`` (funcgrad's
sweep rule by rule), and ``jax.value_and_grad`` without jit. The eager wrapper is rebuilt at every
step (``funcgrad.value_and_grad(loss)(...)``), as the lecture's loop writes it.

First call: the first call of a new signature after ``funcgrad.clear_cache()`` (XLA's per-primitive
caches warm: the trace and the sweep, not JAX's op compilation), hot compilation on and off, median
of 3; and the second call with it on, which compiles.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

import funcgrad
from benchmarks import measure, report
from benchmarks.workloads import make_workloads


def rows(names=("A1", "A128", "B", "C", "D")) -> list[dict]:
    found = []
    workloads = make_workloads()
    for name in names:
        w = workloads[name]
        params = jax.tree_util.tree_map(jnp.asarray, w.params)
        batch = tuple(jnp.asarray(x) for x in w.batch)
        jitted = jax.jit(jax.value_and_grad(w.loss))
        want = jitted(params, *batch)

        def hot():
            return funcgrad.value_and_grad(w.loss)(params, *batch)

        def eager():
            with funcgrad.hot_compilation(False):
                return funcgrad.value_and_grad(w.loss)(params, *batch)

        err = max(
            float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / (np.max(np.abs(np.asarray(b))) + 1e-30))
            for f in (hot, hot, eager)
            for a, b in zip(jax.tree_util.tree_leaves(f()), jax.tree_util.tree_leaves(want))
        )
        load_before = report.load_average()
        times = measure.steady_state(
            {
                "jax jit": lambda: jitted(params, *batch),
                "funcgrad hot": hot,
                "funcgrad op by op": eager,
                "jax eager": lambda: jax.value_and_grad(w.loss)(params, *batch),
            },
            budget_s=1.0 if name in ("C", "D") else 2.0,
        )
        first = {"on": [], "off": [], "second": []}
        for _ in range(3):
            for mode in ("on", "off"):
                funcgrad.clear_cache()
                with funcgrad.hot_compilation(mode == "on"):
                    t0 = time.perf_counter()
                    measure.block(funcgrad.value_and_grad(w.loss)(params, *batch))
                    first[mode].append(time.perf_counter() - t0)
                    if mode == "on":
                        t0 = time.perf_counter()
                        measure.block(funcgrad.value_and_grad(w.loss)(params, *batch))
                        first["second"].append(time.perf_counter() - t0)
        found.append(
            {
                "name": name,
                "times": times,
                "first": {k: float(np.median(v)) for k, v in first.items()},
                "err": err,
                "load": f"{load_before} / {report.load_average()}",
            }
        )
    return found


def table(found: list[dict]) -> str:
    header = [
        "workload",
        "jax jit ms",
        "funcgrad no jit (hot) ms",
        "ratio to jax jit",
        "funcgrad op by op ms",
        "ratio",
        "jax eager ms",
        "ratio",
        "first call hot on / off ms",
        "second call (compiles) ms",
        "max rel. err",
        "load before / after",
    ]
    body = []
    for r in found:
        t = r["times"]
        jit = t["jax jit"]["median"]
        body.append(
            [
                r["name"],
                report.spread(t["jax jit"]),
                report.spread(t["funcgrad hot"]),
                report.ratio(t["funcgrad hot"]["median"], jit),
                report.spread(t["funcgrad op by op"]),
                report.ratio(t["funcgrad op by op"]["median"], jit),
                report.spread(t["jax eager"]),
                report.ratio(t["jax eager"]["median"], jit),
                f"{report.ms(r['first']['on'])} / {report.ms(r['first']['off'])}",
                report.ms(r["first"]["second"]),
                f"{r['err']:.1e}",
                r["load"],
            ]
        )
    info = report.machine()
    intro = (
        "Median [25th-75th percentile] ms of `value_and_grad` of each workload, interleaved in one process "
        "(`python -m benchmarks.hot_calls`); ratios to `jax.jit(jax.value_and_grad)`. Machine: "
        f"{info.get('cpu', '')}, JAX {jax.__version__}.\n\n"
    )
    return intro + report.table(header, body)


def main() -> None:
    report.section_main(
        __doc__, "HOT CALLS", "Jit speed without jit (python -m benchmarks.hot_calls)", lambda: table(rows())
    )


if __name__ == "__main__":
    main()
