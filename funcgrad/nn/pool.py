"""Pooling: the max or the mean over each window of each channel (no parameters)."""

from __future__ import annotations

import jax.numpy as jnp

from funcgrad.nn.layer import Layer, stateless
from funcgrad.nn.patches import Padding, extract_patches


def MaxPool2d(window: int | tuple[int, int], stride=None, padding: Padding = "VALID") -> Layer:
    """The max over each window of one (C, H, W) image.

    The gradient flows to the window's largest entry; entries tied for the max share it
    equally (the ``reduce_max`` convention that jax.grad and funcgrad both follow).

    Args:
      window: (kh, kw) or an int.
      stride: (sh, sw) or an int; defaults to ``window`` (non-overlapping windows).
      padding: ``'VALID'``, ``'SAME'``, an int, or ((top, bottom), (left, right)); padded
        entries are -inf, so they are never chosen.

    Returns:
      A parameter-free ``Layer`` (C, H, W) -> (C, H_out, W_out).
    """
    stride = window if stride is None else stride

    def pool(x):
        return jnp.max(extract_patches(x, window, stride, padding, pad_value=-jnp.inf), axis=(1, 2))

    return stateless(pool, "maxpool")


def AvgPool2d(window: int | tuple[int, int], stride=None, padding: Padding = "VALID") -> Layer:
    """The mean over each window of one (C, H, W) image (padded zeros count, as PyTorch's default).

    Args:
      window: (kh, kw) or an int.
      stride: (sh, sw) or an int; defaults to ``window``.
      padding: ``'VALID'``, ``'SAME'``, an int, or ((top, bottom), (left, right)).

    Returns:
      A parameter-free ``Layer`` (C, H, W) -> (C, H_out, W_out).
    """
    stride = window if stride is None else stride

    def pool(x):
        return jnp.mean(extract_patches(x, window, stride, padding), axis=(1, 2))

    return stateless(pool, "avgpool")
