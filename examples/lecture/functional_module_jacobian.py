"""Backprop through a functional module: dc/dz_f = dc/dz_g . dz_g/dz_f, shapes [1 x d_f] = [1 x d_g] [d_g x d_f].

A module z_g = g(z_f) maps d_f = 4 numbers to d_g = 3. Its Jacobian (dz_g/dz_f)_ij =
d(z_g)_i / d(z_f)_j is a d_g x d_f matrix; the gradient of the scalar cost with
respect to a vector is a row vector the size of that vector.
"""

import jax.numpy as jnp
import numpy as np
from _common import out_dir, save

import funcgrad

W = jnp.array([[1.0, -0.5, 0.2, 0.0], [0.3, 0.8, -1.0, 0.5], [0.0, 0.1, 0.4, -0.7]])


def g(z_f):
    return jnp.tanh(W @ z_f)


def cost(z_f):
    z_f = funcgrad.tag(z_f, "z_f")
    z_g = funcgrad.tag(g(z_f), "z_g")
    return jnp.sum((z_g - 0.5) ** 2)


def main(argv=None):
    out = out_dir(argv, __doc__)
    z_f = jnp.array([0.5, -1.0, 0.3, 2.0])
    jac = funcgrad.jacrev(g)(z_f)  # [d_g x d_f]
    sens = funcgrad.sensitivities(cost)(z_f)
    dc_dzg, dc_dzf = sens["z_g"][None, :], sens["z_f"][None, :]  # row vectors
    assert dc_dzg.shape == (1, 3) and jac.shape == (3, 4) and dc_dzf.shape == (1, 4)
    np.testing.assert_allclose(dc_dzf, dc_dzg @ jac, rtol=1e-5)
    print(f"[1 x {dc_dzf.shape[1]}] = [1 x {dc_dzg.shape[1]}] x [{jac.shape[0]} x {jac.shape[1]}]")
    print("dc/dz_f =", np.asarray(dc_dzf[0]))
    save(
        funcgrad.draw(cost, backward=True, title="a functional module and its Jacobian")(z_f),
        out,
        "functional_module.svg",
    )
    return {"jacobian": jac, "dc_dzf": dc_dzf}


if __name__ == "__main__":
    main()
