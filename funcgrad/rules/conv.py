"""VJP rule for ``conv_general_dilated`` (every layout, stride, padding, dilation and grouping).

A convolution is bilinear in (lhs, rhs), so each cotangent is again a
convolution (JAX's ``_conv_general_dilated_transpose_lhs/_rhs`` in
``jax/_src/lax/convolution.py``, written with public ``jax.lax``):

* lhs: convolve the output cotangent with the spatially flipped kernel, its in/out
  feature axes swapped; the forward strides become lhs dilation and the forward
  lhs dilation becomes the stride.
* rhs: convolve lhs with the output cotangent as the kernel (batch and feature
  axes trade places); the forward strides become rhs dilation.

Feature groups of the forward pass become batch groups of the rhs cotangent and
vice versa.
"""

from __future__ import annotations

import itertools

import jax.numpy as jnp
import numpy as np
from jax import lax

from funcgrad.core import jax_compat as jc
from funcgrad.core.accumulation import zeros_like_primal
from funcgrad.core.registry import defvjp


def _dilate_shape(shape, dilation):
    # a size-n axis dilated by d has size 1 + d (n - 1) (0 stays 0)
    return tuple(max(0, 1 + d * (n - 1)) for n, d in zip(shape, dilation))


def vjp_lhs_padding(in_shape, window_dimensions, window_strides, out_shape, padding, lhs_dilation, rhs_dilation):
    """Padding of the transposed convolution that maps an output cotangent back to the input.

    Args:
      in_shape, window_dimensions, out_shape: spatial sizes of the input, window and output.
      window_strides, padding, lhs_dilation, rhs_dilation: the forward convolution's.

    Returns:
      One ``(low, high)`` pair per spatial axis.
    """
    lhs_dilated = _dilate_shape(in_shape, lhs_dilation)
    rhs_dilated = _dilate_shape(window_dimensions, rhs_dilation)
    out_dilated = _dilate_shape(out_shape, window_strides)
    before = [r - lo - 1 for r, (lo, _) in zip(rhs_dilated, padding)]
    after = [lh + r - 1 - o - b for lh, r, o, b in zip(lhs_dilated, rhs_dilated, out_dilated, before)]
    return list(zip(before, after))


def _vjp_rhs_padding(in_shape, window_dimensions, window_strides, out_shape, padding, lhs_dilation, rhs_dilation):
    if len(in_shape) == 0:  # 0-d convolution
        return []
    lhs_dilated = _dilate_shape(in_shape, lhs_dilation)
    rhs_dilated = _dilate_shape(window_dimensions, rhs_dilation)
    out_dilated = _dilate_shape(out_shape, window_strides)
    lows = [lo for lo, _ in padding]
    highs = [o - lh + r - lo - 1 for o, lh, r, lo in zip(out_dilated, lhs_dilated, rhs_dilated, lows)]
    return list(zip(lows, highs))


def _swap_first_two(spec):
    return (spec[1], spec[0], *spec[2:])


def _split_axis(x, axis, size):
    """Reshape axis ``axis`` of ``x`` into ``(size, rest)``."""
    shape = list(np.shape(x))
    shape[axis : axis + 1] = [size, shape[axis] // size]
    return lax.reshape(x, shape)


def _merge_axis(x, src, dst):
    """Move axis ``src`` next to (before) axis ``dst`` (numbered without ``src``) and merge them."""
    perm = [i for i in range(np.ndim(x)) if i != src]
    perm.insert(dst, src)
    shape = list(np.delete(np.shape(x), src))
    shape[dst] *= np.shape(x)[src]
    return lax.reshape(lax.transpose(x, perm), shape)


def _spatial(shape, spec):
    return [shape[d] for d in spec[2:]]


def _ct_lhs(ct, lhs, rhs, p):
    lhs_spec, rhs_spec, out_spec = p["dimension_numbers"]
    feature_groups, batch_groups = p["feature_group_count"], p["batch_group_count"]
    groups = max(feature_groups, batch_groups)  # at most one of them is > 1
    if groups > 1:
        # move the group axis of the kernel's output features into its input features
        rhs = _merge_axis(_split_axis(rhs, rhs_spec[0], groups), rhs_spec[0], rhs_spec[1])
    pads = _padding(vjp_lhs_padding, ct, lhs, rhs, p)
    flipped = lax.rev(rhs, tuple(rhs_spec[2:])).astype(jnp.result_type(ct))
    out = lax.conv_general_dilated(
        ct,
        flipped,
        window_strides=p["lhs_dilation"],
        padding=pads,
        lhs_dilation=p["window_strides"],
        rhs_dilation=p["rhs_dilation"],
        dimension_numbers=lax.ConvDimensionNumbers(out_spec, _swap_first_two(rhs_spec), lhs_spec),
        feature_group_count=groups,
        batch_group_count=1,
        precision=p["precision"],
        preferred_element_type=p["preferred_element_type"],
        **_sharded_as(lhs, ct),
    )
    if batch_groups > 1:  # batch groups were stacked on the feature axis
        out = _merge_axis(_split_axis(out, lhs_spec[1], batch_groups), lhs_spec[1], lhs_spec[0])
    return out


def _padding(padding_rule, ct, lhs, rhs, p):
    """``padding_rule`` (the lhs or rhs transpose's padding) for this convolution's spatial shapes."""
    lhs_spec, rhs_spec, out_spec = p["dimension_numbers"]
    return padding_rule(
        _spatial(np.shape(lhs), lhs_spec),
        _spatial(np.shape(rhs), rhs_spec),
        p["window_strides"],
        _spatial(np.shape(ct), out_spec),
        p["padding"],
        p["lhs_dilation"],
        p["rhs_dilation"],
    )


def _ct_rhs(ct, lhs, rhs, p):
    if np.size(ct) == 0:  # avoid a degenerate convolution with an empty kernel
        return zeros_like_primal(rhs, jnp.result_type(ct))
    if not shifted_applies(ct, rhs, p):
        return ct_rhs_convolution(ct, lhs, rhs, p)
    if not (jc.is_tracer(ct) or jc.is_tracer(lhs)):
        # an eager sweep (a signature's first call): one convolution compiles faster than the dots and
        # slices, whose speed only pays in a compiled program (jit, hot calls)
        return ct_rhs_convolution(ct, lhs, rhs, p)
    return lax.platform_dependent(
        ct,
        lhs,
        cpu=lambda ct, lhs: ct_rhs_shifted(ct, lhs, rhs, p),
        default=lambda ct, lhs: ct_rhs_convolution(ct, lhs, rhs, p),
    )


# XLA:CPU runs the kernel cotangent below as one convolution whose "kernel" is the whole output
# cotangent, slowly; as one dot per kernel position it is 1.9-2.6x faster on the CNN of
# benchmarks/workloads.py (docs/speed.md, "Backward programs"). For small kernels without groups or
# lhs dilation, in compiled programs on CPU only; other platforms and eager sweeps keep the convolution.
_MAX_SHIFTED_POSITIONS = 16


def shifted_applies(ct, rhs, p) -> bool:
    """Whether ``ct_rhs_shifted`` computes this convolution's kernel cotangent."""
    _, rhs_spec, _ = p["dimension_numbers"]
    window = _spatial(np.shape(rhs), rhs_spec)
    return (
        len(window) > 0
        and 0 < int(np.prod(window)) <= _MAX_SHIFTED_POSITIONS
        and p["feature_group_count"] == 1
        and p["batch_group_count"] == 1
        and all(d == 1 for d in p["lhs_dilation"])
        and jc.cotangent_sharding(rhs, ct) is None
    )


def ct_rhs_shifted(ct, lhs, rhs, p):
    """ct_rhs[o, c, k] = sum_{n, t} lhs_padded[n, c, t * stride + k * rhs_dilation] ct[n, o, t]: one dot
    per kernel position k, contracting the batch and the output positions t."""
    lhs_spec, rhs_spec, out_spec = p["dimension_numbers"]
    x = lax.transpose(lhs.astype(jnp.result_type(ct)), tuple(lhs_spec))  # (N, C, *spatial)
    g = lax.transpose(ct, tuple(out_spec))  # (N, O, *out spatial)
    x = lax.pad(x, jnp.zeros((), x.dtype), [(0, 0, 0), (0, 0, 0), *((lo, hi, 0) for lo, hi in p["padding"])])
    window = _spatial(np.shape(rhs), rhs_spec)
    strides, dilation = p["window_strides"], p["rhs_dilation"]
    contract = (0, *range(2, np.ndim(x)))
    parts = []
    for position in itertools.product(*map(range, window)):
        start = [0, 0, *(k * d for k, d in zip(position, dilation))]
        limit = [*np.shape(x)[:2], *(b + (t - 1) * s + 1 for b, t, s in zip(start[2:], np.shape(g)[2:], strides))]
        piece = lax.slice(x, start, limit, (1, 1, *strides))
        parts.append(
            lax.dot_general(
                g,
                piece,
                ((contract, contract), ((), ())),
                precision=p["precision"],
                preferred_element_type=p["preferred_element_type"],
            )
        )  # (O, C)
    out = jnp.stack(parts, axis=-1).reshape(*np.shape(parts[0]), *window)  # (O, C, *window)
    return lax.transpose(out, tuple(int(i) for i in np.argsort(rhs_spec)))


def ct_rhs_convolution(ct, lhs, rhs, p):
    """ct_rhs = conv(lhs, ct) with batch and feature axes trading places (JAX's formulation)."""
    lhs_spec, rhs_spec, out_spec = p["dimension_numbers"]
    pads = _padding(_vjp_rhs_padding, ct, lhs, rhs, p)
    trans_dn = lax.ConvDimensionNumbers(_swap_first_two(lhs_spec), _swap_first_two(out_spec), _swap_first_two(rhs_spec))
    return lax.conv_general_dilated(
        lhs.astype(jnp.result_type(ct)),
        ct,
        window_strides=p["rhs_dilation"],
        padding=pads,
        lhs_dilation=p["lhs_dilation"],
        rhs_dilation=p["window_strides"],
        dimension_numbers=trans_dn,
        # feature groups of the forward pass are batch groups here, and vice versa
        feature_group_count=p["batch_group_count"],
        batch_group_count=p["feature_group_count"],
        precision=p["precision"],
        preferred_element_type=p["preferred_element_type"],
        **_sharded_as(rhs, ct),
    )


def _sharded_as(primal, ct) -> dict:
    """``out_sharding=`` for a transposed convolution under explicit mesh axes: the primal's sharding
    (JAX's transposes pass it; it must be given when a contracted feature axis is sharded)."""
    return jc.out_sharding(lax.conv_general_dilated, jc.cotangent_sharding(primal, ct))


@defvjp("conv_general_dilated")
def conv_general_dilated_vjp(ct, lhs, rhs, *, out, preferred_element_type=None, precision=None, **params):
    """ct_lhs = conv(ct, flipped rhs) (transposed convolution), ct_rhs = conv(lhs, ct) (correlation over the batch)"""
    if preferred_element_type is not None and not jnp.issubdtype(preferred_element_type, jnp.inexact):
        preferred_element_type = None
    p = dict(params, precision=precision, preferred_element_type=preferred_element_type)
    return _ct_lhs(ct, lhs, rhs, p), _ct_rhs(ct, lhs, rhs, p)
