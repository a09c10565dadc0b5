"""VJP rules for cumulative reductions: ``cumsum``, ``cumprod``, ``cummax``, ``cummin``, ``cumlogsumexp``.

``cumsum`` is linear: its transpose is a cumulative sum running the other way.

The others follow JAX, which differentiates them as the parallel prefix scan
``lax.associative_scan(combine, x)`` (``jax/_src/lax/control_flow/loops.py``).
The scan's tree of ``combine`` calls decides how ties share the cotangent in
``cummax``/``cummin`` (each ``max`` splits a tie evenly, so a run of equal
entries is not weighted like a sequential loop would weight it). To match JAX
exactly, the rule traces that same scan into a funcgrad graph and runs funcgrad's
reverse sweep over it; the graph is cached per shape, dtype, axis and direction.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from funcgrad.core.nested import graph_vjp
from funcgrad.core.registry import defvjp
from funcgrad.core.tracer import trace_flat


@defvjp("cumsum")
def cumsum_vjp(ct, x, *, out, axis, reverse, **params):
    """ct_x[i] = Σ_{j ≥ i} ct[j] (a cumulative sum in the other direction)"""
    # out_j = sum_{i <= j} x_i, so ct_x_i = sum_{j >= i} ct_j
    return (lax.cumsum(ct, axis=axis, reverse=not reverse),)


# the binary operation each cumulative reduction scans with (JAX's choice)
_COMBINE = {"cumprod": lax.mul, "cummax": lax.max, "cummin": lax.min, "cumlogsumexp": jnp.logaddexp}


@functools.lru_cache(maxsize=128)
def _scan_graph(primitive, shape, dtype, axis, reverse, x64):
    # x64 is part of the key: the traced graph's integer literals depend on it
    scan = functools.partial(lax.associative_scan, _COMBINE[primitive], axis=axis, reverse=reverse)
    return trace_flat(scan, [jax.ShapeDtypeStruct(shape, dtype)]).graph


@functools.partial(jax.jit, static_argnames=("primitive", "axis", "reverse"))
def _scan_ct(ct, x, *, primitive, axis, reverse):
    """Cotangent of ``x`` through JAX's prefix scan for ``primitive`` (jitted: the scan's many small ops compile once)."""
    key = (tuple(np.shape(x)), np.dtype(jnp.result_type(x)), axis, reverse, bool(jax.config.jax_enable_x64))
    graph = _scan_graph(primitive, *key)
    (ct_x,) = graph_vjp(graph, [x], [True], [ct])
    return jnp.zeros_like(ct) if ct_x is None else ct_x


def _scan_vjp(primitive):
    def rule(ct, x, *, out, axis, reverse, **params):
        """ct_x = the backward sweep of ct through the associative scan JAX computes this cumulative op with"""
        return (_scan_ct(ct, x, primitive=primitive, axis=axis, reverse=reverse),)

    rule.__name__ = f"{primitive}_vjp"
    return rule


defvjp("cumprod", _scan_vjp("cumprod"))
defvjp("cummax", _scan_vjp("cummax"))
defvjp("cummin", _scan_vjp("cummin"))
defvjp("cumlogsumexp", _scan_vjp("cumlogsumexp"))
