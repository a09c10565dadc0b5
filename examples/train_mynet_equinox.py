"""The main demo's training loop for an Equinox mynet: digits, optax's momentum SGD, gradients from funcgrad.

    python examples/train_mynet_equinox.py [--epochs 40] [--seed 0]

The code is the usual Equinox idiom (partition the model into its arrays and the rest, differentiate the
arrays); the only line that differs from the pure-JAX script is the import of the gradient:

    from funcgrad import value_and_grad   # JAX: from jax import value_and_grad

tests/test_examples_third_party.py trains it with both and compares the losses step by step.
"""

from __future__ import annotations

import argparse

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm
from train_mynet import load_digits

from funcgrad import value_and_grad  # JAX: from jax import value_and_grad


class MyNet(eqx.Module):
    """The lecture's mynet(d0, 60, 40, 10): flatten, then Linear-ReLU-Linear-ReLU-Linear."""

    layers: list

    def __init__(self, d0: int, d1: int, d2: int, d3: int, *, key):
        k0, k1, k2 = jax.random.split(key, 3)
        self.layers = [eqx.nn.Linear(d0, d1, key=k0), eqx.nn.Linear(d1, d2, key=k1), eqx.nn.Linear(d2, d3, key=k2)]

    def __call__(self, x):
        z = jnp.ravel(x)  # x.view(-1)
        for layer in self.layers[:-1]:
            z = jax.nn.relu(layer(z))
        return self.layers[-1](z)


def loss(params, static, x, y):
    """The average cross-entropy of a batch; ``params`` are the model's arrays, ``static`` the rest."""
    logits = jax.vmap(eqx.combine(params, static))(x)
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def accuracy(params, static, x, y) -> float:
    logits = jax.vmap(eqx.combine(params, static))(x)
    return float(jnp.mean(jnp.argmax(logits, -1) == y))


def train(grad=value_and_grad, *, epochs: int = 40, seed: int = 0, batch_size: int = 32, progress: bool = True):
    """Minibatch SGD with momentum 0.9; returns (each step's batch loss, the test accuracy)."""
    x_tr, y_tr, x_te, y_te = load_digits(seed)
    model = MyNet(x_tr[0].size, 60, 40, 10, key=jax.random.key(seed))
    params, static = eqx.partition(model, eqx.is_inexact_array)
    optimizer = optax.sgd(0.05, momentum=0.9)
    state = optimizer.init(params)

    @jax.jit
    def step(params, state, x, y):
        value, grads = grad(loss)(params, static, x, y)
        updates, state = optimizer.update(grads, state, params)
        return optax.apply_updates(params, updates), state, value

    rng, losses = np.random.default_rng(seed), []
    for _ in tqdm(range(epochs), desc="equinox mynet", unit="epoch", disable=not progress):
        order = rng.permutation(x_tr.shape[0])
        for start in range(0, len(order) - batch_size + 1, batch_size):
            batch = order[start : start + batch_size]
            params, state, value = step(params, state, x_tr[batch], y_tr[batch])
            losses.append(float(value))
    return np.array(losses), accuracy(params, static, x_te, y_te)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    losses, acc = train(epochs=args.epochs, seed=args.seed)
    print(
        f"Equinox mynet, {args.epochs} epochs of momentum SGD: last epoch's mean batch loss {losses[-44:].mean():.4f}"
    )
    print(f"test accuracy: {acc:.3f}")


if __name__ == "__main__":
    main()
