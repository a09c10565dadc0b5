"""What ``funcgrad.explore`` costs on the benchmark transformer block (workload D), and its page in a browser.

    python -m benchmarks.explorer            # prints the table and writes it into benchmarks/RESULTS.md
    python -m benchmarks.explorer --no-write

* explore: ``funcgrad.explore(loss)(params, x)`` (trace with call stacks, forward pass, funcgrad's
  reverse sweep recorded rule by rule with every value's and cotangent's summary, grouping,
  diagnostics, the bytes the backward pass keeps, layout), then ``to_html()``. First call, and the
  median of later calls.
* one gradient step: ``funcgrad.value_and_grad(loss)`` on the same arguments, eager (no ``jax.jit``
  around it), the median of warm calls: with hot compilation off (funcgrad's sweep op by op, as the
  explorer runs it) and on (the default: a repeated call runs one compiled program).
* fresh processes: each of the two as the first thing a new Python process does (JAX then compiles
  every primitive it meets, for both alike).
* the page: its size, and its rendering in headless Chromium (the system's, driven by selenium as in
  tests/test_explorer_browser.py): from navigation start to the load event, by which the page's
  script has drawn the first view (median of a few loads); then one click opening a block.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time

import jax
import numpy as np

import funcgrad
from benchmarks import report
from benchmarks.workloads import make_workloads


def _median_time(fn, n: int) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure() -> dict:
    w = make_workloads()["D"]
    params = {k: jax.numpy.asarray(v) for k, v in w.params.items()}
    x = jax.numpy.asarray(w.batch[0])
    step = funcgrad.value_and_grad(w.loss)
    with funcgrad.hot_compilation(False):
        step(params, x)  # JAX compiles each primitive once: warm both paths alike
        eager = _median_time(lambda: step(params, x), 5)
    step(params, x)
    step(params, x)
    hot = _median_time(lambda: step(params, x), 5)

    def explore():
        return funcgrad.explore(w.loss)(params, x).to_html()

    t0 = time.perf_counter()
    page = explore()
    first = time.perf_counter() - t0
    warm = _median_time(lambda: len(explore()), 3)
    render = _render(page)
    fresh = {what: _fresh(what) for what in ("step", "explore")}
    return {"eager": eager, "hot": hot, "first": first, "warm": warm, "bytes": len(page.encode()), **render, **fresh}


_FRESH = """
import time, jax, funcgrad
from benchmarks.workloads import make_workloads
w = make_workloads()["D"]
p = {k: jax.numpy.asarray(v) for k, v in w.params.items()}
x = jax.numpy.asarray(w.batch[0])
t0 = time.perf_counter()
if WHAT == "step":
    jax.block_until_ready(funcgrad.value_and_grad(w.loss)(p, x))
else:
    funcgrad.explore(w.loss)(p, x).to_html()
print(time.perf_counter() - t0)
"""


def _fresh(what: str) -> float:
    """Seconds of ``what`` ("step" or "explore") as the first call of a new process."""
    code = f"WHAT = {what!r}\n" + _FRESH
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=report.RESULTS.parents[1], timeout=600
    )
    if done.returncode != 0:
        raise RuntimeError(f"the fresh-process {what} failed:\n{done.stderr}")
    return float(done.stdout.strip().splitlines()[-1])


def _render(page: str) -> dict:
    sys.path.insert(0, str(report.RESULTS.parents[1]))
    from tests.test_explorer_browser import start_chromium  # the tests' browser: the system's Chromium

    with tempfile.NamedTemporaryFile("w", suffix=".html", delete=False, encoding="utf-8") as f:
        f.write(page)
    driver = start_chromium()
    try:
        loads = []
        for _ in range(5):
            driver.get("file://" + f.name)
            loads.append(
                driver.execute_script("const t = performance.timing; return t.loadEventEnd - t.navigationStart;")
            )
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        block = driver.find_elements("css selector", 'g.fg-node[data-kind="block"]')[0]
        t0 = time.perf_counter()
        block.click()
        driver.find_elements("css selector", ".fg-crumbs a")  # after the click's synchronous redraw
        click = time.perf_counter() - t0
    finally:
        driver.quit()
    return {"render": statistics.median(loads) / 1e3, "click": click, "console_errors": len(errors)}


def table(m: dict) -> str:
    rows = [
        ["explore + to_html, first call", f"{m['first']:.2f} s"],
        ["explore + to_html, warm (median of 3)", f"{m['warm']:.2f} s"],
        ["one gradient step, eager, hot compilation off (median of 5)", f"{m['eager']:.2f} s"],
        ["one gradient step, eager, hot compilation on (median of 5)", f"{m['hot']:.2f} s"],
        ["explore beyond one gradient step (warm - eager step)", f"{m['warm'] - m['eager']:.2f} s"],
        ["explore beyond one gradient step (warm - hot step)", f"{m['warm'] - m['hot']:.2f} s"],
        ["one gradient step, first call of a fresh process", f"{m['step']:.2f} s"],
        ["explore + to_html, first call of a fresh process", f"{m['explore']:.2f} s"],
        ["page size", f"{m['bytes'] / 1e6:.2f} MB"],
        ["headless Chromium: navigation to load event, first view drawn (median of 5)", f"{m['render']:.2f} s"],
        ["headless Chromium: clicking a block open", f"{m['click']:.2f} s"],
        ["console errors", str(m["console_errors"])],
    ]
    intro = (
        f"JAX {jax.__version__}, {jax.devices()[0].platform}, {report.cpu_model()} ({report.machine()['cores']} cores); "
        f"workload D (transformer block, batch 16, seq 128, d 256, 4 heads); load average {report.load_average()} "
        "(1, 5, 15 min)"
    )
    return intro + "\n\n" + report.table(["measured", "value"], rows)


def main(argv=None) -> None:
    np.random.seed(0)
    report.section_main(
        __doc__,
        "EXPLORER",
        "funcgrad.explore on the transformer block (python -m benchmarks.explorer)",
        lambda: table(measure()),
        argv,
    )


if __name__ == "__main__":
    main()
