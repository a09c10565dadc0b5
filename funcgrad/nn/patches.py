"""Sliding windows as explicit patches (im2col), built from pad and strided slices.

A convolution is a weighted sum over each window and a pooling layer a max or a
mean over it; both read the windows produced here. Only ``pad``, ``slice`` and
``concatenate`` appear in the graph, so funcgrad differentiates them with its
shape rules (the transpose of "take a window" is "pad it back in place").
"""

from __future__ import annotations

from collections.abc import Sequence

import jax.numpy as jnp
from jax import lax

Padding = str | Sequence[tuple[int, int]] | int


def pair(v: int | Sequence[int], what: str) -> tuple[int, int]:
    """``3 -> (3, 3)``; a pair stays a pair."""
    out = (v, v) if isinstance(v, int) else tuple(v)
    if len(out) != 2 or any(not isinstance(n, int) or n < 0 for n in out):
        raise ValueError(f"{what} must be an int or a pair of non-negative ints, got {v!r}.")
    return out


def padding_pairs(padding: Padding, size: tuple[int, int], window: tuple[int, int], stride: tuple[int, int]):
    """Resolve ``'VALID'``, ``'SAME'``, an int or ((lo, hi), (lo, hi)) into two (lo, hi) pairs."""
    if isinstance(padding, int):
        return ((padding, padding), (padding, padding))
    if isinstance(padding, str):
        if padding.upper() == "VALID":
            return ((0, 0), (0, 0))
        if padding.upper() == "SAME":  # as lax.padtype_to_pads: output size ceil(n / stride)
            pads = []
            for n, k, s in zip(size, window, stride, strict=True):
                total = max((-(-n // s) - 1) * s + k - n, 0)
                pads.append((total // 2, total - total // 2))
            return tuple(pads)
        raise ValueError(f"padding must be 'VALID', 'SAME', an int or ((lo, hi), (lo, hi)); got {padding!r}.")
    return tuple(tuple(int(p) for p in lo_hi) for lo_hi in padding)


def extract_patches(x, window, stride, padding: Padding = "VALID", pad_value: float = 0.0):
    """The windows of one (C, H, W) image, as an array (C, kh, kw, H_out, W_out).

    ``patches[c, i, j, y, x] = x_padded[c, y * sh + i, x * sw + j]``.

    Args:
      x: one example of shape (C, H, W).
      window: (kh, kw) or an int.
      stride: (sh, sw) or an int.
      padding: ``'VALID'``, ``'SAME'``, an int, or ((top, bottom), (left, right)).
      pad_value: the value of padded entries (0 for convolution, -inf for max pooling).

    Returns:
      The patches array; each of the kh*kw entries is one strided slice of the padded image.
    """
    (kh, kw), (sh, sw) = pair(window, "window"), pair(stride, "stride")
    if sh == 0 or sw == 0:
        raise ValueError(f"stride must be positive, got {(sh, sw)}.")
    channels, height, width = x.shape
    (top, bottom), (left, right) = padding_pairs(padding, (height, width), (kh, kw), (sh, sw))
    xp = lax.pad(x, jnp.asarray(pad_value, x.dtype), ((0, 0, 0), (top, bottom, 0), (left, right, 0)))
    h_out = (height + top + bottom - kh) // sh + 1
    w_out = (width + left + right - kw) // sw + 1
    if h_out <= 0 or w_out <= 0:
        raise ValueError(f"a {kh}x{kw} window does not fit in a {height}x{width} image with padding {padding!r}.")
    windows = []
    for i in range(kh):
        for j in range(kw):
            limit = (channels, i + sh * (h_out - 1) + 1, j + sw * (w_out - 1) + 1)
            windows.append(lax.slice(xp, (0, i, j), limit, (1, sh, sw))[:, None])
    # concatenate, not jnp.stack: JAX >= 0.10 emits a `stack` primitive, concatenate keeps the graph in core rules
    patches = jnp.concatenate(windows, axis=1)  # (C, kh*kw, H_out, W_out)
    return jnp.reshape(patches, (channels, kh, kw, h_out, w_out))
