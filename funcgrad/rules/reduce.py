"""VJP rules for reductions: sums broadcast back, max/min route to the chosen entries."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax import lax

from funcgrad.core import jax_compat as jc
from funcgrad.core.accumulation import zeros_like_primal
from funcgrad.core.registry import defvjp


def _expand_back(ct, x, axes):
    """Broadcast a reduced cotangent back over ``axes`` to ``x``'s shape (and, under explicit mesh axes,
    to x's sharding, as JAX's ``_reduce_sum_transpose_rule`` does: a sum over a sharded axis is
    replicated there, its cotangent is not)."""
    x_shape = np.shape(x)
    kept = tuple(a for a in range(len(x_shape)) if a not in axes)
    sharding = jc.out_sharding(lax.broadcast_in_dim, jc.explicit_sharding(x))
    return lax.broadcast_in_dim(ct, x_shape, kept, **sharding)


@defvjp("reduce_sum")
def reduce_sum_vjp(ct, x, *, out, axes, **params):
    """ct_x = ct broadcast back over the summed axes"""
    return (_expand_back(ct, x, axes),)


@defvjp("reduce_max")
def reduce_max_vjp(ct, x, *, out, axes, **params):
    """ct_x = ct broadcast back, where x == max (ties share it equally)"""
    # ties share the cotangent equally, as in JAX
    return (_chooser_vjp(ct, x, out, axes),)


defvjp("reduce_min", reduce_max_vjp)


def _chooser_vjp(ct, x, out, axes):
    chosen = (x == _expand_back(out, x, axes)).astype(jnp.result_type(ct))
    counts = jnp.sum(chosen, axis=axes)
    return chosen * _expand_back(ct / counts, x, axes)


@defvjp("reduce_prod")
def reduce_prod_vjp(ct, x, *, out, axes, **params):
    """ct_x[i] = ct · Π_{j ≠ i} x[j] (computed without dividing by x[i])"""
    # d prod / d x_i = product of the other entries; computed without dividing by x_i,
    # so zeros in x give the right answer (as JAX's rule does)
    x_shape = np.shape(x)
    axes = tuple(sorted(axes))
    kept = [a for a in range(len(x_shape)) if a not in axes]
    perm = kept + list(axes)
    xt = lax.transpose(x, perm)
    n_kept = int(np.prod([x_shape[a] for a in kept], dtype=np.int64))
    n_red = int(np.prod([x_shape[a] for a in axes], dtype=np.int64))
    if n_red == 0:  # an empty product (x has no entries): an empty gradient
        return (zeros_like_primal(x, jnp.result_type(ct)),)
    flat = lax.reshape(xt, (n_kept, n_red))
    ones = jnp.ones((n_kept, 1), flat.dtype)
    before = jnp.concatenate([ones, lax.cumprod(flat, axis=1)[:, :-1]], axis=1)
    after = jnp.concatenate([lax.cumprod(flat, axis=1, reverse=True)[:, 1:], ones], axis=1)
    others = lax.reshape(before * after, [x_shape[a] for a in perm])
    others = lax.transpose(others, tuple(np.argsort(perm)))
    return (others * _expand_back(ct, x, axes),)
