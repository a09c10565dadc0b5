"""The CNN (workload C) written NCHW, as in ``benchmarks.workloads``, and the same model written NHWC.

Usage (from the repository root)::

    python -m benchmarks.cnn_layouts

XLA:CPU runs convolutions with YNNPACK's NHWC kernels, so an NCHW model pays layout transposes
around every convolution, and the fusions of the backward pass carry them too (docs/speed.md,
"Backward programs"). Here the same parameters and batch are laid out NHWC / HWIO (``nhwc_workload``:
the dense layer's columns permuted to match the NHWC flatten, so both compute the same loss) and
``jax.jit(funcgrad.value_and_grad)`` and ``jax.jit(jax.value_and_grad)`` of both are timed
interleaved in one process (``measure.steady_state``). Prints the medians, in ms; writes nothing.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np

import funcgrad
from benchmarks import measure, report
from benchmarks.workloads import Workload, cnn_xent_nhwc, make_workloads


def nhwc_workload(w: Workload) -> Workload:
    """Workload C's model and data laid out NHWC: kernels OIHW -> HWIO, the batch NCHW -> NHWC, and
    W's columns from the (channel, row, column) flatten order to (row, column, channel)."""
    p = dict(w.params)
    for k in ("conv1", "conv2"):
        p[k] = np.ascontiguousarray(np.transpose(p[k], (2, 3, 1, 0)))
    channels = p["conv2"].shape[-1]
    rows = p["W"].shape[0]
    side = int(round((p["W"].shape[1] // channels) ** 0.5))
    p["W"] = np.ascontiguousarray(p["W"].reshape(rows, channels, side, side).transpose(0, 2, 3, 1).reshape(rows, -1))
    x, labels = w.batch
    batch = (np.ascontiguousarray(np.transpose(x, (0, 2, 3, 1))), labels)
    return Workload("C NHWC", w.description + ", NHWC", cnn_xent_nhwc, p, batch)


def main() -> None:
    nchw = make_workloads()["C"]
    steps = {}
    for w in (nchw, nhwc_workload(nchw)):
        args = (jax.tree_util.tree_map(jnp.asarray, w.params), *map(jnp.asarray, w.batch))
        for lib, vg in (("funcgrad", funcgrad.value_and_grad), ("jax", jax.value_and_grad)):
            f = jax.jit(vg(w.loss))
            steps[(w.name, lib)] = (lambda f, args: lambda: jax.block_until_ready(f(*args)))(f, args)
    load = os.getloadavg()
    times = measure.steady_state(steps, min_reps=60, budget_s=3.0)
    rows = [
        [name, lib, f"{1e3 * t['median']:.1f} [{1e3 * t['p25']:.1f}–{1e3 * t['p75']:.1f}]", t["n"]]
        for (name, lib), t in times.items()
    ]
    print(f"jax.jit(value_and_grad) of workload C in two layouts, interleaved; load {load[0]:.2f} {load[1]:.2f}")
    print(report.table(["workload", "gradient by", "median ms [25th–75th]", "calls"], rows))


if __name__ == "__main__":
    main()
