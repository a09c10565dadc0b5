"""Second derivatives through the indexing, convolution, window, sort and cumulative rules.

Reverse-over-reverse differentiates the rules' own backward passes (scatter-adds,
transposed convolutions, the window slices and selects), so these checks catch a
rule that is right once but built from operations funcgrad cannot differentiate
again, or differentiates differently from JAX. Both sides run under ``jax.jit``
(one compilation instead of hundreds of small ones; it also checks the rules trace).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import funcgrad
from tests.conftest import x64


def _close(a, b, tol=1e-9):
    """funcgrad's result ``a`` equals JAX's ``b`` (both computed under jit)."""
    jax.tree.map(lambda u, v: np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=tol, atol=tol), a, b)


def max_pool(x):
    return lax.reduce_window(x, -jnp.inf, lax.max, (2, 2), (1, 2), ((0, 1), (1, 0)))


def pooled_loss(x):
    return jnp.sum(jnp.tanh(max_pool(x)) * jnp.arange(1.0, 7.0).reshape(3, 2)) + jnp.sum(
        lax.reduce_window(x, 0.0, lax.add, (2, 1), (1, 1), "SAME") ** 2
    )


POOL_POINTS = {
    "random": lambda: np.random.default_rng(0).normal(size=(3, 4)),
    "ties": lambda: np.array([[1.0, 1.0, 0.0, 2.0], [1.0, 0.0, 2.0, 2.0], [3.0, 3.0, 3.0, 3.0]]),
}


@pytest.mark.parametrize("point", sorted(POOL_POINTS))
def test_hessian_of_pooling_matches_jax(point):
    with x64():
        x = POOL_POINTS[point]()
        _close(jax.jit(funcgrad.hessian(pooled_loss))(x), jax.jit(jax.hessian(pooled_loss))(x))


def test_grad_through_jax_grad_of_max_pooling():
    # jax.grad of a pooling layer emits select_and_scatter_add; funcgrad differentiates it again
    with x64():
        x = POOL_POINTS["ties"]()

        def grad_norm(x):
            g = jax.grad(lambda y: jnp.sum(max_pool(y) ** 3))(x)
            return jnp.sum(g**2 * jnp.cos(x))

        _close(jax.jit(funcgrad.grad(grad_norm))(x), jax.jit(jax.grad(grad_norm))(x))


def conv_loss(x, w):
    y = lax.conv_general_dilated(x, w, (2, 1), ((1, 0), (0, 1)), rhs_dilation=(1, 2), feature_group_count=2)
    return jnp.sum(jnp.sin(y))


def test_hessian_of_convolution_matches_jax():
    with x64():
        rng = np.random.default_rng(1)
        x, w = rng.normal(size=(1, 4, 4, 5)), rng.normal(size=(4, 2, 2, 2))
        _close(jax.jit(funcgrad.hessian(conv_loss, argnums=1))(x, w), jax.jit(jax.hessian(conv_loss, argnums=1))(x, w))
        # mixed second derivative: d/dw of |d loss / dx|^2
        mixed = lambda g: lambda x, w: jnp.sum(g(conv_loss)(x, w) ** 2)  # noqa: E731
        _close(
            jax.jit(funcgrad.grad(mixed(funcgrad.grad), argnums=1))(x, w),
            jax.jit(jax.grad(mixed(jax.grad), argnums=1))(x, w),
        )


IDX = np.array([0, 3, 3, 1, 7])  # a duplicate and an out-of-bounds index


def index_loss(x, u):
    picked = x[IDX[:4]] + jnp.take(x, IDX[1:], mode="clip") ** 2
    scattered = x.at[IDX].add(u * x[:5]).at[IDX[:3]].max(x[2:5] ** 2)
    return jnp.sum(jnp.sin(picked) * picked) + jnp.sum(scattered**3)


def test_hessian_of_gather_and_scatter_matches_jax():
    with x64():
        rng = np.random.default_rng(2)
        x, u = rng.normal(size=(6,)), rng.normal(size=(5,))
        _close(
            jax.jit(funcgrad.hessian(index_loss, argnums=(0, 1)))(x, u),
            jax.jit(jax.hessian(index_loss, argnums=(0, 1)))(x, u),
        )


def test_second_order_sort_and_cumulative_match_jax():
    def loss(x):
        s = jnp.sort(x, axis=1)
        return jnp.sum(lax.cummax(s * x, axis=1) ** 2) + jnp.sum(
            lax.cumlogsumexp(x, axis=1, reverse=True) * jnp.cumprod(x, axis=1)
        )

    with x64():
        x = np.array([[0.5, -1.0, 0.5, 2.0], [1.0, 1.0, -0.5, 0.3]])
        _close(jax.jit(funcgrad.hessian(loss))(x), jax.jit(jax.hessian(loss))(x))
