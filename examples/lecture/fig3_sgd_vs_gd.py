"""Fig. 3: stochastic gradient descent (one sample per step) against full-batch gradient descent.

A tiny linear regression y = w x + b with two parameters, so the trajectories can be
drawn on the loss's contour lines. Full-batch GD walks straight downhill; SGD's path
is noisy, each sample pulling in its own direction, yet it ends near the same minimum.
"""

import jax
import jax.numpy as jnp
import numpy as np
from _common import out_dir

import funcgrad


def per_sample_loss(theta, x, y):
    w, b = theta
    return (w * x + b - y) ** 2


def average_loss(theta, xs, ys):
    return jnp.mean((theta[0] * xs + theta[1] - ys) ** 2)


def main(argv=None):
    out = out_dir(argv, __doc__)
    rng = np.random.default_rng(0)
    xs = jnp.asarray(rng.uniform(-1, 1, size=32), jnp.float32)
    ys = jnp.asarray(1.5 * np.asarray(xs) - 0.5 + 0.1 * rng.normal(size=32), jnp.float32)
    start = jnp.array([-1.0, 1.0], jnp.float32)
    gd = [start]
    grad_avg = jax.jit(funcgrad.grad(average_loss))
    for _ in range(80):  # w <- w - eta dL(S, w)/dw
        gd.append(gd[-1] - 0.5 * grad_avg(gd[-1], xs, ys))

    sgd = [start]
    grad_one = jax.jit(funcgrad.grad(per_sample_loss))
    for _epoch in range(3):  # w <- w - eta dL(x[p], y[p], w)/dw, p in a shuffled order
        for p in rng.permutation(len(xs)):
            sgd.append(sgd[-1] - 0.1 * grad_one(sgd[-1], xs[p], ys[p]))

    gd, sgd = np.stack(gd), np.stack(sgd)
    A = np.stack([np.asarray(xs), np.ones(len(xs))], axis=1)
    best = np.linalg.lstsq(A, np.asarray(ys), rcond=None)[0]
    # the closed-form gradient of the average loss, 2/P A^T (A theta - y), checks funcgrad's
    np.testing.assert_allclose(
        grad_avg(start, xs, ys), 2 / len(xs) * A.T @ (A @ np.asarray(start) - np.asarray(ys)), rtol=1e-5
    )
    gd_err, sgd_err = np.linalg.norm(gd[-1] - best), np.linalg.norm(sgd[-1] - best)
    assert gd_err < 1e-2, gd_err
    assert sgd_err < 0.25, sgd_err
    length = lambda path: float(np.sum(np.linalg.norm(np.diff(path, axis=0), axis=1)))  # noqa: E731
    assert length(sgd) > length(gd), "SGD's path is the noisier, longer one"
    print(f"least squares {best}, GD ends at {gd[-1]} (error {gd_err:.1e}), SGD at {sgd[-1]} (error {sgd_err:.2f})")

    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 4.5), dpi=100)
    ax = fig.add_subplot()
    W, B = np.meshgrid(np.linspace(-1.5, 2.5, 120), np.linspace(-1.5, 1.5, 120))
    L = ((W[..., None] * np.asarray(xs) + B[..., None] - np.asarray(ys)) ** 2).mean(-1)
    ax.contour(W, B, L, levels=20, cmap="Greys", linewidths=0.6)
    ax.plot(sgd[:, 0], sgd[:, 1], ".-", color="#d9480f", lw=0.8, ms=3, label="SGD (one sample per step)")
    ax.plot(gd[:, 0], gd[:, 1], ".-", color="#3b5bdb", lw=1.2, ms=3, label="full-batch GD")
    ax.plot(*best, "k*", ms=10, label="minimum")
    ax.set_xlabel("w")
    ax.set_ylabel("b")
    ax.set_title("Fig. 3: SGD trajectory vs full-batch GD")
    ax.legend(loc="upper right", fontsize=8)
    path = out / "fig3_sgd_vs_gd.png"
    fig.savefig(path)
    print(f"wrote {path}")
    return {"gd": gd[-1], "sgd": sgd[-1], "best": best}


if __name__ == "__main__":
    main()
