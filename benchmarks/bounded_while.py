"""funcgrad.while_loop's memory strategies: what XLA allocates and how long a gradient takes.

    python -m benchmarks.bounded_while            # prints the table and writes it into benchmarks/RESULTS.md
    python -m benchmarks.bounded_while --no-write

A recurrent update ``x <- tanh(W x)`` (width 256) run for 700 iterations of a loop bounded by
``max_steps=1024``, differentiated with respect to ``W`` under ``jax.jit``. Per strategy: XLA's
temporary buffers of the compiled gradient (a property of the program, not of the machine's load), and
the median time of a gradient (interleaved with the others, so load affects them alike; the load
average is recorded). The reference row is ``jax.grad`` of the same loop written as a masked
``lax.scan`` of 1024 steps, the way one differentiates a bounded loop in JAX today.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

import funcgrad
from benchmarks import measure, report
from funcgrad.api.bounded_while import STRATEGIES

WIDTH, TRIPS, MAX_STEPS = 256, 700, 1024


def _loss(loop):
    def loss(w, x0):
        _, x = loop(lambda c: c[0] < TRIPS, lambda c: (c[0] + 1, jnp.tanh(w @ c[1])), (0, x0))
        return jnp.sum(x)

    return loss


def _masked_scan(cond, body, init):
    step = lambda c, _: (lax.cond(cond(c), body, lambda v: v, c), None)  # noqa: E731
    return lax.scan(step, init, None, length=MAX_STEPS)[0]


def rows() -> list[list[str]]:
    w = jax.random.normal(jax.random.key(0), (WIDTH, WIDTH)) / WIDTH**0.5
    x0 = jnp.ones(WIDTH)
    grads = {
        f"funcgrad.while_loop, strategy={s!r}": jax.jit(
            funcgrad.grad(_loss(lambda c, b, i, s=s: funcgrad.while_loop(c, b, i, max_steps=MAX_STEPS, strategy=s)))
        )
        for s in STRATEGIES
    }
    grads["jax.grad of a masked lax.scan"] = jax.jit(jax.grad(_loss(_masked_scan)))
    temp = {name: g.lower(w, x0).compile().memory_analysis().temp_size_in_bytes for name, g in grads.items()}
    times = measure.steady_state({name: (lambda g=g: g(w, x0)) for name, g in grads.items()}, min_reps=5)
    carry = WIDTH * 4
    return [
        [name, f"{temp[name] / 2**10:.0f}", f"{temp[name] / carry:.0f}", f"{times[name]['median'] * 1e3:.1f}"]
        for name in grads
    ]


def table(found) -> str:
    header = ["gradient", "temp (KiB)", "temp / carry size", "median (ms)"]
    intro = (
        f"JAX {jax.__version__}, {jax.devices()[0].platform}; width {WIDTH}, {TRIPS} iterations, "
        f"max_steps={MAX_STEPS}; temp = XLA's temporary buffers of jit(grad(loss)); load average "
        f"{report.load_average()} (1, 5, 15 min)"
    )
    return intro + "\n\n" + report.table(header, found)


def main() -> None:
    report.section_main(
        __doc__,
        "BOUNDED WHILE",
        "funcgrad.while_loop strategies (python -m benchmarks.bounded_while)",
        lambda: table(rows()),
    )


if __name__ == "__main__":
    main()
