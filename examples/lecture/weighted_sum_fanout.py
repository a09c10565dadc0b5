"""Backprop through a weighted sum: a variable z feeding s[i] = w[i] z gets dC/dz = sum_i w[i] dC/ds[i].

When z fans out, perturbing it by dz perturbs every s[i] by w[i] dz, and C by the
sum of those effects. funcgrad's reverse sweep adds the cotangents of the three
branches (the driver does it, once, never the rules).
"""

import jax.numpy as jnp
import numpy as np
from _common import out_dir, save

import funcgrad


def cost(w, z):
    z = funcgrad.tag(z, "z")
    s = [funcgrad.tag(w[i] * z, f"s{i}") for i in range(3)]
    return jnp.sin(s[0]) + s[1] ** 2 + jnp.exp(s[2])  # the rest of the network, a black box


def main(argv=None):
    out = out_dir(argv, __doc__)
    w = jnp.array([0.5, -1.0, 2.0])
    z = jnp.array(0.3)
    sens = funcgrad.sensitivities(cost)(w, z)
    fan_in = sum(w[i] * sens[f"s{i}"] for i in range(3))
    np.testing.assert_allclose(sens["z"], fan_in, rtol=1e-6)
    np.testing.assert_allclose(funcgrad.grad(cost, argnums=1)(w, z), fan_in, rtol=1e-6)
    print("dC/ds[i] =", [float(sens[f"s{i}"]) for i in range(3)])
    print(f"dC/dz = sum_i w[i] dC/ds[i] = {float(fan_in):.4f}")
    graph = funcgrad.backward_graph(cost, argnums=1)(w, z)
    sums = [e for e in graph.eqns if e.primitive in ("add", "add_any") and e.source.scope == "backward"]
    assert len(sums) == 2, "three branches are summed with two additions"
    save(
        funcgrad.draw(cost, backward=True, argnums=1, title="fan-out: dC/dz sums its branches")(w, z),
        out,
        "weighted_sum_fanout.svg",
    )
    # the explorer shows the same sum at z: one contribution per branch, in the sweep's order
    ex = funcgrad.explore(cost, argnums=1)(w, z)
    parts = [summary.mean for _, summary in ex.contributions("z")]
    np.testing.assert_allclose(sorted(parts), sorted(float(w[i] * sens[f"s{i}"]) for i in range(3)), rtol=1e-5)
    np.testing.assert_allclose(ex.cotangent("z").mean, float(fan_in), rtol=1e-5)
    print("the explorer's contributions to dC/dz:", [f"{p:.4f}" for p in parts])
    path = ex.save(out / "weighted_sum_fanout.html")
    print(f"wrote {path} (step through the backward pass to see the three contributions add up at z)")
    return sens


if __name__ == "__main__":
    main()
