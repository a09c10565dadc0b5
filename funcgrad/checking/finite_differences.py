"""Finite differences in float64 on the CPU, scoped: the user's program need not enable x64.

Everything runs inside ``float64_on_cpu()``: ``jax.enable_x64(True)`` (or
``jax.experimental.enable_x64`` on older JAX) and the CPU as default device, with
the inputs upcast to float64 and moved there with ``jax.device_put`` (so arrays
that live on a GPU/TPU work, and float16/bfloat16 steps do not round to zero).
Central differences ``(L(x + h d) - L(x - h d)) / 2h`` of ``L = <cts, f>`` are
taken along random directions and, for small leaves, along each coordinate;
the step is ``h = cbrt(eps)`` of the dtype the function computes in, and the
directions are scaled by ``max(|x|, 1)``. Nothing here calls JAX's AD.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from funcgrad import api
from funcgrad.checking.report import least_precise
from funcgrad.core.jax_compat import enable_x64

tree_util = jax.tree_util


# ------------------------------------------------------------------ float64 on the CPU


@contextlib.contextmanager
def float64_on_cpu():
    """float64 enabled and the CPU as default device, for this block only; yields the CPU device."""
    cpu = jax.devices("cpu")[0]
    with enable_x64(), jax.default_device(cpu):
        yield cpu


def to_cpu64(x, cpu):
    """A copy of ``x`` on ``cpu``, upcast to float64 if floating (call inside ``float64_on_cpu``)."""
    if isinstance(x, float):
        return jax.device_put(np.float64(x), cpu)
    if not isinstance(x, (jax.Array, np.ndarray, np.generic)):
        return x  # Python ints, flags, strings: passed through
    if _has_numpy_dtype(x) and jnp.issubdtype(x.dtype, jnp.floating):
        return jax.device_put(np.asarray(x).astype(np.float64), cpu)
    return jax.device_put(x, cpu)


def _has_numpy_dtype(x) -> bool:
    try:
        np.dtype(x.dtype)
    except TypeError:  # PRNG keys and other extended dtypes
        return False
    return True


def scalarize(flat_fun: Callable, cts: Sequence[Any], dtype=None) -> Callable:
    """``L(*xs) = sum_k <cts_k, out_k(*xs)>``, so that grad L is the VJP with ``cts`` (in ``dtype`` if given)."""

    def loss(*xs):
        total = None
        for y, c in zip(tree_util.tree_leaves(flat_fun(*xs)), cts, strict=True):
            if c is None:
                continue
            if dtype is not None:
                y = jnp.asarray(y, dtype)
            term = jnp.sum(y * c)
            total = term if total is None else total + term
        return total

    return loss


def _replace(xs, k, x):
    return [x if i == k else xi for i, xi in enumerate(xs)]


# ------------------------------------------------------------- finite differences


def fd_step(f64: Callable, xs64: Sequence[Any], eps: float | None) -> float:
    """cbrt(machine eps) of the dtype the function computes in (float64 unless it casts down)."""
    if eps is not None:
        return float(eps)
    out = jax.eval_shape(f64, *xs64)
    dtypes = [leaf.dtype for leaf in tree_util.tree_leaves(out)] + [np.float64]
    return float(np.cbrt(float(jnp.finfo(least_precise(dtypes)).eps)))


def finite_differences(prob, cts, dirs64, eps, elementwise_max: int):
    """Central differences of ``<cts, f>`` in float64 on the CPU, all in one compiled program.

    Returns:
      (per-leaf directional derivatives along ``dirs64``, per-leaf elementwise gradients or None).
    """
    with float64_on_cpu() as cpu:
        values = [to_cpu64(v, cpu) for v in prob.values]
        f64 = prob.function(values)
        xs = [values[i] for i in prob.diff_idx]
        cts64 = [None if c is None else to_cpu64(np.asarray(c).astype(np.float64), cpu) for c in cts]
        loss = scalarize(f64, cts64, jnp.float64)
        h = fd_step(f64, xs, eps)
        # per leaf, the steps to take: +h d, -h d, then +-h max(|x_i|, 1) e_i for small leaves
        steps, scales = [], []
        for x, d in zip(xs, dirs64):
            n = int(np.size(x))
            rows = [h * d, -h * d]
            if 0 < n <= elementwise_max:
                scale = np.maximum(np.abs(np.asarray(x)), 1.0).reshape(-1)
                basis = (np.eye(n) * (h * scale)[:, None]).reshape((n, *np.shape(x)))
                rows += [*basis, *(-basis)]
                scales.append(scale)
            else:
                scales.append(None)
            steps.append(jnp.asarray(np.stack(rows)))

        @jax.jit
        def losses(xs, steps):
            # one vmapped evaluation per leaf, the other leaves unperturbed
            return [jax.vmap(lambda dx, k=k: loss(*_replace(xs, k, xs[k] + dx)))(s) for k, s in enumerate(steps)]

        def losses_eagerly(xs, steps):
            return [[loss(*_replace(xs, k, xs[k] + dx)) for dx in s] for k, s in enumerate(steps)]

        values_at = [np.asarray(v) for v in compiled_or_eager(losses, losses_eagerly, xs, steps)]
    directional, elementwise = [], []
    for x, vals, scale in zip(xs, values_at, scales):
        directional.append(float((vals[0] - vals[1]) / (2 * h)))
        if scale is None:
            elementwise.append(None)
        else:
            n = scale.size
            elementwise.append(((vals[2 : 2 + n] - vals[2 + n :]) / (2 * h * scale)).reshape(np.shape(x)))
    return directional, elementwise


def finite_difference_hvp(prob, cts, dirs64, eps) -> list:
    """Central differences of funcgrad's float64 gradient of ``<cts, f>`` along ``dirs64``: H d per leaf."""
    with float64_on_cpu() as cpu:
        values = [to_cpu64(v, cpu) for v in prob.values]
        f64 = prob.function(values)
        xs = [values[i] for i in prob.diff_idx]
        cts64 = [None if c is None else to_cpu64(np.asarray(c).astype(np.float64), cpu) for c in cts]
        loss = scalarize(f64, cts64, jnp.float64)
        h = fd_step(f64, xs, eps)
        grad = api.grad(loss, argnums=tuple(range(len(xs))))
        ds = [jnp.asarray(d) for d in dirs64]

        def both_sides(xs, ds):
            return grad(*[x + h * d for x, d in zip(xs, ds)]), grad(*[x - h * d for x, d in zip(xs, ds)])

        up, down = compiled_or_eager(jax.jit(both_sides), both_sides, xs, ds)
        return [(np.asarray(a) - np.asarray(b)) / (2 * h) for a, b in zip(up, down)]


def compiled_or_eager(compiled: Callable, eager: Callable, *args):
    """``compiled(*args)``; primitives without a lowering or batching rule (a user's new primitive
    with only an ``impl``) make it fail, and the same evaluations then run eagerly, one by one."""
    try:
        return compiled(*args)
    except NotImplementedError:
        return eager(*args)
