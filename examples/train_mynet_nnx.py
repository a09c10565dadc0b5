"""The main demo's training loop for a Flax NNX mynet: digits, optax's momentum SGD, gradients from funcgrad.

    python examples/train_mynet_nnx.py [--epochs 40] [--seed 0]

The code is NNX's functional API (``nnx.split`` the module into its graph and its parameter state,
``nnx.merge`` them inside the loss, differentiate the state); the only line that differs from the
pure-JAX script is the import of the gradient:

    from funcgrad import value_and_grad   # JAX: from jax import value_and_grad

tests/test_examples_third_party.py trains it with both and compares the losses step by step.
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from tqdm.auto import tqdm
from train_mynet import load_digits

from funcgrad import value_and_grad  # JAX: from jax import value_and_grad


class MyNet(nnx.Module):
    """The lecture's mynet(d0, 60, 40, 10) on a batch: flatten each example, then Linear-ReLU-Linear-ReLU-Linear."""

    def __init__(self, d0: int, d1: int, d2: int, d3: int, *, rngs: nnx.Rngs):
        self.m0 = nnx.Linear(d0, d1, rngs=rngs)
        self.m1 = nnx.Linear(d1, d2, rngs=rngs)
        self.m2 = nnx.Linear(d2, d3, rngs=rngs)

    def __call__(self, x):
        z0 = x.reshape(x.shape[0], -1)  # x.view(B, -1)
        return self.m2(nnx.relu(self.m1(nnx.relu(self.m0(z0)))))


def train(grad=value_and_grad, *, epochs: int = 40, seed: int = 0, batch_size: int = 32, progress: bool = True):
    """Minibatch SGD with momentum 0.9; returns (each step's batch loss, the test accuracy)."""
    x_tr, y_tr, x_te, y_te = load_digits(seed)
    graphdef, params = nnx.split(MyNet(x_tr[0].size, 60, 40, 10, rngs=nnx.Rngs(seed)))

    def loss(params, x, y):
        logits = nnx.merge(graphdef, params)(x)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    optimizer = optax.sgd(0.05, momentum=0.9)
    state = optimizer.init(params)

    @jax.jit
    def step(params, state, x, y):
        value, grads = grad(loss)(params, x, y)
        updates, state = optimizer.update(grads, state, params)
        return optax.apply_updates(params, updates), state, value

    rng, losses = np.random.default_rng(seed), []
    for _ in tqdm(range(epochs), desc="nnx mynet", unit="epoch", disable=not progress):
        order = rng.permutation(x_tr.shape[0])
        for start in range(0, len(order) - batch_size + 1, batch_size):
            batch = order[start : start + batch_size]
            params, state, value = step(params, state, x_tr[batch], y_tr[batch])
            losses.append(float(value))
    logits = nnx.merge(graphdef, params)(x_te)
    return np.array(losses), float(jnp.mean(jnp.argmax(logits, -1) == y_te))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    losses, acc = train(epochs=args.epochs, seed=args.seed)
    print(
        f"Flax NNX mynet, {args.epochs} epochs of momentum SGD: last epoch's mean batch loss {losses[-44:].mean():.4f}"
    )
    print(f"test accuracy: {acc:.3f}")


if __name__ == "__main__":
    main()
