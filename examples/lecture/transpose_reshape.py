"""Reshaping a transposed array, and the gradient flowing back through it.

In PyTorch, x.t() is non-contiguous (same storage, swapped strides), so .view(-1)
fails and .reshape(-1) copies. JAX arrays have no strides to expose: jnp.reshape of
a transpose always reads the elements in the transposed (row-major) order, like
PyTorch's reshape. Backprop runs the two steps in reverse: reshape's cotangent is
reshaped back to (3, 2), transpose's is transposed back to (2, 3).
"""

import jax.numpy as jnp
import numpy as np
from _common import out_dir, save

import funcgrad


def weighted(x, c):
    y = funcgrad.tag(x.T, "y")  # (3, 2); in PyTorch y.is_contiguous() is False
    flat = funcgrad.tag(jnp.reshape(y, (-1,)), "flat")  # y.view(-1) would fail; reshape copies
    return jnp.dot(c, flat)


def main(argv=None):
    out = out_dir(argv, __doc__)
    x = jnp.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(jnp.reshape(x.T, (-1,)), [0, 3, 1, 4, 2, 5])
    c = jnp.array([10.0, 20.0, 30.0, 40.0, 50.0, 60.0])
    g = funcgrad.grad(weighted)(x, c)
    # flat[k] = x.T.reshape(-1)[k], so dC/dx = c.reshape(3, 2).T
    np.testing.assert_array_equal(g, c.reshape(3, 2).T)
    sens = funcgrad.sensitivities(weighted)(x, c)
    np.testing.assert_array_equal(sens["flat"], c)
    np.testing.assert_array_equal(sens["y"], c.reshape(3, 2))
    graph = funcgrad.backward_graph(weighted)(x, c)
    prims = [e.primitive for e in graph.eqns]
    assert "transpose" in prims and prims.count("reshape") >= 2, prims
    print(graph.format(scopes=True))
    print("dC/dx =\n", np.asarray(g))
    save(
        funcgrad.draw(weighted, backward=True, title="reshape of a transpose, and back")(x, c),
        out,
        "transpose_reshape.svg",
    )
    return {"grad": g}


if __name__ == "__main__":
    main()
