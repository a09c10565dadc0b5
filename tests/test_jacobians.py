"""Per-module Jacobians (state and weight) against jax.jacrev; their products reproduce backprop's gradients."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import funcgrad
from tests.conftest import x64


def linear(p, z):
    return p["W"] @ z + p["b"]


def relu(_, z):
    return jax.nn.relu(z)


def flatten(_, x):
    return jnp.reshape(x, (-1,))


def small_mynet(rng, dims=(2 * 3 * 4, 7, 5, 3)):
    """The lecture's mynet (flatten, Linear, relu, Linear, relu, Linear) at a test-sized width."""
    params = [
        {"W": jnp.asarray(rng.normal(size=(b, a)) / np.sqrt(a)), "b": jnp.asarray(rng.normal(size=(b,)))}
        for a, b in zip(dims[:-1], dims[1:])
    ]
    stages = [
        (flatten, None),
        (linear, params[0]),
        (relu, None),
        (linear, params[1]),
        (relu, None),
        (linear, params[2]),
    ]
    return stages, params


def run_chain(stages, x):
    for f, p in stages:
        x = f(p, x)
    return x


def test_module_jacobians_match_jax_jacrev():
    with x64():
        rng = np.random.default_rng(0)
        stages, _ = small_mynet(rng)
        x = jnp.asarray(rng.normal(size=(2, 3, 4)))
        jacs = jax.jit(funcgrad.module_jacobians(stages))(x)  # one compiled program; also checks jit
        assert len(jacs) == len(stages)
        z = x
        for (f, p), jac in zip(stages, jacs):
            np.testing.assert_allclose(jac.z_in, z)
            z = f(p, z)
            np.testing.assert_allclose(jac.z_out, z)
            expected_state = jax.jit(jax.jacrev(f, argnums=1))(p, jac.z_in)
            np.testing.assert_allclose(jac.d_state, expected_state, rtol=1e-12, atol=1e-14)
            assert jac.d_state.shape == jac.z_out.shape + jac.z_in.shape
            if p is None:
                assert jac.d_weights is None
            else:
                expected_w = jax.jit(jax.jacrev(f, argnums=0))(p, jac.z_in)
                for k in p:
                    np.testing.assert_allclose(jac.d_weights[k], expected_w[k], rtol=1e-12, atol=1e-14)
                    assert jac.d_weights[k].shape == jac.z_out.shape + p[k].shape


def test_row_vector_times_jacobians_is_backprop():
    with x64():
        rng = np.random.default_rng(1)
        stages, params = small_mynet(rng)
        x = jnp.asarray(rng.normal(size=(2, 3, 4)))
        y = jnp.asarray(rng.normal(size=(3,)))

        def cost(params, x):
            st = [(f, params[i // 2] if p is not None else None) for i, (f, p) in enumerate(stages)]
            return jnp.sum((run_chain(st, x) - y) ** 2)

        jacs = jax.jit(funcgrad.module_jacobians(stages))(x)
        dc_dout = 2 * (jacs[-1].z_out - y)  # dc/dz_K for c = |z_K - y|^2
        dc_dz, dc_dw = funcgrad.backprop_jacobians(jacs, dc_dout)
        assert len(dc_dz) == len(stages) + 1 and len(dc_dw) == len(stages)
        expected_params, expected_x = jax.jit(jax.grad(cost, argnums=(0, 1)))(params, x)
        np.testing.assert_allclose(dc_dz[0], expected_x, rtol=1e-10)
        np.testing.assert_allclose(dc_dz[0], jax.jit(funcgrad.grad(cost, argnums=1))(params, x), rtol=1e-10)
        linear_stages = [k for k, (_, p) in enumerate(stages) if p is not None]
        for layer, k in enumerate(linear_stages):
            for name in ("W", "b"):
                np.testing.assert_allclose(dc_dw[k][name], expected_params[layer][name], rtol=1e-10)
        assert all(dc_dw[k] is None for k in range(len(stages)) if k not in linear_stages)
