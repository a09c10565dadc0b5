"""VJP rules for ``sort`` (``jnp.sort``, ``jnp.argsort``, multi-operand ``lax.sort``), ``top_k`` and ``approx_top_k``.

Both only permute (or pick) entries along one axis, so each output cotangent is
added back at the position its entry came from. As in JAX's JVP rules, the
permutation is recovered by sorting an iota along with the operands (with the
same ``num_keys`` and stability, so ties land where the forward pass put them),
and cotangents go back by a scatter-add along the sorted axis.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax import lax

from funcgrad.core.registry import defvjp


def _scatter_along(ct, positions, x_shape, axis):
    """Add ``ct[..., j, ...]`` into zeros of ``x_shape`` at ``positions[..., j, ...]`` along ``axis``."""
    batch = tuple(d for d in range(len(x_shape)) if d != axis)
    dn = lax.ScatterDimensionNumbers(
        update_window_dims=(),
        inserted_window_dims=(axis,),
        scatter_dims_to_operand_dims=(axis,),
        operand_batching_dims=batch,
        scatter_indices_batching_dims=batch,
    )
    zeros = jnp.zeros(x_shape, jnp.result_type(ct))
    return lax.scatter_add(
        zeros, lax.expand_dims(positions, (np.ndim(positions),)), ct, dn, mode=lax.GatherScatterMode.PROMISE_IN_BOUNDS
    )


# symbolic_zeros: an operand whose sorted output received no cotangent gets none (None), as in JAX
@defvjp("sort", symbolic_zeros=True)
def sort_vjp(ct, *operands, out, dimension, is_stable, num_keys, **params):
    """ct_x = ct scattered back through the sorting permutation"""
    shape = np.shape(operands[0])
    index_dtype = np.int32 if max(shape, default=0) < np.iinfo(np.int32).max else np.int64
    iota = lax.broadcasted_iota(index_dtype, shape, dimension)
    # where each sorted entry came from (the same permutation the forward pass applied)
    perm = lax.sort((*operands, iota), dimension=dimension, is_stable=is_stable, num_keys=num_keys)[-1]
    return [
        _scatter_along(c, perm, shape, dimension)
        if c is not None and jnp.issubdtype(jnp.result_type(x), jnp.inexact)
        else None
        for c, x in zip(ct, operands)
    ]


@defvjp("top_k")
def top_k_vjp(ct, x, *, out, k, axis=-1, **params):
    """ct_x = zeros with ct_values scattered back to the returned indices"""
    # ct[0] is the cotangent of the values; the indices output is integer and carries none
    axis = axis % np.ndim(x)
    return (_scatter_along(ct[0], out[1], np.shape(x), axis),)


@defvjp("approx_top_k")
def approx_top_k_vjp(ct, x, *, out, reduction_dimension, **params):
    """ct_x = zeros with ct_values scattered back to the returned indices"""
    # lax.approx_max_k / approx_min_k: JAX's JVP gathers the tangent at the returned indices, so the
    # values' cotangent goes back to those positions (as for top_k; on the CPU the search is exact)
    axis = reduction_dimension % np.ndim(x)
    return (_scatter_along(ct[0], out[1], np.shape(x), axis),)
