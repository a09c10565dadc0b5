"""Multi-head self-attention over one sequence (T, d): softmax(Q Kᵀ / sqrt(d_head)) V per head."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from funcgrad.nn.layer import Layer, check_in_shape, shape_of
from funcgrad.nn.linear import Linear, affine


def MultiHeadAttention(num_heads: int, *, head_dim: int | None = None, causal: bool = False) -> Layer:
    """Multi-head self-attention (no dropout), as in "Attention Is All You Need".

    For each head h: A_h = softmax(Q_h K_hᵀ / sqrt(d_head)), out_h = A_h V_h; the heads are
    concatenated and mixed by the output projection.

    Args:
      num_heads: the number of heads.
      head_dim: the width of each head; defaults to d / num_heads.
      causal: if True, position t attends only to positions <= t.

    Returns:
      A ``Layer`` mapping one sequence (T, d) to (T, d), with parameters
      ``{'query', 'key', 'value', 'out'}``, each a ``Linear``'s ``{'W', 'b'}``.
    """

    def init(in_shape, *, key):
        shape = shape_of(in_shape)
        check_in_shape("MultiHeadAttention", shape, 2, "T, d")
        d = shape[-1]
        width = head_dim if head_dim is not None else d // num_heads
        if head_dim is None and d % num_heads:
            raise ValueError(f"MultiHeadAttention: d={d} is not divisible by num_heads={num_heads}; pass head_dim.")
        keys = jax.random.split(key, 4)
        inner = num_heads * width
        return {
            "query": Linear(inner).init((d,), key=keys[0]),
            "key": Linear(inner).init((d,), key=keys[1]),
            "value": Linear(inner).init((d,), key=keys[2]),
            "out": Linear(d).init((inner,), key=keys[3]),
        }

    def apply(params, x):
        t = x.shape[0]

        def heads(name):  # (T, d) -> (heads, T, d_head)
            with jax.named_scope(name):
                y = affine(params[name], x)
                return jnp.transpose(jnp.reshape(y, (t, num_heads, -1)), (1, 0, 2))

        q, k, v = heads("query"), heads("key"), heads("value")
        with jax.named_scope("weights"):  # softmax(Q Kᵀ / sqrt(d_head)), one block in funcgrad.explore
            scores = jnp.einsum("htd,hsd->hts", q, k) / jnp.sqrt(jnp.asarray(q.shape[-1], x.dtype))
            if causal:  # a large negative score, not -inf, so fully masked rows stay finite
                allowed = jnp.tril(jnp.ones((t, t), bool))
                scores = jnp.where(allowed, scores, jnp.finfo(scores.dtype).min)
            weights = jax.nn.softmax(scores, axis=-1)
        with jax.named_scope("mix"):
            mixed = jnp.einsum("hts,hsd->htd", weights, v)
            concat = jnp.reshape(jnp.transpose(mixed, (1, 0, 2)), (t, -1))
        with jax.named_scope("out"):
            return affine(params["out"], concat)

    return Layer(init, apply, "attention")
