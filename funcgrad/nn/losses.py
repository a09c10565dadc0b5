"""Costs C(y, ȳ), the per-sample loss L(x, y, w) = C(y, G(x, w)) and the average loss L(S, w).

Costs take the target first, as in the lecture: ``C(y, ȳ)``. They score ONE
example; ``average_loss`` maps them over a set with ``jax.vmap``.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from funcgrad.nn.layer import Layer

Model = Layer | Callable  # a Layer, or its apply function G(w, x)
Cost = Callable[[jax.Array, jax.Array], jax.Array]


def squared_error(y, y_hat):
    """C(y, ȳ) = ‖y − ȳ‖², summed over the output's entries."""
    return jnp.sum((y - y_hat) ** 2)


def softmax_cross_entropy_int(label, logits):
    """−log softmax(logits)[label] for an integer class ``label`` (logits of shape (..., classes))."""
    one_hot = jax.nn.one_hot(label, logits.shape[-1], dtype=logits.dtype)  # a mask: no gather needed
    return softmax_cross_entropy_onehot(one_hot, logits)


def softmax_cross_entropy_onehot(target, logits):
    """−Σ_c target_c · log softmax(logits)_c for a one-hot (or probability) ``target`` like ``logits``."""
    return -jnp.sum(target * jax.nn.log_softmax(logits, axis=-1))


def softmax_cross_entropy(y, logits):
    """Cross-entropy of softmax(logits) against an integer class or a one-hot vector.

    Args:
      y: an integer class index (shape ``logits.shape[:-1]``), or a float one-hot /
        probability vector of ``logits``' shape.
      logits: unnormalised scores ȳ, shape (..., classes).

    Returns:
      A scalar, summed over leading axes.
    """
    if jnp.issubdtype(jnp.result_type(y), jnp.integer):
        return softmax_cross_entropy_int(y, logits)
    if jnp.shape(y) != jnp.shape(logits):
        raise ValueError(
            f"softmax_cross_entropy: a float target must be one-hot with the logits' shape {jnp.shape(logits)}, "
            f"got {jnp.shape(y)}.\n  fix: pass integer class labels, or jax.nn.one_hot(y, {jnp.shape(logits)[-1]})."
        )
    return softmax_cross_entropy_onehot(y, logits)


def _apply_of(model: Model) -> Callable:
    return model.apply if isinstance(model, Layer) else model


def per_sample_loss(model: Model, cost: Cost) -> Callable:
    """L(w, x, y) = C(y, G(w, x)): the loss of one example.

    Args:
      model: a ``Layer`` or its ``apply`` function G(w, x).
      cost: C(y, ȳ), e.g. ``squared_error`` or ``softmax_cross_entropy``.

    Returns:
      ``loss(w, x, y) -> scalar``; parameters come first, so ``funcgrad.grad(loss)`` is ∂L/∂w.
    """
    apply = _apply_of(model)

    def loss(w, x, y):
        return cost(y, apply(w, x))

    return loss


def average_loss(model: Model, cost: Cost) -> Callable:
    """L(S, w) = (1/P) Σ_p L(x[p], y[p], w): the mean per-sample loss over a set (``jax.vmap``).

    Args:
      model: a ``Layer`` or its ``apply`` function G(w, x).
      cost: C(y, ȳ).

    Returns:
      ``loss(w, xs, ys) -> scalar`` for xs, ys with a leading axis of P examples.
    """
    one = per_sample_loss(model, cost)

    def loss(w, xs, ys):
        return jnp.mean(jax.vmap(one, in_axes=(None, 0, 0))(w, xs, ys))

    return loss


def accuracy(model: Model, w, xs, ys) -> jax.Array:
    """The fraction of examples whose largest score is the integer label."""
    logits = jax.vmap(_apply_of(model), in_axes=(None, 0))(w, xs)
    return jnp.mean(jnp.argmax(logits, axis=-1) == ys)
