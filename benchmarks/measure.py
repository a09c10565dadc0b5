"""Timing and memory measurements: steady-state steps, first-call latency, XLA analyses.

Steady state: the methods compared are warmed up, then timed *interleaved*
(one call of each per round, order rotating), so a burst of load from other
processes hits all of them alike. First call: JAX's and
funcgrad's caches are cleared before each cold measurement, which is repeated
and the median kept.
"""

from __future__ import annotations

import collections
import functools
import gc
import re
import statistics
import time
from collections.abc import Callable

import jax
import numpy as np

import funcgrad


@functools.cache
def _has_block():
    return hasattr(jax, "block_until_ready")


def block(x):
    """Wait for ``x`` (any pytree; torch tensors and NumPy arrays are already done)."""
    return jax.block_until_ready(x) if _has_block() else x


def timed(fn: Callable, *args) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = block(fn(*args))
    return time.perf_counter() - t0, out


def summary(times: list[float]) -> dict:
    """Median, quartiles, min and max of ``times`` (seconds)."""
    q = np.percentile(times, [25, 50, 75])
    return {
        "median": float(q[1]),
        "p25": float(q[0]),
        "p75": float(q[2]),
        "min": min(times),
        "max": max(times),
        "n": len(times),
    }


def steady_state(
    steps: dict[str, Callable], min_reps: int = 10, budget_s: float = 2.0, warmup: int = 2
) -> dict[str, dict]:
    """Time each zero-argument ``step`` at least ``min_reps`` times, interleaved, after ``warmup`` calls.

    The number of rounds grows until about ``budget_s`` seconds per method (at most 2000).
    """
    est = {}
    for name, step in steps.items():
        for _ in range(warmup):
            est[name] = timed(step)[0]
    slowest = max(est.values())
    rounds = int(min(2000, max(min_reps, budget_s / max(slowest, 1e-6))))
    times = {name: [] for name in steps}
    names = list(steps)
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            times[name].append(timed(steps[name])[0])
    return {name: summary(ts) for name, ts in times.items()}


def _cold():
    jax.clear_caches()
    funcgrad.clear_cache()
    gc.collect()


def first_call(loss: Callable, args: tuple, reps: int = 3) -> dict[str, dict]:
    """First-call latency of ``jit(grad(loss))`` for funcgrad and JAX, split into its stages (seconds, medians).

    Stages, each measured cold (caches cleared):
      trace     forward tracing: ``funcgrad.trace(loss)`` / ``jax.make_jaxpr(loss)``
      grad      tracing the whole gradient: ``jax.make_jaxpr(grad(loss))``
      backward  ``grad - trace``: building the backward pass
      lower     ``jax.jit(grad(loss)).lower(*args)`` (tracing + StableHLO)
      compile   ``lowered.compile()`` (XLA)
      total     ``jax.jit(grad(loss))(*args)`` with a result: what a user waits for
    """
    grads = {"funcgrad": funcgrad.grad, "jax": jax.grad}
    traces = {"funcgrad": lambda f: funcgrad.trace(f), "jax": lambda f: jax.make_jaxpr(f)}
    samples = {m: {k: [] for k in ("trace", "grad", "lower", "compile", "total")} for m in grads}
    fresh = lambda: functools.partial(loss)  # a new function object: no identity-keyed cache can hit
    for r in range(reps):
        for m in list(grads) if r % 2 == 0 else list(grads)[::-1]:
            g = grads[m]
            _cold()
            samples[m]["trace"].append(timed(lambda: traces[m](fresh())(*args))[0])
            _cold()
            samples[m]["grad"].append(timed(lambda: jax.make_jaxpr(g(fresh()))(*args))[0])
            _cold()
            t, lowered = timed(lambda: jax.jit(g(fresh())).lower(*args))
            samples[m]["lower"].append(t)
            samples[m]["compile"].append(timed(lowered.compile)[0])
            _cold()
            samples[m]["total"].append(timed(lambda: jax.jit(g(fresh()))(*args))[0])
    out = {}
    for m, stages in samples.items():
        med = {k: statistics.median(v) for k, v in stages.items()}
        med["backward"] = med["grad"] - med["trace"]
        out[m] = med
    return out


def xla_analysis(loss: Callable, args: tuple) -> dict[str, dict]:
    """XLA's cost and memory analysis of the compiled ``jit(grad(loss))``, funcgrad vs JAX."""
    out = {}
    for m, g in (("funcgrad", funcgrad.grad), ("jax", jax.grad)):
        compiled = jax.jit(g(loss)).lower(*args).compile()
        cost = compiled.cost_analysis()
        cost = cost[0] if isinstance(cost, (list, tuple)) else cost
        mem = compiled.memory_analysis()
        out[m] = {
            "flops": float(cost.get("flops", float("nan"))),
            "bytes accessed": float(cost.get("bytes accessed", float("nan"))),
            "argument": mem.argument_size_in_bytes,
            "output": mem.output_size_in_bytes,
            "alias": mem.alias_size_in_bytes,
            "temp": mem.temp_size_in_bytes,
            "peak": mem.argument_size_in_bytes
            + mem.output_size_in_bytes
            + mem.temp_size_in_bytes
            - mem.alias_size_in_bytes,
            "hlo": hlo_signature(compiled.as_text()),
        }
    return out


def hlo_signature(text: str) -> collections.Counter:
    """The optimized HLO's instructions as a multiset: names, metadata and schedule order removed.

    Two compiled programs with equal signatures run the same operations on the same shapes.
    """
    lines, skip = collections.Counter(), False
    for line in text.splitlines():
        if line.startswith(("FileNames", "FunctionNames", "FileLocations", "StackFrames")):
            skip = True
            continue
        if line.startswith(("%", "ENTRY", "HloModule")):
            skip = False
        if skip or " = " not in line:
            continue
        line = re.sub(r", metadata=\{[^}]*\}|,? ?stack_frame_id=\d+", "", line)
        line = re.sub(r"%[\w.\-]+", "%", line.split(" = ", 1)[1])
        lines[line.strip()] += 1
    return lines


def hlo_difference(a: collections.Counter, b: collections.Counter) -> int:
    """How many instructions are in one program and not the other."""
    return sum((a - b).values()) + sum((b - a).values())


def _live_bytes() -> int:
    gc.collect()
    return sum(a.nbytes for a in jax.live_arrays())


CALLS_MEASURED = ("first", "compiling", "steady")


def eager_held_bytes(loss: Callable, params, args: tuple) -> dict[str, dict[str, int]]:
    """Bytes of device arrays created by ``vjp(loss)`` and kept alive only for its pullback, per call.

    For each of the first three calls of one signature (``CALLS_MEASURED``: funcgrad's first call runs
    eagerly, its second compiles the hot program of ``funcgrad.api.hot``, the third runs it), for
    ``funcgrad.vjp`` and ``jax.vjp``: the growth of ``jax.live_arrays()`` while the result lives (the
    residuals plus the loss), less what is still live once the result is dropped. That remainder is
    kept by a cache, not by the pullback, and is returned as ``"cached"`` (the sum over the calls):
    ``jax.jit`` makes its own device copy of the arrays a traced function closes over (the batch,
    here) on its first call and holds it for as long as the compiled program lives, as it does for
    ``jax.jit(jax.grad(f))``.
    """
    out = {}
    for m, vjp in (("funcgrad", funcgrad.vjp), ("jax", jax.vjp)):
        f = lambda p: loss(p, *args)
        out[m] = {}
        for call in CALLS_MEASURED:
            before = _live_bytes()
            res = vjp(f, params)
            block(res[0])
            during = _live_bytes()
            del res
            kept = _live_bytes() - before
            out[m][call] = during - before - kept
            out[m]["cached"] = out[m].get("cached", 0) + kept
    return out
