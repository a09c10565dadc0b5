"""VJP rules for shape and dtype primitives.

These are linear maps that only move, copy or drop entries, so each VJP is the
map's transpose: a reshape goes back to the old shape (whatever strides the
array had: ``reshape`` of a transposed array is transposed back by the
``transpose`` rule), a broadcast sums over the broadcast axes, a slice pads
with zeros, a pad slices.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax import lax

from funcgrad.core import jax_compat as jc
from funcgrad.core.accumulation import zeros_like_primal
from funcgrad.core.registry import defvjp


def _sharded_like(x, dimensions=None) -> dict:
    """``out_sharding=`` for a reshape back to ``x``'s shape (read in ``dimensions`` order when given):
    x's sharding type under explicit mesh axes, which a reshape cannot always infer (JAX's reshape
    and broadcast_in_dim transposes pass it); ``{}`` otherwise."""
    sharding = jc.explicit_sharding(x)
    if sharding is not None and dimensions is not None:
        sharding = jc.with_partitions(sharding, [sharding.spec[d] for d in dimensions])
    return jc.out_sharding(lax.reshape, sharding)


@defvjp("reshape")
def reshape_vjp(ct, x, *dyn, out, new_sizes, dimensions, **params):
    """ct_x = reshape(ct, x.shape)"""
    if dimensions is not None:  # reshape of transpose(x, dimensions)
        ct = lax.reshape(ct, [np.shape(x)[d] for d in dimensions], **_sharded_like(x, dimensions))
        return (lax.transpose(ct, np.argsort(dimensions)), *[None] * len(dyn))
    return (lax.reshape(ct, np.shape(x), **_sharded_like(x)), *[None] * len(dyn))


@defvjp("transpose")
def transpose_vjp(ct, x, *, out, permutation, **params):
    """ct_x = transpose(ct, inverse permutation)"""
    return (lax.transpose(ct, tuple(np.argsort(permutation))),)


@defvjp("broadcast_in_dim")
def broadcast_in_dim_vjp(ct, x, *dyn, out, shape, broadcast_dimensions, **params):
    """ct_x = Σ ct over the added and stretched axes"""
    # sum over the new axes and over the size-1 axes that were stretched
    x_shape = np.shape(x)
    unit_dims = [i for i, d in enumerate(x_shape) if d == 1]
    kept = tuple(d for i, d in enumerate(broadcast_dimensions) if i not in unit_dims)
    summed = tuple(a for a in range(len(shape)) if a not in kept)
    ct_x = jnp.sum(ct, axis=summed) if summed else ct
    return (lax.reshape(ct_x, x_shape, **_sharded_like(x)), *[None] * len(dyn))


@defvjp("squeeze")
def squeeze_vjp(ct, x, *, out, dimensions, **params):
    """ct_x = reshape(ct, x.shape)"""
    return (lax.reshape(ct, np.shape(x), **_sharded_like(x)),)


@defvjp("convert_element_type")
def convert_element_type_vjp(ct, x, *, out, new_dtype, **params):
    """ct_x = ct (cast back to x's dtype by the sweep; integer x gets none)"""
    # the cast back to x's dtype happens in the reverse sweep; integer x gets nothing
    if not jnp.issubdtype(jnp.result_type(x), jnp.inexact):
        return (None,)
    return (ct,)


# casts to and from an extended dtype (lax.convert_element_type binds these for one, e.g. Flax's fp8
# metadata dtype): linear, transposed into the cast back (the sweep's own cast cannot reach an
# extended dtype, so the rules make it)
@defvjp("to_edtype")
def to_edtype_vjp(ct, x, *, out, edtype, **params):
    """ct_x = ct cast to x's dtype"""
    return (lax.convert_element_type(ct, jnp.result_type(x)),)


@defvjp("from_edtype")
def from_edtype_vjp(ct, x, *, out, dtype, **params):
    """ct_x = ct cast to x's dtype"""
    return (lax.convert_element_type(ct, x.dtype),)


@defvjp("copy")
def copy_vjp(ct, x, *, out, **params):
    """ct_x = copy(ct)"""
    # JAX transposes copy into another copy (ad.deflinear(copy_p, lambda t: [copy_p.bind(t)])): the
    # cotangent comes back in a fresh buffer, never the caller's own array (which may be donated)
    return (jnp.copy(ct),)


@defvjp("optimization_barrier")
def optimization_barrier_vjp(ct, *xs, out, **params):
    """ct_x_k = ct_k (the identity on each operand)"""
    # the identity on each operand; an output with no cotangent gives its operand zeros, not a
    # symbolic zero, as JAX's transpose does (tests/test_symbolic_zeros.py)
    return list(ct)


@defvjp("reduce_precision")
def reduce_precision_vjp(ct, x, *, out, exponent_bits, mantissa_bits, **params):
    """ct_x = reduce_precision(ct) (rounded the same way)"""
    # a linear map in JAX's convention: the cotangent is rounded the same way
    return (lax.reduce_precision(ct, exponent_bits=exponent_bits, mantissa_bits=mantissa_bits),)


@defvjp("rev")
def rev_vjp(ct, x, *, out, dimensions, **params):
    """ct_x = rev(ct) along the same dimensions"""
    return (lax.rev(ct, dimensions),)


@defvjp("slice")
def slice_vjp(ct, x, *, out, start_indices, limit_indices, strides, **params):
    """ct_x = zeros with ct placed at the sliced entries (a pad of ct)"""
    # scatter the slice back into zeros: pad low by start, high by what is left, interior by stride - 1
    x_shape = np.shape(x)
    strides = strides or (1,) * len(x_shape)
    config = []
    for n, start, stride, m in zip(x_shape, start_indices, strides, np.shape(ct)):
        real_limit = start + (m - 1) * stride + 1 if m > 0 else start
        config.append((start, n - real_limit, stride - 1) if m > 0 else (start, n - start, 0))
    if any(m == 0 for m in np.shape(ct)):
        return (zeros_like_primal(x, jnp.result_type(ct)),)
    return (lax.pad(ct, jnp.zeros((), jnp.result_type(ct)), config),)


@defvjp("pad")
def pad_vjp(ct, x, padding_value, *, out, padding_config, **params):
    """ct_x = ct[the entries that came from x], ct_padding = Σ ct - Σ ct_x"""
    # undo negative padding by zero-padding, then take every (interior+1)-th entry
    lo, hi, interior = zip(*padding_config) if padding_config else ((), (), ())
    unpadded = lax.pad(ct, jnp.zeros((), jnp.result_type(ct)), [(-a, -b, 0) for a, b in zip(lo, hi)])
    ct_x = lax.slice(unpadded, [0] * len(lo), unpadded.shape, [i + 1 for i in interior])
    # every entry of the output that did not come from x came from the padding value
    ct_pad = jnp.sum(ct) - jnp.sum(ct_x)
    return ct_x, ct_pad


@defvjp("concatenate")
def concatenate_vjp(ct, *xs, out, dimension, **params):
    """ct_x_k = ct[the slice x_k occupies]"""
    cts, start = [], 0
    for x in xs:
        size = np.shape(x)[dimension]
        cts.append(lax.slice_in_dim(ct, start, start + size, axis=dimension))
        start += size
    return cts


@defvjp("split")
def split_vjp(ct, x, *, out, sizes, axis, **params):
    """ct_x = concatenate(ct_1, ..., ct_n) along the axis"""
    return (lax.concatenate(list(ct), axis),)


@defvjp("stack")
def stack_vjp(ct, *xs, out, axis, **params):
    """ct_x_k = ct[k] along the new axis"""
    # (jax >= 0.10) each input is one slice of the output along the new axis
    return [lax.index_in_dim(ct, i, axis, keepdims=False) for i in range(len(xs))]


@defvjp("unstack")
def unstack_vjp(ct, x, *, out, axis, **params):
    """ct_x = stack(ct_1, ..., ct_n) along the axis"""
    # (jax >= 0.10) put the slices' cotangents back side by side along the axis
    return (lax.concatenate([lax.expand_dims(c, (axis,)) for c in ct], axis),)


@defvjp("tile")
def tile_vjp(ct, x, *, out, reps, **params):
    """ct_x = Σ of ct over the tiled copies"""
    # (jax >= 0.10) out[k*n + j] = x[j] on each axis: view ct as (r0, n0, r1, n1, ...) and sum the r copies
    x_shape = np.shape(x)
    split = tuple(k for r, n in zip(reps, x_shape) for k in (r, n))
    return (jnp.sum(lax.reshape(ct, split), axis=tuple(range(0, 2 * len(x_shape), 2))),)
