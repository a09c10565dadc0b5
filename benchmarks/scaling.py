"""How tracing and backward construction grow with graph size (10^3, 10^4, 10^5 equations).

Two graphs: a long elementwise chain (``x = sin(x) + x``: 2 equations per step,
every value fans out twice) and a deep unrolled tanh MLP (width 8, about 5
equations per layer). For each size it measures, in microseconds per equation:

  jax trace    ``jax.make_jaxpr(f)``
  fg trace     ``funcgrad.trace(f)``: JAX's tracing plus conversion to funcgrad's IR
  fg backward  ``jax.make_jaxpr(funcgrad.grad(f))`` with the forward graph already cached: funcgrad
               replays the forward and runs every VJP rule, i.e. builds the backward program
  jax grad     ``jax.make_jaxpr(jax.grad(f))`` (forward + backward, for reference)

Linear growth shows as a flat microseconds-per-equation column. Run alone with
``python -m benchmarks.scaling``.
"""

from __future__ import annotations

import sys
import time

import jax
import jax.numpy as jnp

import funcgrad
from benchmarks import report


def chain(n_eqns: int):
    steps = n_eqns // 2

    def f(x):
        for _ in range(steps):
            x = jnp.sin(x) + x
        return jnp.sum(x)

    return f, jnp.linspace(-1.0, 1.0, 8, dtype=jnp.float32)


def deep_mlp(n_eqns: int, width: int = 8):
    x = jnp.linspace(-1.0, 1.0, width, dtype=jnp.float32)
    w = jnp.eye(width, dtype=jnp.float32) * 0.9
    f_probe = _mlp(1)
    per_layer = len(jax.make_jaxpr(f_probe)(w, x).eqns) - len(jax.make_jaxpr(_mlp(0))(w, x).eqns)
    return _mlp(max(1, n_eqns // per_layer)), (w, x)


def _mlp(layers):
    def f(w, x):
        for _ in range(layers):
            x = jnp.tanh(w @ x + 0.1)
        return jnp.sum(x * x)

    return f


def _time(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def measure_one(name: str, f, args: tuple) -> dict:
    funcgrad.clear_cache()
    jax.clear_caches()
    t_jax = _time(lambda: jax.make_jaxpr(f)(*args))
    jax.clear_caches()
    traced = {}
    t_fg = _time(lambda: traced.setdefault("g", funcgrad.trace(f)(*args)))
    n = len(traced["g"].eqns)
    backward = {}
    t_bwd = _time(lambda: backward.setdefault("j", jax.make_jaxpr(funcgrad.grad(f))(*args)))
    jax.clear_caches()
    t_jgrad = _time(lambda: jax.make_jaxpr(jax.grad(f))(*args))
    return {
        "graph": name,
        "eqns": n,
        "bwd eqns": len(backward["j"].eqns),
        "jax trace": t_jax,
        "fg trace": t_fg,
        "fg backward": t_bwd,
        "jax grad": t_jgrad,
    }


def run(sizes=(1_000, 10_000, 100_000), quick: bool = False) -> list[dict]:
    """Measure both graphs at each size (``quick``: only the two smaller sizes)."""
    if quick:
        sizes = sizes[:2]
    rows = []
    for n in sizes:
        f, x = chain(n)
        print(f"[scaling] chain {n}", file=sys.stderr)
        rows.append(measure_one("chain", f, (x,)))
        f, args = deep_mlp(n)
        print(f"[scaling] mlp {n}", file=sys.stderr)
        rows.append(measure_one("deep mlp", f, args))
    return rows


def markdown(rows: list[dict]) -> str:
    keys = ("jax trace", "fg trace", "fg backward", "jax grad")
    head = ["graph", "equations", "backward eqns", *[f"{k} µs/eqn" for k in keys], "fg backward s"]
    body = [
        [
            r["graph"],
            r["eqns"],
            r["bwd eqns"],
            *[f"{1e6 * r[k] / r['eqns']:.1f}" for k in keys],
            f"{r['fg backward']:.2f}",
        ]
        for r in sorted(rows, key=lambda r: (r["graph"], r["eqns"]))
    ]
    note = (
        f"Recursion limit during the run: {sys.getrecursionlimit()} (unchanged); funcgrad's trace conversion and "
        "reverse sweep are loops over the equation list, so depth is not limited by Python's stack."
    )
    return report.table(head, body) + "\n\n" + note


if __name__ == "__main__":
    print(markdown(run(quick="--quick" in sys.argv)))
