"""What each axis of an (N, C, H, W) image batch means, seen through gradients.

Axis 0 is the batch (which image), 1 the channel (R, G, B), 2 the height and 3 the
width (pixel rows and columns). Reducing over an axis removes that meaning; the
gradient always has the batch's shape and says how each pixel moves the result.
"""

import jax.numpy as jnp
import numpy as np
from _common import out_dir, save

import funcgrad

N, C, H, W = 2, 3, 4, 5


def red_brightness(batch):
    """Mean of channel 0 (red) over all images and pixels: reduces axes N, H, W."""
    per_channel = jnp.mean(batch, axis=(0, 2, 3))  # shape (C,)
    return funcgrad.tag(per_channel, "per_channel")[0]


def main(argv=None):
    out = out_dir(argv, __doc__)
    batch = jnp.arange(N * C * H * W, dtype=jnp.float32).reshape(N, C, H, W)
    assert jnp.mean(batch, axis=(0, 2, 3)).shape == (C,)  # one number per channel
    assert jnp.sum(batch, axis=(1, 2, 3)).shape == (N,)  # one number per image
    assert batch[1, 2].shape == (H, W)  # image 1, blue channel: an H x W picture
    g = funcgrad.grad(red_brightness)(batch)
    assert g.shape == batch.shape
    # every red pixel of every image counts 1/(N*H*W); the other channels not at all
    np.testing.assert_allclose(g[:, 0], np.full((N, H, W), 1 / (N * H * W)), rtol=1e-6)
    np.testing.assert_allclose(g[:, 1:], 0.0)
    print(
        f"batch {batch.shape} = (N images, C channels, H rows, W columns); d(red mean)/d(batch) is 1/{N * H * W} on channel 0"
    )
    save(
        funcgrad.draw(red_brightness, backward=True, title="reducing an (N, C, H, W) batch")(batch),
        out,
        "tensor_axes.svg",
    )
    return {"grad": g}


if __name__ == "__main__":
    main()
