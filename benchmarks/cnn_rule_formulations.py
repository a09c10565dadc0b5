"""The CNN's rule formulations on CPU, timed one by one under jit (docs/speed.md, "Backward programs").

Usage (from the repository root)::

    python -m benchmarks.cnn_rule_formulations

For the two convolutions of ``benchmarks.workloads``' CNN: the kernel's cotangent as JAX's
convolution (``rules.conv.ct_rhs_convolution``) and as one dot per kernel position
(``ct_rhs_shifted``, what funcgrad's rule compiles to on CPU). For its two 2x2 max pools: the operand's
cotangent from ``funcgrad.vjp`` and from ``jax.vjp``. Medians of 30 calls, in ms; prints only.
"""

from __future__ import annotations

import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

import funcgrad
from benchmarks import report
from funcgrad.rules import conv

DN = lax.ConvDimensionNumbers((0, 1, 2, 3), (0, 1, 2, 3), (0, 1, 2, 3))  # NCHW, OIHW, NCHW
PARAMS = {
    "dimension_numbers": DN,
    "window_strides": (1, 1),
    "padding": ((0, 0), (0, 0)),
    "lhs_dilation": (1, 1),
    "rhs_dilation": (1, 1),
    "feature_group_count": 1,
    "batch_group_count": 1,
    "precision": None,
    "preferred_element_type": None,
}


def median_ms(f, *args, reps: int = 30) -> float:
    f = jax.jit(f)
    jax.block_until_ready(f(*args))
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        jax.block_until_ready(f(*args))
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def _pool(h):
    return lax.reduce_window(h, -jnp.inf, lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")


def main() -> None:
    rng = np.random.default_rng(0)
    rows = []
    for name, lhs_shape, rhs_shape in (
        ("conv1", (64, 1, 28, 28), (32, 1, 3, 3)),
        ("conv2", (64, 32, 13, 13), (64, 32, 3, 3)),
    ):
        lhs = jnp.asarray(rng.standard_normal(lhs_shape), jnp.float32)
        rhs = jnp.asarray(rng.standard_normal(rhs_shape), jnp.float32)
        out_shape = jax.eval_shape(lambda a, b: lax.conv_general_dilated(a, b, (1, 1), "VALID"), lhs, rhs).shape
        ct = jnp.asarray(rng.standard_normal(out_shape), jnp.float32)
        for label, f in (
            ("convolution (JAX's)", conv.ct_rhs_convolution),
            ("one dot per position", conv.ct_rhs_shifted),
        ):
            rows.append(
                [f"{name} kernel cotangent", label, f"{median_ms(lambda c, x, f=f: f(c, x, rhs, PARAMS), ct, lhs):.2f}"]
            )
    for name, shape in (("pool1", (64, 32, 26, 26)), ("pool2", (64, 64, 11, 11))):
        x = jnp.asarray(rng.standard_normal(shape), jnp.float32)
        ct = jnp.asarray(rng.standard_normal(jax.eval_shape(_pool, x).shape), jnp.float32)
        for label, vjp in (("funcgrad.vjp", funcgrad.vjp), ("jax.vjp", jax.vjp)):
            rows.append(
                [
                    f"{name} operand cotangent",
                    label,
                    f"{median_ms(lambda x, c, vjp=vjp: vjp(_pool, x)[1](c)[0], x, ct):.2f}",
                ]
            )
    print(f"load: {report.load_average()}\n")
    print(report.table(["what", "formulation", "ms (median of 30, jit)"], rows))


if __name__ == "__main__":
    main()
