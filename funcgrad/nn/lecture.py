"""The lecture's two first parametrised models: a weighted sum and a nearest-neighbour classifier.

* Linear model:       ȳ = Σ_i w_i x_i, with cost C(y, ȳ) = ‖y − ȳ‖² (``losses.squared_error``).
* Nearest neighbour:  ȳ = argmin_k ‖x − w_k‖², the index of the row of W closest to x.

The argmin is piecewise constant in W: a small change of W does not change the
chosen index, and where it does the index jumps. Its derivative is zero almost
everywhere and undefined at the jumps, so gradient descent cannot learn through
the index. ``NearestNeighbour`` therefore returns both the index and the squared
distance to the chosen prototype; the distance *is* differentiable:
∂/∂w_k ‖x − w_k‖² = 2 (w_k − x) for the chosen k and 0 for every other row.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from funcgrad.nn.layer import Layer, check_in_shape, shape_of


def LinearModel() -> Layer:
    """The weighted sum ȳ = Σ_i w_i x_i (no bias), with parameters ``{'w': (d,)}``."""

    def init(in_shape, *, key):
        shape = shape_of(in_shape)
        check_in_shape("LinearModel", shape, 1, "d features")
        return {"w": jax.random.normal(key, shape, jnp.float32) / jnp.sqrt(shape[0])}

    def apply(params, x):
        return jnp.dot(params["w"], x)

    return Layer(init, apply, "linear_model")


class Nearest(NamedTuple):
    """The output of ``NearestNeighbour``: the chosen row and its squared distance to x."""

    index: jax.Array  # int32 scalar: argmin_k ‖x − w_k‖², gradient zero (piecewise constant)
    distance: jax.Array  # float scalar: ‖x − w_index‖², gradient 2 (w_index − x) on that row only


def NearestNeighbour(num_prototypes: int) -> Layer:
    """ȳ = argmin_k ‖x − w_k‖² over the rows w_k of W.

    Args:
      num_prototypes: the number of rows K of W.

    Returns:
      A ``Layer`` with parameters ``{'W': (K, d)}`` whose ``apply`` returns a ``Nearest``
      ``(index, distance)``. ``distance`` weights the K squared distances by the one-hot
      vector of the index, so at a tie only the first tied row (the one argmin picks) gets
      a gradient.
    """

    def init(in_shape, *, key):
        shape = shape_of(in_shape)
        check_in_shape("NearestNeighbour", shape, 1, "d features")
        return {"W": jax.random.normal(key, (num_prototypes, shape[0]), jnp.float32)}

    def apply(params, x):
        w = params["W"]
        sq_dist = jnp.sum((x - w) ** 2, axis=-1)  # (K,)
        index = jnp.argmin(sq_dist)  # an integer: no gradient flows through it
        chosen = jax.nn.one_hot(index, w.shape[0], dtype=sq_dist.dtype)
        return Nearest(index, jnp.sum(chosen * sq_dist))

    return Layer(init, apply, "nearest_neighbour")
