"""Fig. 2: the average loss L(S, w) = 1/P sum_p L(x[p], y[p], w) over a set of samples.

The per-sample loss is written for one sample and batched with jax.vmap, as the
lecture's figure repeats the same model for every sample. The gradient of the
average is the average of the per-sample gradients.
"""

import jax
import jax.numpy as jnp
import numpy as np
from _common import out_dir, save

import funcgrad


def per_sample_loss(w, x, y):
    return (y - jnp.dot(w, x)) ** 2


def average_loss(w, xs, ys):
    return jnp.mean(jax.vmap(per_sample_loss, in_axes=(None, 0, 0))(w, xs, ys))


def main(argv=None):
    out = out_dir(argv, __doc__)
    rng = np.random.default_rng(0)
    xs = jnp.asarray(rng.normal(size=(5, 3)), jnp.float32)
    ys = jnp.asarray(rng.normal(size=(5,)), jnp.float32)
    w = jnp.zeros(3, jnp.float32)
    g_avg = funcgrad.grad(average_loss)(w, xs, ys)
    g_each = jax.vmap(funcgrad.grad(per_sample_loss), in_axes=(None, 0, 0))(w, xs, ys)
    np.testing.assert_allclose(g_avg, g_each.mean(axis=0), rtol=1e-5, atol=1e-6)
    print(f"dL(S,w)/dw = {np.asarray(g_avg)} = mean of {len(xs)} per-sample gradients")
    save(
        funcgrad.draw(average_loss, title="Fig. 2: average loss over P samples")(w, xs, ys),
        out,
        "fig2_average_loss.svg",
    )
    return {"grad": np.asarray(g_avg)}


if __name__ == "__main__":
    main()
