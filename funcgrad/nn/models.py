"""``mynet``, the lecture's network: flatten, then three linear blocks with relu between them."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from funcgrad.nn.layer import Layer, shape_of
from funcgrad.nn.linear import Linear


def mynet(d1: int = 60, d2: int = 40, d3: int = 10) -> Layer:
    """The lecture's ``mynet(d0, 60, 40, 10)`` as a pure function ``G(w, x)``.

    z0 = flatten(x); s1 = m0(z0); z1 = relu(s1); s2 = m1(z1); z2 = relu(s2); s3 = m2(z2)

    Args:
      d1, d2: the widths of the two hidden layers.
      d3: the number of outputs (classes).

    Returns:
      A ``Layer`` whose ``init`` takes ``d0`` from the input shape (e.g. 3x10x20 -> 600,
      1x8x8 -> 64) and returns ``{'m0': {'W': (d1, d0), 'b': (d1,)}, 'm1': ..., 'm2': ...}``.
    """
    m0, m1, m2 = Linear(d1), Linear(d2), Linear(d3)

    def init(in_shape, *, key):
        d0 = math.prod(shape_of(in_shape))
        k0, k1, k2 = jax.random.split(key, 3)
        return {"m0": m0.init((d0,), key=k0), "m1": m1.init((d1,), key=k1), "m2": m2.init((d2,), key=k2)}

    def apply(w, x):
        # each block in a named scope: the lecture's block diagram in funcgrad.explore and draw(collapse=...)
        with jax.named_scope("flatten"):
            z0 = jnp.ravel(x)  # x.view(-1)
        with jax.named_scope("m0"):
            s1 = m0.apply(w["m0"], z0)
        z1 = jax.nn.relu(s1)
        with jax.named_scope("m1"):
            s2 = m1.apply(w["m1"], z1)
        z2 = jax.nn.relu(s2)
        with jax.named_scope("m2"):
            s3 = m2.apply(w["m2"], z2)
        return s3

    return Layer(init, apply, "mynet")
