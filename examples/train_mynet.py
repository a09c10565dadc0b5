"""Train the lecture's mynet on scikit-learn's 8x8 digits, with gradients from funcgrad.

    python examples/train_mynet.py [--out out/] [--epochs 20] [--seed 0]

1. Loads the 1797 bundled digits (no download), as 1x8x8 images; mynet's d0 = 64 comes from that shape.
2. Step 0: checks funcgrad's gradient of the average loss against jax.grad's.
3. Compares the lecture's three update rules (full-batch GD, SGD, minibatch SGD) for the same number
   of epochs and saves their loss curves as a PNG.
4. Trains the final model with optax's SGD with momentum on minibatches and prints the held-out accuracy last.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

import funcgrad
from funcgrad import nn

RULES = {  # rule -> (step size eta, label); each tuned for 20 epochs on this data
    "gd": (0.5, "full-batch GD (1 step / epoch)"),
    "sgd": (0.01, "SGD, one sample (1437 steps / epoch)"),
    "minibatch": (0.1, "minibatch SGD, |B| = 32 (44 steps / epoch)"),
}


def load_digits(seed: int):
    """The digits as (N, 1, 8, 8) floats in [0, 1] and int labels, split 80/20 (stratified)."""
    from sklearn.datasets import load_digits as sk_load_digits
    from sklearn.model_selection import train_test_split

    digits = sk_load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None, :, :]  # (C, H, W) = (1, 8, 8) per example
    y = digits.target.astype(np.int32)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.2, random_state=seed, stratify=y)
    return jnp.asarray(x_tr), jnp.asarray(y_tr), jnp.asarray(x_te), jnp.asarray(y_te)


def gradient_check(loss, params, x, y) -> tuple[float, float]:
    """The largest |funcgrad - jax.grad| over every parameter at the initial parameters, and the largest |gradient|.

    Both run under jax.jit: compiled once, instead of op by op (funcgrad's backward pass is plain lax).
    """
    ours = jax.jit(funcgrad.grad(loss))(params, x, y)
    theirs = jax.jit(jax.grad(loss))(params, x, y)
    diffs = jax.tree_util.tree_map(lambda a, b: jnp.max(jnp.abs(a - b)), ours, theirs)
    scale = max(float(jnp.max(jnp.abs(g))) for g in jax.tree_util.tree_leaves(theirs))
    return float(max(jax.tree_util.tree_leaves(diffs))), scale


def moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """The mean of each run of ``window`` consecutive values (shorter at the start)."""
    sums = np.cumsum(np.concatenate([[0.0], values]))
    idx = np.arange(1, len(values) + 1)
    lo = np.maximum(idx - window, 0)
    return (sums[idx] - sums[lo]) / (idx - lo)


def plot(histories: dict, path: Path, num_train: int) -> None:
    """Left: the training-set loss after each epoch. Right: each update's batch loss (smoothed) per update."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for rule, history in histories.items():
        left.plot(np.arange(len(history.epoch_loss)), history.epoch_loss, marker=".", label=RULES[rule][1])
        steps = np.arange(1, len(history.step_loss) + 1)
        window = max(len(history.step_loss) // 200, 1)
        right.plot(steps, moving_average(history.step_loss, window), label=f"{rule} (mean of {window})")
    left.set(xlabel="epoch (passes over the training set)", ylabel="L(S, w) on the training set", yscale="log")
    right.set(xlabel="parameter updates", ylabel="loss of the update's batch", xscale="log", yscale="log")
    left.set_title(f"mynet on 8x8 digits (P = {num_train}), gradients by funcgrad", fontsize=10)
    right.set_title("the same runs, per update: SGD is noisy but cheap per step", fontsize=10)
    left.legend(fontsize=8)
    right.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="out", help="directory (or .png path) for the loss-curve plot")
    parser.add_argument("--epochs", type=int, default=20, help="epochs per update rule in the comparison")
    parser.add_argument("--final-epochs", type=int, default=40, help="epochs of momentum SGD for the final model")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    start = time.perf_counter()

    x_tr, y_tr, x_te, y_te = load_digits(args.seed)
    model = nn.mynet(60, 40, 10)
    params = model.init(x_tr[0].shape, key=jax.random.key(args.seed))
    loss = nn.average_loss(model, nn.softmax_cross_entropy)
    print(f"mynet on digits: {x_tr.shape[0]} train / {x_te.shape[0]} test examples of shape {tuple(x_tr.shape[1:])}")
    print(nn.describe(params))

    diff, scale = gradient_check(loss, params, x_tr, y_tr)
    print(f"step-0 gradient check: max |funcgrad - jax.grad| = {diff:.3g} (largest |gradient| entry {scale:.3g})")

    histories = {}
    for rule, (eta, label) in RULES.items():
        _, history = nn.fit(loss, params, (x_tr, y_tr), rule=rule, eta=eta, epochs=args.epochs, seed=args.seed)
        histories[rule] = history
        print(f"{label:<44} eta={eta:<5} loss {history.epoch_loss[0]:.3f} -> {history.epoch_loss[-1]:.3f}")
    out = Path(args.out)
    png = out if out.suffix == ".png" else out / "mynet_loss_curves.png"
    plot(histories, png, int(x_tr.shape[0]))
    print(f"saved loss curves to {png}")

    def metrics(w):
        return {"test_acc": nn.accuracy(model, w, x_te, y_te)}

    final, history = nn.fit(
        loss,
        params,
        (x_tr, y_tr),
        rule="minibatch",
        optimizer=optax.sgd(0.05, momentum=0.9),  # optax fed by funcgrad (adam(1e-3) reaches ~0.96-0.97 too)
        batch_size=32,
        epochs=args.final_epochs,
        seed=args.seed,
        metrics=metrics,
        progress="momentum",
    )
    print(f"minibatch SGD with momentum 0.9, {args.final_epochs} epochs: training loss {history.epoch_loss[-1]:.4f}")
    print(f"total time {time.perf_counter() - start:.1f}s on {jax.default_backend()} ({os.cpu_count()} CPUs)")
    print(f"test accuracy: {float(nn.accuracy(model, final, x_te, y_te)):.3f}")


if __name__ == "__main__":
    main()
