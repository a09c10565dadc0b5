"""Backprop through a multi-stage graph: two Jacobians per module.

For z[k+1] = f_k(w_k, z[k]):
    dc/dz[k] = dc/dz[k+1] . dz[k+1]/dz[k]      (state Jacobian)
    dc/dw_k  = dc/dz[k+1] . dz[k+1]/dw_k       (weight Jacobian)
funcgrad.module_jacobians computes both for every module with funcgrad.jacrev;
funcgrad.backprop_jacobians multiplies the row vector down; the result is
backprop's gradient.
"""

import jax
import jax.numpy as jnp
import numpy as np
from _common import out_dir, save

import funcgrad


def linear(p, z):
    return p["W"] @ z + p["b"]


def tanh(_, z):
    return jnp.tanh(z)


def main(argv=None):
    out = out_dir(argv, __doc__)
    rng = np.random.default_rng(0)
    dims = [4, 5, 3]
    params = [
        {"W": jnp.asarray(rng.normal(size=(b, a)), jnp.float32), "b": jnp.zeros(b, jnp.float32)}
        for a, b in zip(dims, dims[1:])
    ]
    stages = [(linear, params[0]), (tanh, None), (linear, params[1])]
    x = jnp.asarray(rng.normal(size=4), jnp.float32)
    y = jnp.ones(3, jnp.float32)

    def cost(params, x):
        z = jnp.tanh(linear(params[0], x))
        return jnp.sum((linear(params[1], z) - y) ** 2)

    jacs = funcgrad.module_jacobians(stages)(x)
    for k, j in enumerate(jacs):
        w_shapes = None if j.d_weights is None else {n: v.shape for n, v in j.d_weights.items()}
        print(f"module {k}: dz[{k + 1}]/dz[{k}] {j.d_state.shape}, dz[{k + 1}]/dw_{k} {w_shapes}")
    dc_dz, dc_dw = funcgrad.backprop_jacobians(jacs, 2 * (jacs[-1].z_out - y))
    g_params, g_x = funcgrad.grad(cost, argnums=(0, 1))(params, x)
    np.testing.assert_allclose(dc_dz[0], g_x, rtol=1e-4, atol=1e-6)
    for k, layer in ((0, 0), (2, 1)):
        for name in ("W", "b"):
            np.testing.assert_allclose(dc_dw[k][name], g_params[layer][name], rtol=1e-4, atol=1e-6)
    print("the products of Jacobians equal backprop's gradients")
    save(
        funcgrad.draw(cost, backward=True, argnums=(0, 1), collapse=True, title="multi-stage graph")(params, x),
        out,
        "multistage.svg",
    )
    return {"dc_dz": dc_dz, "dc_dw": dc_dw, "jax_check": jax.tree.map(np.shape, g_params)}


if __name__ == "__main__":
    main()
