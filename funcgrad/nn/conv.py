"""``Conv2d``: a linear block whose weighted sums run over small windows of the image, with shared weights."""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax

from funcgrad.nn.init import fan_in_uniform
from funcgrad.nn.layer import Layer, check_in_shape, shape_of
from funcgrad.nn.patches import Padding, padding_pairs, pair


def Conv2d(
    out_channels: int, kernel_size: int | tuple[int, int], *, stride=1, padding: Padding = "VALID", bias: bool = True
) -> Layer:
    """A 2-D convolution (cross-correlation, as PyTorch's ``nn.Conv2d`` and ``lax.conv`` with OIHW weights).

    out[o, y, x] = Σ_{c,i,j} W[o, c, i, j] · x[c, y·sh + i, x·sw + j] + b[o]

    Args:
      out_channels: the number of output channels (filters).
      kernel_size: (kh, kw) or an int.
      stride: (sh, sw) or an int.
      padding: ``'VALID'``, ``'SAME'``, an int, or ((top, bottom), (left, right)).
      bias: whether to add ``b``.

    Returns:
      A ``Layer`` mapping one (C, H, W) image to (out_channels, H_out, W_out), with
      parameters ``{'W': (out_channels, C, kh, kw), 'b': (out_channels,)}``.
    """
    kh, kw = pair(kernel_size, "kernel_size")

    def init(in_shape, *, key):
        shape = shape_of(in_shape)
        check_in_shape("Conv2d", shape, 3, "C, H, W")
        fan_in = shape[0] * kh * kw
        # one draw for [W | b] (each jax.random call compiles its own PRNG kernel)
        wb = fan_in_uniform(key, (out_channels, fan_in + 1), fan_in)
        params = {"W": jnp.reshape(wb[:, :fan_in], (out_channels, shape[0], kh, kw))}
        if bias:
            params["b"] = wb[:, fan_in]
        return params

    strides = pair(stride, "stride")

    def apply(params, x):
        # one XLA convolution (nn.extract_patches shows the same weighted sums as explicit windows)
        pads = padding_pairs(padding, x.shape[1:], (kh, kw), strides)
        out = lax.conv_general_dilated(x[None], params["W"], strides, pads, dimension_numbers=("NCHW", "OIHW", "NCHW"))[
            0
        ]
        return out + params["b"][:, None, None] if bias else out

    return Layer(init, apply, "conv")
