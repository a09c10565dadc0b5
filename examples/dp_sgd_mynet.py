"""DP-SGD on the lecture's mynet and the 8x8 digits: per-example clipping without per-example gradients.

    python examples/dp_sgd_mynet.py [--epochs 30] [--clip 1.0] [--noise 1.0] [--seed 0]

Each step of DP-SGD (Abadi et al., 2016) clips every example's gradient to norm ``clip``, sums them,
adds Gaussian noise of standard deviation ``noise * clip`` and averages: the noise hides any one
example because no example moves the sum by more than ``clip``. ``funcgrad.clipped_grad`` gives the
clipped sum from one sweep of the batch (the dense layers' clipped sums by book-keeping, no
per-example gradient formed); optax applies the update. The privacy budget (epsilon) this run spends
follows from the noise multiplier, the sampling rate and the number of steps with an accountant such
as Google's ``dp_accounting``; this script does not compute it.
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np
import optax
from train_mynet import load_digits

import funcgrad
from funcgrad import nn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--clip", type=float, default=1.0, help="per-example gradient norm bound C")
    parser.add_argument("--noise", type=float, default=1.0, help="noise multiplier sigma (std = sigma * C)")
    parser.add_argument("--lr", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    x_tr, y_tr, x_te, y_te = load_digits(args.seed)
    model = nn.mynet(60, 40, 10)
    params = model.init(x_tr[0].shape, key=jax.random.key(args.seed))
    loss = nn.average_loss(model, nn.softmax_cross_entropy)
    opt = optax.sgd(args.lr, momentum=0.9)
    state = opt.init(params)

    @jax.jit
    def step(params, state, x, y, key):
        clipped, norms = funcgrad.clipped_grad(loss, args.clip, return_norms=True)(params, x, y)
        leaves, tree = jax.tree.flatten(clipped)
        keys = jax.random.split(key, len(leaves))
        noisy = [(g + args.noise * args.clip * jax.random.normal(k, g.shape, g.dtype)) / x.shape[0]
                 for g, k in zip(leaves, keys)]  # fmt: skip
        updates, state = opt.update(jax.tree.unflatten(tree, noisy), state, params)
        return optax.apply_updates(params, updates), state, jnp.mean(norms.total > args.clip)

    rng = np.random.default_rng(args.seed)
    key = jax.random.key(args.seed + 1)
    n = x_tr.shape[0]
    for epoch in range(1, args.epochs + 1):
        clipped_share = []
        for idx in np.array_split(rng.permutation(n), n // args.batch):
            key, sub = jax.random.split(key)
            params, state, share = step(params, state, x_tr[idx], y_tr[idx], sub)
            clipped_share.append(float(share))
        if epoch % 5 == 0 or epoch == args.epochs:
            acc = float(nn.accuracy(model, params, x_te, y_te))
            print(f"epoch {epoch:3d}: test accuracy {acc:.3f}, examples clipped {np.mean(clipped_share):.0%}")
    print(f"DP-SGD, clip {args.clip}, noise multiplier {args.noise}: test accuracy {acc:.3f}")


if __name__ == "__main__":
    main()
