"""Data-parallel training with funcgrad: one batch split across 8 devices.

Run it with ``python examples/data_parallel.py``. On a CPU-only machine the 8
devices are simulated (``XLA_FLAGS=--xla_force_host_platform_device_count=8``,
set below before JAX starts); on a GPU/TPU host the real devices are used.

Three ways to train the lecture's mynet with SGD, which must end with the same
parameters (up to float32 rounding, since sums are split differently):

1. ``train_single``: one device, ``jax.jit(sgd_step)``.
2. ``train_sharded``: the same ``jax.jit(sgd_step)``, but the batch is sharded
   across the devices (``NamedSharding(mesh, P("data"))``) and the parameters
   replicated. funcgrad's backward pass is ordinary JAX code inside ``jit``, so
   XLA partitions it and inserts the all-reduce of the gradients itself.
3. ``train_shard_map``: explicit SPMD with ``shard_map``: each device
   differentiates the loss of its own shard with ``funcgrad.grad``, then the
   gradients are summed across devices with ``lax.psum``.

docs/scaling.md describes the path to several hosts.
"""

from __future__ import annotations

import os
import sys

N_DEVICES = 8
if "jax" not in sys.modules and "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (
        f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={N_DEVICES}".strip()
    )

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax import lax  # noqa: E402
from jax.sharding import NamedSharding  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402

import funcgrad  # noqa: E402

LEARNING_RATE = 0.1


# ---------------------------------------------------------------------- model


def init_mynet(key, d0=600):
    """Parameters of mynet: Linear 600->60, relu, Linear 60->40, relu, Linear 40->10."""
    params = {}
    for name, k, (d_in, d_out) in zip(("l1", "l2", "l3"), jax.random.split(key, 3), ((d0, 60), (60, 40), (40, 10))):
        kw, kb = jax.random.split(k)
        params[name] = {
            "W": jax.random.normal(kw, (d_out, d_in)) / np.sqrt(d_in),
            "b": 0.1 * jax.random.normal(kb, (d_out,)),
        }
    return params


def mynet(w, x):
    """One example x: (3, 10, 20) -> 10 logits."""
    h = jnp.reshape(x, (-1,))
    h = jax.nn.relu(w["l1"]["W"] @ h + w["l1"]["b"])
    h = jax.nn.relu(w["l2"]["W"] @ h + w["l2"]["b"])
    return w["l3"]["W"] @ h + w["l3"]["b"]


def summed_xent(w, xs, labels):
    """Sum over the examples of the cross-entropy loss."""
    logits = jax.vmap(mynet, in_axes=(None, 0))(w, xs)
    return -jnp.sum(jnp.take_along_axis(jax.nn.log_softmax(logits), labels[:, None], axis=1))


def mean_xent(w, xs, labels):
    return summed_xent(w, xs, labels) / xs.shape[0]


def sgd(w, grads):
    return jax.tree_util.tree_map(lambda p, g: p - LEARNING_RATE * g, w, grads)


def sgd_step(w, xs, labels):
    """One SGD step on the mean loss of the batch; funcgrad computes the gradient."""
    return sgd(w, funcgrad.grad(mean_xent)(w, xs, labels))


def make_data(key, batch=64):
    kx, ky = jax.random.split(key)
    return jax.random.normal(kx, (batch, 3, 10, 20)), jax.random.randint(ky, (batch,), 0, 10)


# -------------------------------------------------------------------- meshes


def data_mesh(n_devices: int = N_DEVICES):
    """A 1-D mesh named "data" over the first ``n_devices`` devices (automatic sharding propagation)."""
    devices = jax.devices()[:n_devices]
    if len(devices) < n_devices:
        raise RuntimeError(
            f"need {n_devices} devices, JAX sees {len(jax.devices())}; on CPU set "
            f"XLA_FLAGS=--xla_force_host_platform_device_count={n_devices} before importing jax"
        )
    axis_type = getattr(jax.sharding, "AxisType", None)
    if axis_type is not None:
        return jax.make_mesh((n_devices,), ("data",), axis_types=(axis_type.Auto,), devices=devices)
    return jax.sharding.Mesh(np.array(devices), ("data",))


def shard_map(f, mesh, in_specs, out_specs, check_vma: bool):
    """``jax.shard_map`` (jax >= 0.7) or ``jax.experimental.shard_map`` with the same meaning."""
    if hasattr(jax, "shard_map"):
        return jax.shard_map(f, mesh=mesh, in_specs=in_specs, out_specs=out_specs, check_vma=check_vma)
    from jax.experimental.shard_map import shard_map as legacy

    return legacy(f, mesh, in_specs, out_specs, check_rep=check_vma)


# ------------------------------------------------------------------ training


def train_single(w, xs, labels, steps: int):
    """SGD on one device."""
    device = jax.devices()[0]
    w, xs, labels = jax.device_put((w, xs, labels), device)
    step = jax.jit(sgd_step)
    for _ in range(steps):
        w = step(w, xs, labels)
    return w


def train_sharded(w, xs, labels, mesh, steps: int):
    """SGD with the batch sharded over the mesh's "data" axis and the parameters replicated, under jit."""
    replicated, by_example = NamedSharding(mesh, P()), NamedSharding(mesh, P("data"))
    w = jax.device_put(w, replicated)
    xs, labels = jax.device_put(xs, by_example), jax.device_put(labels, by_example)
    step = jax.jit(sgd_step, out_shardings=replicated)
    for _ in range(steps):
        w = step(w, xs, labels)
    return w


def shard_map_step(mesh, batch: int, check_vma: bool = False):
    """An SGD step in explicit SPMD form.

    Each device holds ``batch / n`` examples and differentiates the summed loss of its
    examples with funcgrad (scaled by ``1 / batch``). With ``check_vma=False`` (the classic per-device view)
    every device gets its local gradient and ``lax.psum`` adds them up. With ``check_vma=True``
    (JAX's default) the replicated parameters are *invariant* across devices; JAX marks their use
    with ``pvary``, whose VJP is a psum, so funcgrad's gradient arrives already summed, as
    ``jax.grad``'s does, and no explicit psum is written.
    """

    def local_step(w, xs, labels):
        # d(mean loss)/dw = (1 / batch) * sum over devices of d(this device's summed loss)/dw
        grads = jax.tree_util.tree_map(lambda g: g / batch, funcgrad.grad(summed_xent)(w, xs, labels))
        if not check_vma:
            grads = lax.psum(grads, "data")
        return sgd(w, grads)

    return jax.jit(
        shard_map(local_step, mesh, in_specs=(P(), P("data"), P("data")), out_specs=P(), check_vma=check_vma)
    )


def train_shard_map(w, xs, labels, mesh, steps: int, check_vma: bool = False):
    """SGD where funcgrad.grad runs per shard inside shard_map and gradients are psum-med."""
    replicated, by_example = NamedSharding(mesh, P()), NamedSharding(mesh, P("data"))
    w = jax.device_put(w, replicated)
    xs, labels = jax.device_put(xs, by_example), jax.device_put(labels, by_example)
    step = shard_map_step(mesh, xs.shape[0], check_vma)
    for _ in range(steps):
        w = step(w, xs, labels)
    return w


def max_difference(a, b) -> float:
    return max(
        float(np.max(np.abs(np.asarray(x) - np.asarray(y))))
        for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b))
    )


def main(steps: int = 5):
    mesh = data_mesh()
    w0 = init_mynet(jax.random.key(0))
    xs, labels = make_data(jax.random.key(1))
    print(
        f"{len(jax.devices())} devices ({jax.devices()[0].platform}); batch {xs.shape[0]}, {xs.shape[0] // N_DEVICES} per device"
    )
    single = train_single(w0, xs, labels, steps)
    runs = {
        "jit, sharded batch": train_sharded(w0, xs, labels, mesh, steps),
        "shard_map + psum": train_shard_map(w0, xs, labels, mesh, steps),
        "shard_map (check_vma)": train_shard_map(w0, xs, labels, mesh, steps, check_vma=True),
    }
    print(
        f"loss after {steps} SGD steps: {float(mean_xent(single, *jax.device_put((xs, labels), jax.devices()[0]))):.6f} (single device)"
    )
    for name, w in runs.items():
        print(f"  {name:22s} max |param - single-device param| = {max_difference(w, single):.2e}")
    hlo = (
        jax.jit(sgd_step)
        .lower(
            *jax.device_put(
                (w0, xs, labels),
                (NamedSharding(mesh, P()), NamedSharding(mesh, P("data")), NamedSharding(mesh, P("data"))),
            )
        )
        .compile()
        .as_text()
    )
    print(f"  the sharded step's compiled program has {hlo.count('all-reduce(')} all-reduce(s) of the gradients")


if __name__ == "__main__":
    main()
