"""Model-level parity with jax.grad: mynet, MLPs, layer norm, attention, a transformer block, a CNN.

Each model is checked plain, under jax.jit, per-example under jax.vmap, and
second order where cheap.
"""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import funcgrad
from tests import models as M

KEY = jax.random.key(0)


def assert_trees_close(a, b, rtol=2e-5, atol=2e-6):
    chex.assert_trees_all_equal_structs(a, b)
    chex.assert_trees_all_close(a, b, rtol=rtol, atol=atol)


def mynet_data(batch=None):
    k1, k2, k3 = jax.random.split(jax.random.key(1), 3)
    shape = (3, 10, 20) if batch is None else (batch, 3, 10, 20)
    x = jax.random.normal(k1, shape)
    y = jax.random.normal(k2, (10,) if batch is None else (batch, 10))
    label = jax.random.randint(k3, () if batch is None else (batch,), 0, 10)
    return x, y, label


def test_mynet_mse():
    w, (x, y, _) = M.init_mynet(KEY), mynet_data()
    assert_trees_close(funcgrad.grad(M.mse_loss)(w, x, y), jax.grad(M.mse_loss)(w, x, y))


def test_mynet_cross_entropy_integer_label():
    w, (x, _, label) = M.init_mynet(KEY), mynet_data()
    assert_trees_close(funcgrad.grad(M.xent_loss)(w, x, label), jax.grad(M.xent_loss)(w, x, label))


def test_mynet_batched_mean_loss_under_jit():
    w, (xs, _, labels) = M.init_mynet(KEY), mynet_data(batch=8)
    got = jax.jit(funcgrad.value_and_grad(M.batched_xent))(w, xs, labels)
    want = jax.jit(jax.value_and_grad(M.batched_xent))(w, xs, labels)
    assert_trees_close(got, want)


def test_mynet_per_example_gradients_under_vmap():
    w, (xs, ys, _) = M.init_mynet(KEY), mynet_data(batch=5)
    got = jax.vmap(funcgrad.grad(M.mse_loss), in_axes=(None, 0, 0))(w, xs, ys)
    want = jax.vmap(jax.grad(M.mse_loss), in_axes=(None, 0, 0))(w, xs, ys)
    assert_trees_close(got, want)


def test_mynet_trace_shows_reshape_dots_and_relus():
    w, (x, y, _) = M.init_mynet(KEY), mynet_data()
    text = str(funcgrad.trace(M.mse_loss)(w, x, y))
    assert text.count("dot_general") == 3
    assert "reshape" in text
    assert text.count("custom_jvp_call[name=relu") == 2
    assert "max" in text  # relu's body


@pytest.mark.parametrize(
    "act",
    [jnp.tanh, jax.nn.sigmoid, jax.nn.softplus, jax.nn.gelu, jax.nn.silu, jax.nn.relu, jax.nn.elu, jax.nn.leaky_relu],
)
def test_mlp_activations(act):
    params = M.init_mlp(KEY, [7, 16, 16, 3])
    x = jax.random.normal(jax.random.key(2), (5, 7))
    loss = lambda p, x: jnp.mean(M.mlp(p, x, act) ** 2)
    assert_trees_close(funcgrad.grad(loss)(params, x), jax.grad(loss)(params, x))


def test_layer_norm():
    params = {"scale": jnp.linspace(0.5, 1.5, 8), "bias": jnp.linspace(-0.1, 0.1, 8)}
    x = jax.random.normal(jax.random.key(3), (4, 8))
    loss = lambda p, x: jnp.sum(jnp.sin(M.layer_norm(p, x)))
    assert_trees_close(
        funcgrad.grad(loss, argnums=(0, 1))(params, x), jax.grad(loss, argnums=(0, 1))(params, x), rtol=1e-4, atol=1e-5
    )


def test_multi_head_attention():
    params = M.init_attention(KEY, 16)
    x = jax.random.normal(jax.random.key(4), (6, 16))
    loss = lambda p, x: jnp.mean(M.attention(p, x, heads=4) ** 2)
    assert_trees_close(
        funcgrad.grad(loss, argnums=(0, 1))(params, x), jax.grad(loss, argnums=(0, 1))(params, x), rtol=1e-4, atol=1e-5
    )


def test_transformer_block_causal_under_jit():
    params = M.init_transformer_block(KEY, 16)
    x = jax.random.normal(jax.random.key(5), (6, 16))
    loss = lambda p, x: jnp.mean(M.transformer_block(p, x) ** 2)
    got = jax.jit(funcgrad.grad(loss))(params, x)
    want = jax.jit(jax.grad(loss))(params, x)
    assert_trees_close(got, want, rtol=1e-4, atol=1e-5)


def test_cnn_with_conv_and_pooling():
    params = M.init_cnn(KEY)
    x = jax.random.normal(jax.random.key(6), (2, 1, 12, 12))
    labels = jnp.array([3, 7])
    loss = lambda p, x: -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(M.cnn(p, x)), labels[:, None], 1))
    assert_trees_close(funcgrad.grad(loss)(params, x), jax.grad(loss)(params, x), rtol=1e-4, atol=1e-5)
    assert_trees_close(
        jax.jit(funcgrad.grad(loss))(params, x), jax.jit(jax.grad(loss))(params, x), rtol=1e-4, atol=1e-5
    )


def test_hessian_of_small_function(enable_x64):
    f = lambda x: jnp.sum(jnp.tanh(x) ** 3 * jnp.exp(-x[::-1]))
    x = jnp.linspace(-1.0, 1.0, 4, dtype=jnp.float64)
    np.testing.assert_allclose(funcgrad.hessian(f)(x), jax.hessian(f)(x), rtol=1e-10, atol=1e-12)


def test_grad_of_grad_and_mixing_with_jax(enable_x64):
    f = lambda x: jnp.sin(x) * x**3 + jnp.log1p(x * x)
    x = jnp.float64(0.7)
    want = jax.grad(jax.grad(f))(x)
    for outer in (funcgrad.grad, jax.grad):
        for inner in (funcgrad.grad, jax.grad):
            np.testing.assert_allclose(outer(inner(f))(x), want, rtol=1e-12)
    np.testing.assert_allclose(
        funcgrad.grad(funcgrad.grad(funcgrad.grad(f)))(x), jax.grad(jax.grad(jax.grad(f)))(x), rtol=1e-10
    )


def test_hessian_of_mynet_loss_wrt_last_layer(enable_x64):
    w = M.init_mynet(KEY, dtype=jnp.float64)
    x, y, _ = mynet_data()
    x, y = x.astype(jnp.float64), y.astype(jnp.float64)
    f = lambda b3: M.mse_loss({**w, "l3": {"W": w["l3"]["W"], "b": b3}}, x, y)
    np.testing.assert_allclose(funcgrad.hessian(f)(w["l3"]["b"]), jax.hessian(f)(w["l3"]["b"]), rtol=1e-10, atol=1e-12)
