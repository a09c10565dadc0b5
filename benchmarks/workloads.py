"""The benchmark workloads, written once in plain ``jax.numpy``.

Each workload is a loss ``loss(params, *batch) -> scalar`` and its data. The
parameters and the batch are NumPy float32 arrays drawn from one seed, so the
PyTorch and HIPS-autograd versions (``torch_workloads``, ``autograd_workloads``)
start from exactly the same numbers.

  A1    the lecture's mynet (3x10x20 -> 600 -> 60 -> 40 -> 10, relu), one example, MSE
  A128  mynet, batch 128, cross-entropy
  B     MLP 784-1024-1024-10 (relu), batch 256, cross-entropy
  C     CNN: conv3x3(32) relu maxpool2, conv3x3(64) relu maxpool2, dense 10; batch 64 of 1x28x28
  D     one pre-norm transformer block (causal 4-head attention, 4x gelu MLP), batch 16, seq 128, d 256
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax


@dataclasses.dataclass(frozen=True)
class Workload:
    """A named loss with its parameters and batch (NumPy arrays; params is a dict of arrays)."""

    name: str
    description: str
    loss: Callable
    params: dict
    batch: tuple


def _linear(rng, d_in, d_out):
    w = rng.standard_normal((d_out, d_in), dtype=np.float32) / np.sqrt(d_in)
    b = 0.1 * rng.standard_normal((d_out,), dtype=np.float32)
    return w.astype(np.float32), b.astype(np.float32)


def _layers(rng, sizes):
    params = {}
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        params[f"W{i}"], params[f"b{i}"] = _linear(rng, a, b)
    return params


def _labels(rng, n, classes=10):
    return rng.integers(0, classes, size=(n,)).astype(np.int32)


# ----------------------------------------------------------------------- losses


def mlp_logits(p, x, n_layers):
    """x: (batch, features); W{i}: (out, in); relu between layers."""
    for i in range(n_layers):
        x = x @ p[f"W{i}"].T + p[f"b{i}"]
        if i < n_layers - 1:
            x = jax.nn.relu(x)
    return x


def cross_entropy(logits, labels):
    logp = jax.nn.log_softmax(logits)
    return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=1))


def mynet_mse(p, x, y):
    """The lecture's mynet on ONE example x: (3, 10, 20); y: (10,)."""
    h = jnp.reshape(x, (-1,))
    h = jax.nn.relu(p["W0"] @ h + p["b0"])
    h = jax.nn.relu(p["W1"] @ h + p["b1"])
    out = p["W2"] @ h + p["b2"]
    return jnp.mean((out - y) ** 2)


def mynet_xent(p, x, labels):
    """mynet on a batch x: (batch, 3, 10, 20), integer labels: (batch,)."""
    return cross_entropy(mlp_logits(p, jnp.reshape(x, (x.shape[0], -1)), 3), labels)


def mlp_xent(p, x, labels):
    return cross_entropy(mlp_logits(p, x, 3), labels)


_CNN_LAYOUTS = {  # (activations, kernels, pooling window, bias broadcast to the activations)
    "NCHW": ("NCHW", "OIHW", (1, 1, 2, 2), lambda b: b[:, None, None]),
    "NHWC": ("NHWC", "HWIO", (1, 2, 2, 1), lambda b: b),
}


def _cnn_xent(p, x, labels, layout):
    act, kernel, window, bias = _CNN_LAYOUTS[layout]
    dn = (act, kernel, act)
    pool = lambda h: lax.reduce_window(h, -jnp.inf, lax.max, window, window, "VALID")
    h = lax.conv_general_dilated(x, p["conv1"], (1, 1), "VALID", dimension_numbers=dn) + bias(p["cb1"])
    h = pool(jax.nn.relu(h))  # 26x26 -> 13x13
    h = lax.conv_general_dilated(h, p["conv2"], (1, 1), "VALID", dimension_numbers=dn) + bias(p["cb2"])
    h = pool(jax.nn.relu(h))  # 11x11 -> 5x5
    h = jnp.reshape(h, (h.shape[0], -1))
    return cross_entropy(h @ p["W"].T + p["b"], labels)


def cnn_xent(p, x, labels):
    """x: (batch, 1, 28, 28) NCHW; kernels OIHW."""
    return _cnn_xent(p, x, labels, "NCHW")


def cnn_xent_nhwc(p, x, labels):
    """The same model with x: (batch, 28, 28, 1) NHWC and kernels HWIO (``benchmarks.cnn_layouts``)."""
    return _cnn_xent(p, x, labels, "NHWC")


def layer_norm(x, scale, bias, eps=1e-5):
    mean = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.mean((x - mean) ** 2, axis=-1, keepdims=True)
    return (x - mean) * lax.rsqrt(var + eps) * scale + bias


def transformer_block(p, x, heads=4):
    """Pre-norm block on x: (batch, seq, d): causal multi-head attention, then a 4x gelu MLP."""
    b, s, d = x.shape
    h = layer_norm(x, p["ln1_scale"], p["ln1_bias"])
    split = lambda t: jnp.reshape(t, (b, s, heads, d // heads)).transpose(0, 2, 1, 3)
    q, k, v = split(h @ p["Wq"]), split(h @ p["Wk"]), split(h @ p["Wv"])
    scores = jnp.einsum("bhqc,bhkc->bhqk", q, k) / np.sqrt(d // heads).astype(np.float32)
    mask = jnp.tril(jnp.ones((s, s), bool))
    probs = jax.nn.softmax(jnp.where(mask, scores, -1e9), axis=-1)
    att = jnp.einsum("bhqk,bhkc->bhqc", probs, v).transpose(0, 2, 1, 3).reshape(b, s, d)
    x = x + att @ p["Wo"]
    h = layer_norm(x, p["ln2_scale"], p["ln2_bias"])
    h = jax.nn.gelu(h @ p["W1"] + p["b1"], approximate=True)
    return x + h @ p["W2"] + p["b2"]


def transformer_mse(p, x):
    return jnp.mean(transformer_block(p, x) ** 2)


# --------------------------------------------------------------------- workloads


def make_workloads(seed: int = 0) -> dict[str, Workload]:
    """All workloads, keyed by name, with fresh float32 data from ``seed``."""
    rng = np.random.default_rng(seed)
    f32 = lambda *shape: rng.standard_normal(shape, dtype=np.float32)
    mynet = _layers(rng, [600, 60, 40, 10])
    d = 256
    attn = {n: (f32(d, d) / np.sqrt(d)).astype(np.float32) for n in ("Wq", "Wk", "Wv", "Wo")}
    w1, b1 = _linear(rng, d, 4 * d)
    w2, b2 = _linear(rng, 4 * d, d)
    ones, zeros = np.ones(d, np.float32), np.zeros(d, np.float32)
    block = {**attn, "W1": w1.T.copy(), "b1": b1, "W2": w2.T.copy(), "b2": b2}
    block.update(ln1_scale=ones, ln1_bias=zeros, ln2_scale=ones.copy(), ln2_bias=zeros.copy())
    cnn = {
        "conv1": (0.3 * f32(32, 1, 3, 3)).astype(np.float32),
        "cb1": np.zeros(32, np.float32),
        "conv2": (f32(64, 32, 3, 3) / np.sqrt(32 * 9)).astype(np.float32),
        "cb2": np.zeros(64, np.float32),
    }
    cnn["W"], cnn["b"] = _linear(rng, 64 * 5 * 5, 10)
    return {
        "A1": Workload("A1", "mynet, 1 example, MSE", mynet_mse, mynet, (f32(3, 10, 20), f32(10))),
        "A128": Workload(
            "A128", "mynet, batch 128, cross-entropy", mynet_xent, mynet, (f32(128, 3, 10, 20), _labels(rng, 128))
        ),
        "B": Workload(
            "B",
            "MLP 784-1024-1024-10, batch 256, cross-entropy",
            mlp_xent,
            _layers(rng, [784, 1024, 1024, 10]),
            (f32(256, 784), _labels(rng, 256)),
        ),
        "C": Workload(
            "C",
            "CNN conv32-pool-conv64-pool-dense, batch 64 of 28x28",
            cnn_xent,
            cnn,
            (f32(64, 1, 28, 28), _labels(rng, 64)),
        ),
        "D": Workload(
            "D",
            "transformer block, batch 16, seq 128, d 256, 4 heads",
            transformer_mse,
            block,
            (0.5 * f32(16, 128, d),),
        ),
    }
