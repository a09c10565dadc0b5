"""Backprop through a non-linear function: dC/ds = dC/dz * h'(s).

z = h(s) with h = tanh; everything else (here g(z) = sum(z^2) * 0.5 + sum(z)) is a
black box. funcgrad.sensitivities returns dC/ds and dC/dz for the tagged s and z;
the chain rule says they differ by the factor h'(s) = 1 - tanh(s)^2.
"""

import jax.numpy as jnp
import numpy as np
from _common import out_dir, save

import funcgrad


def cost(s):
    s = funcgrad.tag(s, "s")
    z = funcgrad.tag(jnp.tanh(s), "z")  # z = h(s)
    return 0.5 * jnp.sum(z**2) + jnp.sum(z)  # the black box g(z)


def main(argv=None):
    out = out_dir(argv, __doc__)
    s = jnp.array([-1.5, -0.2, 0.0, 0.7, 2.0])
    sens = funcgrad.sensitivities(cost)(s)
    h_prime = 1 - jnp.tanh(s) ** 2
    np.testing.assert_allclose(sens["s"], sens["z"] * h_prime, rtol=1e-6)
    np.testing.assert_allclose(sens["z"], jnp.tanh(s) + 1, rtol=1e-6)  # dg/dz
    print("dC/dz      =", np.asarray(sens["z"]))
    print("h'(s)      =", np.asarray(h_prime))
    print("dC/ds      =", np.asarray(sens["s"]), "= dC/dz * h'(s)")
    save(funcgrad.draw(cost, backward=True, title="backprop through z = h(s)")(s), out, "backprop_nonlinearity.svg")
    return sens


if __name__ == "__main__":
    main()
