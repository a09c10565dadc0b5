"""Small models written the way JAX users write them, shared by the model-level tests."""

import jax
import jax.numpy as jnp
from jax import lax


def init_linear(key, d_in, d_out, dtype=jnp.float32):
    kw, kb = jax.random.split(key)
    return {
        "W": jax.random.normal(kw, (d_out, d_in), dtype) / jnp.sqrt(d_in),
        "b": 0.1 * jax.random.normal(kb, (d_out,), dtype),
    }


def init_mynet(key, d0=600, dtype=jnp.float32):
    k1, k2, k3 = jax.random.split(key, 3)
    return {
        "l1": init_linear(k1, d0, 60, dtype),
        "l2": init_linear(k2, 60, 40, dtype),
        "l3": init_linear(k3, 40, 10, dtype),
    }


def mynet(w, x):
    """The lecture's network: flatten, Linear 600->60, relu, Linear 60->40, relu, Linear 40->10."""
    h = jnp.reshape(x, (-1,))
    h = jax.nn.relu(w["l1"]["W"] @ h + w["l1"]["b"])
    h = jax.nn.relu(w["l2"]["W"] @ h + w["l2"]["b"])
    return w["l3"]["W"] @ h + w["l3"]["b"]


def mse_loss(w, x, y):
    return jnp.mean((mynet(w, x) - y) ** 2)


def xent_loss(w, x, label):
    logits = mynet(w, x)
    return -jax.nn.log_softmax(logits)[label]


def batched_xent(w, xs, labels):
    logits = jax.vmap(mynet, in_axes=(None, 0))(w, xs)
    return jnp.mean(-jnp.take_along_axis(jax.nn.log_softmax(logits), labels[:, None], axis=1))


def init_mlp(key, sizes, dtype=jnp.float32):
    keys = jax.random.split(key, len(sizes) - 1)
    return [init_linear(k, a, b, dtype) for k, a, b in zip(keys, sizes[:-1], sizes[1:])]


def mlp(params, x, act):
    for layer in params[:-1]:
        x = act(x @ layer["W"].T + layer["b"])
    return x @ params[-1]["W"].T + params[-1]["b"]


def layer_norm(params, x, eps=1e-5):
    mean = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.var(x, axis=-1, keepdims=True)
    return (x - mean) * lax.rsqrt(var + eps) * params["scale"] + params["bias"]


def init_attention(key, d, dtype=jnp.float32):
    ks = jax.random.split(key, 4)
    return {n: jax.random.normal(k, (d, d), dtype) / jnp.sqrt(d) for n, k in zip(("q", "k", "v", "o"), ks)}


def attention(params, x, heads, causal=False):
    """Multi-head softmax self-attention on x: (seq, d)."""
    seq, d = x.shape
    split = lambda t: t.reshape(seq, heads, d // heads).transpose(1, 0, 2)
    q, k, v = (split(x @ params[n]) for n in ("q", "k", "v"))
    scores = jnp.einsum("hqd,hkd->hqk", q, k) / jnp.sqrt(d // heads)
    if causal:
        mask = jnp.tril(jnp.ones((seq, seq), bool))
        scores = jnp.where(mask, scores, -1e9)
    probs = jax.nn.softmax(scores, axis=-1)
    out = jnp.einsum("hqk,hkd->hqd", probs, v).transpose(1, 0, 2).reshape(seq, d)
    return out @ params["o"]


def init_transformer_block(key, d, dtype=jnp.float32):
    k1, k2, k3 = jax.random.split(key, 3)
    return {
        "attn": init_attention(k1, d, dtype),
        "ln1": {"scale": jnp.ones(d, dtype), "bias": jnp.zeros(d, dtype)},
        "ln2": {"scale": jnp.ones(d, dtype), "bias": jnp.zeros(d, dtype)},
        "mlp": init_mlp(k2, [d, 4 * d, d], dtype),
    }


def transformer_block(params, x, heads=4, causal=True):
    h = x + attention(params["attn"], layer_norm(params["ln1"], x), heads, causal)
    return h + mlp(params["mlp"], layer_norm(params["ln2"], h), jax.nn.gelu)


def init_cnn(key, dtype=jnp.float32):
    k1, k2, k3 = jax.random.split(key, 3)
    return {
        "conv1": 0.3 * jax.random.normal(k1, (4, 1, 3, 3), dtype),
        "conv2": 0.3 * jax.random.normal(k2, (6, 4, 3, 3), dtype),
        "dense": init_linear(k3, 6 * 2 * 2, 10, dtype),
    }


def cnn(params, x):
    """x: (N, 1, 12, 12) -> logits (N, 10); conv, relu, max-pool, conv, relu, avg-pool, dense."""
    dn = ("NCHW", "OIHW", "NCHW")
    h = lax.conv_general_dilated(x, params["conv1"], (1, 1), "SAME", dimension_numbers=dn)
    h = jax.nn.relu(h)
    h = lax.reduce_window(h, -jnp.inf, lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")
    h = lax.conv_general_dilated(h, params["conv2"], (1, 1), "VALID", dimension_numbers=dn)
    h = jax.nn.relu(h)
    h = lax.reduce_window(h, 0.0, lax.add, (1, 1, 2, 2), (1, 1, 2, 2), "VALID") / 4.0
    h = h.reshape(h.shape[0], -1)
    return h @ params["dense"]["W"].T + params["dense"]["b"]
