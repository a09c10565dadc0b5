"""Parameter initializers: pure functions of a PRNG key and a shape."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def fan_in_uniform(key: jax.Array, shape: tuple[int, ...], fan_in: int, dtype=jnp.float32) -> jax.Array:
    """Draw from U(-1/sqrt(fan_in), 1/sqrt(fan_in)), PyTorch's default for Linear and Conv2d.

    Args:
      key: a PRNG key.
      shape: the shape of the array.
      fan_in: the number of inputs each output unit sums over.
      dtype: the floating-point dtype.

    Returns:
      An array of ``shape``: the scale keeps each weighted sum s = Σ_j w_j z_j of order 1.
    """
    bound = 1.0 / jnp.sqrt(jnp.asarray(max(fan_in, 1), dtype))
    return jax.random.uniform(key, shape, dtype, -bound, bound)
