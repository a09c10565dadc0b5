"""``LayerNorm``: normalise each example's features to zero mean and unit variance, then scale and shift."""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax

from funcgrad.nn.layer import Layer, shape_of


def LayerNorm(*, eps: float = 1e-5) -> Layer:
    """y = (x - mean(x)) / sqrt(var(x) + eps) · scale + bias, over the last axis.

    Args:
      eps: added to the variance so the rsqrt stays finite for constant inputs.

    Returns:
      A ``Layer`` with parameters ``{'scale': (d,), 'bias': (d,)}`` (ones and zeros), where ``d``
      is the last axis of one example; leading axes (e.g. a sequence) are normalised independently.
    """

    def init(in_shape, *, key=None):
        d = shape_of(in_shape)[-1]
        return {"scale": jnp.ones((d,), jnp.float32), "bias": jnp.zeros((d,), jnp.float32)}

    def apply(params, x):
        mean = jnp.mean(x, axis=-1, keepdims=True)
        centred = x - mean
        var = jnp.mean(centred * centred, axis=-1, keepdims=True)
        return centred * lax.rsqrt(var + eps) * params["scale"] + params["bias"]

    return Layer(init, apply, "layernorm")
