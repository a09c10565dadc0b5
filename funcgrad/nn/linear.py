"""Weighted sums: ``Linear`` (s = W z + b) and ``MLP`` (linear blocks interleaved with a nonlinearity)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax.numpy as jnp

from funcgrad.nn.activations import Relu
from funcgrad.nn.init import fan_in_uniform
from funcgrad.nn.layer import Layer, Serial, shape_of


def affine(params, x):
    """s = W x + b for parameters ``{'W': (out, in), 'b': (out,)}`` (``b`` optional), over x's last axis."""
    s = jnp.einsum("...j,ij->...i", x, params["W"])
    return s + params["b"] if "b" in params else s


def Linear(out_features: int, *, bias: bool = True) -> Layer:
    """A linear block: each unit i computes the weighted sum s[i] = Σ_j W[i, j] z[j] + b[i].

    Args:
      out_features: the number of output units.
      bias: whether to add ``b``.

    Returns:
      A ``Layer`` with parameters ``{'W': (out, in), 'b': (out,)}``; ``in`` is the last axis of
      one example, and leading axes (e.g. a sequence) are mapped over.
    """

    def init(in_shape, *, key):
        in_features = shape_of(in_shape)[-1]
        # one draw for [W | b]: each jax.random call compiles its own PRNG kernel, so fewer calls init faster
        wb = fan_in_uniform(key, (out_features, in_features + 1), in_features)
        params = {"W": wb[:, :in_features]}
        if bias:
            params["b"] = wb[:, in_features]
        return params

    return Layer(init, affine, "linear")


def MLP(widths: Sequence[int], *, activation: Layer | Callable[[], Layer] = Relu) -> Layer:
    """Linear blocks of the given widths with ``activation`` between them (none after the last).

    Args:
      widths: the output width of each linear block, e.g. ``(60, 40, 10)``.
      activation: the nonlinear block placed between linear blocks (a ``Layer`` or a
        function returning one).

    Returns:
      A ``Layer`` with parameters ``{'linear0': {...}, 'linear1': {...}, ...}``.
    """
    layers = []
    for i, width in enumerate(widths):
        if i:
            act = activation if isinstance(activation, Layer) else activation()
            layers.append((f"{act.name}{i - 1}", act))
        layers.append((f"linear{i}", Linear(width)))
    return Serial(*layers)
