"""Parameter-free blocks: elementwise nonlinearities z = h(s), and reshapes."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from funcgrad.nn.layer import Layer, stateless


def Relu() -> Layer:
    """z = max(s, 0), elementwise (jax.nn.relu: the gradient at s = 0 is 0, as in JAX)."""
    return stateless(jax.nn.relu, "relu")


def Tanh() -> Layer:
    """z = tanh(s), elementwise; h'(s) = 1 - tanh(s)^2."""
    return stateless(jnp.tanh, "tanh")


def Sigmoid() -> Layer:
    """z = 1 / (1 + exp(-s)), elementwise."""
    return stateless(jax.nn.sigmoid, "sigmoid")


def Flatten() -> Layer:
    """Flatten one example to a vector, e.g. (C, H, W) -> (C*H*W,)."""
    return stateless(jnp.ravel, "flatten")
