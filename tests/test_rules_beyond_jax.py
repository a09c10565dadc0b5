"""Indexing and window cases where JAX itself has no reverse-mode rule.

``x.at[i].multiply(u)`` with repeated indices (JAX: NotImplementedError for the
updates' gradient) and max pooling with window dilation (JAX: NotImplementedError)
are checked against ``jax.vjp`` of an equivalent formulation built from dense ops.
A custom ``reduce_window`` reducer (JAX cannot differentiate it either) must fail
with funcgrad's clear error. ``lax.pad`` differentiated in its padding value alone (JAX: a
TypeError from its transpose) gives the number of padded entries, times the cotangent.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import funcgrad
from tests.conftest import x64

IDX = np.array([1, 3, 1, 1, 0, 3])


def scatter_mul(x, u):
    return x.at[IDX].multiply(u)


def scatter_mul_dense(x, u):
    # out[j] = x[j] * prod of the u_k with IDX[k] == j
    hits = IDX[None, :] == np.arange(x.shape[0])[:, None]
    return x * jnp.prod(jnp.where(hits, u[None, :], 1.0), axis=1)


@pytest.mark.parametrize(
    "updates",
    [
        [0.5, 2.0, -1.5, 0.7, 3.0, 1.2],
        [0.0, 2.0, -1.5, 0.7, 3.0, 0.0],  # one zero on index 1, one on index 3
        [0.0, 2.0, 0.0, 0.7, 3.0, 1.2],  # two zeros on index 1
    ],
)
def test_scatter_mul_with_repeated_indices_differentiates_the_updates(updates):
    with x64():
        x, u = np.array([1.5, -2.0, 0.3, 0.8]), np.array(updates)
        ct = np.array([0.3, -1.0, 2.0, 0.5])
        out_f, vjp_f = funcgrad.vjp(scatter_mul, x, u)
        out_r, vjp_r = jax.vjp(scatter_mul_dense, x, u)
        np.testing.assert_allclose(out_f, out_r, rtol=1e-12)
        for a, b in zip(vjp_f(ct), vjp_r(ct)):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
        with pytest.raises(NotImplementedError):  # the reason this is not a row of the JAX-parity table
            jax.vjp(scatter_mul, x, u)[1](ct)


WINDOW, STRIDES, DILATION, PADDING = (2, 2), (1, 2), (2, 1), ((1, 0), (0, 1))


def dilated_max_pool(x):
    return lax.reduce_window(x, -jnp.inf, lax.max, WINDOW, STRIDES, PADDING, window_dilation=DILATION)


def dilated_max_pool_dense(x):
    # the same windows, as a max over one strided slice per window offset
    padded = jnp.pad(x, PADDING, constant_values=-jnp.inf)
    out_shape = np.shape(dilated_max_pool(x))
    entries = []
    for offset in itertools.product(*(range(w) for w in WINDOW)):
        start = [o * d for o, d in zip(offset, DILATION)]
        limit = [s + (n - 1) * st + 1 for s, n, st in zip(start, out_shape, STRIDES)]
        entries.append(lax.slice(padded, start, limit, STRIDES))
    return jnp.max(jnp.stack(entries), axis=0)


def test_max_pool_with_window_dilation():
    with x64():
        x = np.random.default_rng(0).normal(size=(5, 6))  # no ties
        ct = np.random.default_rng(1).normal(size=np.shape(dilated_max_pool(x)))
        out_f, vjp_f = funcgrad.vjp(dilated_max_pool, x)
        out_r, vjp_r = jax.vjp(dilated_max_pool_dense, x)
        np.testing.assert_allclose(out_f, out_r)
        np.testing.assert_allclose(vjp_f(ct)[0], vjp_r(ct)[0], rtol=1e-12)
        with pytest.raises(NotImplementedError, match="window dilation"):
            jax.vjp(dilated_max_pool, x)[1](ct)


def test_custom_reducer_reduce_window_fails_clearly():
    def window_product(x):
        return jnp.sum(lax.reduce_window(x, 1.0, lax.mul, (2,), (1,), "VALID"))

    x = jnp.arange(1.0, 5.0)
    with pytest.raises(funcgrad.NonDifferentiableError, match=r"(?s)'reduce_window'.*test_rules_beyond_jax.py.*fix:"):
        funcgrad.grad(window_product)(x)
    with pytest.raises(ValueError):  # JAX cannot either
        jax.grad(window_product)(x)


@pytest.mark.parametrize("config", [[(1, 0, 0)], [(2, -1, 1)], [(0, 0, 0)], [(-1, 2, 0)]])
def test_pad_differentiated_in_its_padding_value_alone(config):
    x = jnp.arange(1.0, 4.0)
    weights = jnp.arange(1.0, 1.0 + lax.pad(x, 0.0, config).shape[0])

    def f(v):
        return jnp.sum(weights * lax.pad(x, v, config))

    # d/dv: the weights at the padded places (where pad(x, v) - pad(x, 0) depends on v)
    padded = lax.pad(jnp.zeros_like(x), 1.0, config)
    np.testing.assert_allclose(funcgrad.grad(f)(0.5), jnp.sum(weights * padded), rtol=1e-6)
    # the same through both arguments, as JAX computes it
    both = funcgrad.grad(lambda x, v: jnp.sum(weights * lax.pad(x, v, config)), argnums=(0, 1))(x, 0.5)
    want = jax.grad(lambda x, v: jnp.sum(weights * lax.pad(x, v, config)), argnums=(0, 1))(x, 0.5)
    np.testing.assert_allclose(both[1], want[1], rtol=1e-6)
    np.testing.assert_allclose(both[1], jnp.sum(weights * padded), rtol=1e-6)
