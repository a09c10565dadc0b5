"""Pooling: the max or the mean over each window of each channel (no parameters)."""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax

from funcgrad.nn.layer import Layer, stateless
from funcgrad.nn.patches import Padding, padding_pairs, pair


def MaxPool2d(window: int | tuple[int, int], stride=None, padding: Padding = "VALID") -> Layer:
    """The max over each window of one (C, H, W) image.

    The gradient flows to the window's largest entry; when several entries tie for the max, the
    whole cotangent goes to the first of them (``reduce_window_max``'s convention, which jax.grad
    and funcgrad both follow; ``jnp.max`` over an axis splits ties instead).

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
        return _reduce_windows(x, -jnp.inf, lax.max, window, stride, padding)

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
        kh, kw = pair(window, "window")
        return _reduce_windows(x, 0.0, lax.add, window, stride, padding) / (kh * kw)

    return stateless(pool, "avgpool")


def _reduce_windows(x, init, op, window, stride, padding):
    """``op``-reduce each (kh, kw) window of each channel of one (C, H, W) image (one ``reduce_window``).

    ``init`` stays a Python number: JAX recognises 0 / -inf with add / max as reduce_window_sum / max.
    """
    kh, kw = pair(window, "window")
    sh, sw = pair(stride, "stride")
    pads = padding_pairs(padding, x.shape[1:], (kh, kw), (sh, sw))
    return lax.reduce_window(x, init, op, (1, kh, kw), (1, sh, sw), ((0, 0), *pads))
