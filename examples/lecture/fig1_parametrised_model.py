"""Fig. 1: a parametrised model G(x, w) and its cost C(y, G(x, w)), drawn as a block diagram.

The linear model  ybar = sum_i w_i x_i  with cost  C(y, ybar) = ||y - ybar||^2.
Observed inputs (x, y) are shaded, the parameter w is not; each function is a box
rounded on its output side; the cost is a red box.
"""

import jax.numpy as jnp
import numpy as np
from _common import out_dir, save

import funcgrad


def G(w, x):
    """The model: a weighted sum of the input's components."""
    return funcgrad.tag(jnp.dot(w, x), "ybar")


def per_sample_loss(w, x, y):
    """L(x, y, w) = C(y, G(x, w)) with the squared distance as cost."""
    return (y - G(w, x)) ** 2


def main(argv=None):
    out = out_dir(argv, __doc__)
    w = jnp.array([0.5, -1.0, 2.0])
    x = jnp.array([1.0, 2.0, 3.0])
    y = jnp.array(4.0)
    loss = per_sample_loss(w, x, y)
    g = funcgrad.grad(per_sample_loss)(w, x, y)
    # dC/dw = -2 (y - ybar) x
    np.testing.assert_allclose(g, -2 * (y - w @ x) * x, rtol=1e-6)
    graph = funcgrad.trace(per_sample_loss)(w, x, y)
    assert [e.primitive for e in graph.eqns if e.primitive == "dot_general"] == ["dot_general"]
    print(graph.format(source=True))
    print(f"L = {float(loss):.3f}, dL/dw = {np.asarray(g)}")
    save(
        funcgrad.draw(per_sample_loss, title="Fig. 1: parametrised model and cost")(w, x, y),
        out,
        "fig1_parametrised_model.svg",
    )
    return {"loss": float(loss), "grad": np.asarray(g)}


if __name__ == "__main__":
    main()
