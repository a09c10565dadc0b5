"""Gradient descent, with every gradient computed by funcgrad.

The lecture's three update rules differ only in the set the loss is averaged over:

* full-batch GD:  w ← w − η ∂L(S, w)/∂w           (all P examples, one step per epoch)
* SGD:            w ← w − η ∂L(x[p], y[p], w)/∂w   (one example p, P steps per epoch)
* minibatch SGD:  w ← w − η ∂L(B, w)/∂w            (a batch B of examples, P/|B| steps per epoch)

η is a scalar or a positive-definite matrix acting on the flattened parameter
vector (a preconditioned step). ``fit`` also accepts any optax optimizer (sgd,
momentum, adam), fed with funcgrad's gradients. Each epoch is one jitted
``lax.scan`` over its batches; the shuffling is drawn from ``seed``, so runs are
deterministic.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from funcgrad.api import value_and_grad
from funcgrad.nn.progress import ProgressBar

RULES = ("gd", "sgd", "minibatch")


def descend(params, grads, eta):
    """One descent step w ← w − η g.

    Args:
      params: the parameter pytree w.
      grads: ∂L/∂w, the same pytree.
      eta: a scalar step size, or a (P, P) positive-definite matrix applied to the flattened
        gradient (``jax.flatten_util.ravel_pytree``), P being the number of parameters.

    Returns:
      The updated pytree.
    """
    if jnp.ndim(eta) == 0:
        return jax.tree_util.tree_map(lambda w, g: w - eta * g, params, grads)
    flat_w, unravel = ravel_pytree(params)
    flat_g, _ = ravel_pytree(grads)
    if jnp.shape(eta) != (flat_w.size, flat_w.size):
        raise ValueError(
            f"descend: a matrix step size must be ({flat_w.size}, {flat_w.size}) for these {flat_w.size} parameters, "
            f"got {jnp.shape(eta)}.\n  fix: build eta on ravel_pytree(params)[0], or pass a scalar."
        )
    return unravel(flat_w - eta @ flat_g)


def check_step_size(eta) -> None:
    """Raise unless ``eta`` is a positive scalar or a symmetric positive-definite matrix (concrete values)."""
    eta = np.asarray(eta, np.float64)
    if eta.ndim == 0:
        if not eta > 0:
            raise ValueError(f"the step size must be positive, got {float(eta)}.")
        return
    if eta.ndim != 2 or eta.shape[0] != eta.shape[1]:
        raise ValueError(f"a matrix step size must be square, got shape {eta.shape}.")
    if not np.allclose(eta, eta.T, rtol=1e-6, atol=1e-8):
        raise ValueError("a matrix step size must be symmetric (positive definite): the step −η g might go uphill.")
    if np.linalg.eigvalsh(eta).min() <= 0:
        raise ValueError("a matrix step size must be positive definite (all eigenvalues > 0), so −η g goes downhill.")


def gradient_step(loss: Callable, eta) -> Callable:
    """A jitted ``step(w, *batch) -> (w', L)``: one step w ← w − η ∂L(w, *batch)/∂w.

    Args:
      loss: ``loss(w, *batch) -> scalar`` (a per-sample or an average loss).
      eta: a positive scalar or a positive-definite (P, P) matrix.

    Returns:
      The step function; ``L`` is the loss at the old ``w``.
    """
    check_step_size(eta)
    eta = jnp.asarray(eta)

    @jax.jit
    def step(w, *batch):
        value, g = value_and_grad(loss)(w, *batch)
        return descend(w, g, eta), value

    return step


def optimizer_step(loss: Callable, optimizer: optax.GradientTransformation) -> Callable:
    """A jitted ``step(w, opt_state, *batch) -> (w', opt_state', L)`` for an optax optimizer.

    Args:
      loss: ``loss(w, *batch) -> scalar``.
      optimizer: e.g. ``optax.sgd(0.1)``, ``optax.sgd(0.1, momentum=0.9)``, ``optax.adam(1e-3)``;
        initialise its state with ``optimizer.init(w)``.

    Returns:
      The step function.
    """

    @jax.jit
    def step(w, opt_state, *batch):
        value, g = value_and_grad(loss)(w, *batch)
        updates, opt_state = optimizer.update(g, opt_state, w)
        return optax.apply_updates(w, updates), opt_state, value

    return step


def batch_size_of(rule: str, num_examples: int, batch_size: int) -> int:
    """The batch size of each update rule: P for ``gd``, 1 for ``sgd``, ``batch_size`` for ``minibatch``."""
    if rule not in RULES:
        raise ValueError(f"unknown rule {rule!r}; choose one of {RULES}.")
    if rule == "gd":
        return num_examples
    if rule == "sgd":
        return 1
    if not 1 <= batch_size <= num_examples:
        raise ValueError(f"batch_size must be between 1 and the {num_examples} examples, got {batch_size}.")
    return batch_size


def epoch_batches(key, num_examples: int, batch_size: int) -> jax.Array:
    """A shuffled split of range(P) into (P // batch_size, batch_size) indices (the remainder waits for later epochs)."""
    order = jax.random.permutation(key, num_examples)
    n = num_examples // batch_size
    return jnp.reshape(order[: n * batch_size], (n, batch_size))


@functools.partial(jax.jit, static_argnames=("loss", "optimizer", "size"))
def _run_epoch(w, state, key, data, eta, *, loss, optimizer, size):
    """One epoch as one ``lax.scan`` over shuffled batches; compiled once per (loss, optimizer, batch size, shapes)."""

    def body(carry, idx):
        w, state = carry
        value, g = value_and_grad(loss)(w, *(d[idx] for d in data))
        if optimizer is None:
            w = descend(w, g, eta)
        else:
            updates, state = optimizer.update(g, state, w)
            w = optax.apply_updates(w, updates)
        return (w, state), value

    batches = epoch_batches(key, data[0].shape[0], size)
    (w, state), values = jax.lax.scan(body, (w, state), batches)
    return w, state, values


@functools.lru_cache(maxsize=64)
def _jitted_loss(loss: Callable) -> Callable:
    return jax.jit(loss)


class History(NamedTuple):
    """What ``fit`` records.

    Attributes:
      step_loss: the loss of each step's batch, before the step (one entry per step).
      epoch_loss: the loss on the whole training set at the start and after each epoch.
      metrics: ``metrics(w)`` after each epoch (a list of dicts), if given.
    """

    step_loss: np.ndarray
    epoch_loss: np.ndarray
    metrics: list


def fit(
    loss: Callable,
    params: Any,
    data: Sequence[jax.Array],
    *,
    rule: str = "minibatch",
    epochs: int = 10,
    eta=0.1,
    optimizer: optax.GradientTransformation | None = None,
    batch_size: int = 32,
    seed: int = 0,
    metrics: Callable[[Any], dict] | None = None,
    progress: bool | str = False,
) -> tuple[Any, History]:
    """Train ``params`` by one of the lecture's update rules; gradients come from ``funcgrad.value_and_grad``.

    Args:
      loss: the average loss ``loss(w, *batch) -> scalar``, e.g. ``nn.average_loss(model, cost)``.
      params: the initial parameter pytree.
      data: arrays sharing a leading axis of P examples, e.g. ``(xs, ys)``.
      rule: ``"gd"`` (full batch), ``"sgd"`` (one example per step) or ``"minibatch"``.
      epochs: passes over the data.
      eta: the step size (scalar or positive-definite matrix), used when ``optimizer`` is None.
      optimizer: an optax optimizer to use instead of w ← w − η g.
      batch_size: examples per step for ``"minibatch"``.
      seed: seeds the shuffling; the same seed gives the same run.
      metrics: ``metrics(w) -> {name: number}`` evaluated after each epoch (and shown by the bar).
      progress: show a progress bar (True, or a string used as its label).

    Returns:
      ``(params, History)``.
    """
    data = tuple(jnp.asarray(d) for d in data)
    num_examples = int(np.shape(data[0])[0])
    if any(int(np.shape(d)[0]) != num_examples for d in data):
        raise ValueError(f"fit: every data array needs the same leading axis, got {[np.shape(d) for d in data]}.")
    size = batch_size_of(rule, num_examples, batch_size)
    if optimizer is None:
        check_step_size(eta)
        eta, state = jnp.asarray(eta), ()
    else:
        eta, state = jnp.zeros(()), optimizer.init(params)

    full_loss = _jitted_loss(loss)
    bar = None
    if progress:
        bar = ProgressBar(epochs, desc=progress if isinstance(progress, str) else rule)
    key = jax.random.key(seed)
    step_losses, epoch_losses, history = [], [float(full_loss(params, *data))], []
    for epoch in range(epochs):
        epoch_key = jax.random.fold_in(key, epoch)
        params, state, values = _run_epoch(
            params, state, epoch_key, data, eta, loss=loss, optimizer=optimizer, size=size
        )
        step_losses.append(np.asarray(values))
        epoch_losses.append(float(full_loss(params, *data)))
        shown = {"loss": epoch_losses[-1]}
        if metrics is not None:
            history.append({k: float(v) for k, v in metrics(params).items()})
            shown.update(history[-1])
        if bar is not None:
            bar.update(1, **shown)
    steps = np.concatenate(step_losses) if step_losses else np.zeros((0,), np.float32)
    return params, History(steps, np.asarray(epoch_losses), history)
