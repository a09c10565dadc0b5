"""The lecture's mynet: flatten a 3x10x20 image, Linear 600->60, relu, Linear 60->40, relu, Linear 40->10.

PyTorch keeps parameters inside nn.Linear objects; here they are a plain pytree
passed in, so the model is the lecture's G(x, w). The script checks funcgrad's
gradient against JAX's, lists what the backward pass keeps, reports FLOPs, and
draws the forward graph (each Linear collapsed into one box) and the backward graph, and saves
funcgrad.explore's interactive page of one gradient step (mynet_explorer.html).
"""

import jax
import jax.numpy as jnp
import numpy as np
from _common import out_dir, save

import funcgrad


def init_params(seed=0, dims=(600, 60, 40, 10)):
    """Three Linear layers, initialised like nn.Linear (uniform in +-1/sqrt(fan_in))."""
    rng = np.random.default_rng(seed)
    params = []
    for d_in, d_out in zip(dims, dims[1:]):
        bound = 1 / np.sqrt(d_in)
        params.append(
            {
                "W": jnp.asarray(rng.uniform(-bound, bound, (d_out, d_in)), jnp.float32),
                "b": jnp.asarray(rng.uniform(-bound, bound, (d_out,)), jnp.float32),
            }
        )
    return params


@jax.jit
def linear(p, z):
    return p["W"] @ z + p["b"]


def mynet(params, image):
    z0 = jnp.reshape(image, (-1,))  # x.view(-1): flatten the input tensor
    s1 = linear(params[0], z0)
    z1 = funcgrad.tag(jax.nn.relu(s1), "z1")
    s2 = linear(params[1], z1)
    z2 = funcgrad.tag(jax.nn.relu(s2), "z2")
    return linear(params[2], z2)  # s3


def loss(params, image, label):
    return -jax.nn.log_softmax(mynet(params, image))[label]


def main(argv=None):
    out = out_dir(argv, __doc__)
    params = init_params(0)
    image = jnp.asarray(np.random.default_rng(1).normal(size=(3, 10, 20)), jnp.float32)
    label = 3
    out_vec = mynet(params, image)
    assert out_vec.shape == (10,)
    grads = jax.jit(funcgrad.grad(loss))(params, image, label)  # one compiled program, not op by op
    reference = jax.jit(jax.grad(loss))(params, image, label)
    for g, r in zip(jax.tree.leaves(grads), jax.tree.leaves(reference)):
        np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-6)
    print("gradient shapes:", jax.tree.map(jnp.shape, grads))

    residuals = funcgrad.saved_residuals(loss)(params, image, label)
    print(residuals)
    # dC/dW1 needs the flattened image (600 floats); relu's rule reads s and relu(s)
    assert any(r.type.shape == (600,) for r in residuals)
    report = funcgrad.cost_report(loss)(params, image, label)
    print(report)
    # about 1x, not 2x: the image is not differentiated, so the first (largest) layer needs only dC/dW1
    assert 1.0 < report.backward_flops / report.forward_flops < 2.5

    save(
        funcgrad.draw(mynet, collapse=True, title="mynet (each Linear collapsed)")(params, image),
        out,
        "mynet_forward.svg",
    )
    save(
        funcgrad.draw(loss, backward=True, collapse=True, title="mynet: forward and backward")(params, image, label),
        out,
        "mynet_backward.svg",
    )
    # the interactive page: the block diagram, every value and cotangent, the sweep step by step
    ex = funcgrad.explore(loss)(params, image, label)
    sens = funcgrad.sensitivities(loss)(params, image, label)
    np.testing.assert_allclose(ex.cotangent("z1").mean, float(jnp.mean(sens["z1"])), rtol=1e-5, atol=1e-8)
    print(ex)
    path = ex.save(out / "mynet_explorer.html")
    print(f"wrote {path} (open it in any browser, offline)")
    return {"grads": grads, "residual_bytes": residuals.total_bytes}


if __name__ == "__main__":
    main()
