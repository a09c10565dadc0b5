"""Cotangents accumulate by their dtype's own rule, as in JAX (Flax's fp8 metadata dtype takes the max).

Flax's ``fp8_ops.fp32_max_grad`` is an extended dtype whose rules say how automatic differentiation
adds two cotangents (``max``) and what a missing one is (``-inf``): when fp8 scaling metadata is
used twice (two layers, or every step of a scan), its gradient is the largest recorded amax, not the
sum. funcgrad once added them with ``lax.add`` (a silently wrong gradient). The dtype below is
defined as Flax defines it, in tests/extended_dtypes.py.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import funcgrad
from funcgrad.core.accumulation import add_cotangents, carries_gradient, zero_cotangent
from tests.extended_dtypes import MAX_GRAD32


@jax.custom_vjp
def _record_amax(x, history):
    """Returns x; its backward sends the history, updated with |x|'s max, as history's cotangent
    (Flax's ``in_qdq``: the gradient of fp8 metadata *is* its new value)."""
    return x


def _record_amax_fwd(x, history):
    as_float = lax.convert_element_type(history, jnp.float32)
    new = jnp.roll(as_float, 1).at[0].set(jnp.max(jnp.abs(x)))
    return x, lax.convert_element_type(new, history.dtype)


_record_amax.defvjp(_record_amax_fwd, lambda new_history, g: (g, new_history))


def _loss(x, history, dtype):
    h = lax.convert_element_type(history, dtype)
    y = _record_amax(x, h)  # the metadata used twice: its two cotangents meet
    z = _record_amax(3.0 * x, h)
    return jnp.sum(y * z)


def _scan_loss(x, history, dtype):
    h = lax.convert_element_type(history, dtype)

    def step(carry, _):
        return _record_amax(carry, h) * 2.0, None  # the same metadata at every step

    return jnp.sum(lax.scan(step, x, None, length=3)[0])


@pytest.mark.parametrize("loss", [_loss, _scan_loss], ids=["fan_out", "scan_consts"])
def test_max_gradient_dtype_accumulates_by_max_as_in_jax(loss):
    x, history = jnp.array([0.5, -2.0]), jnp.zeros(3)
    ours = jax.jit(funcgrad.grad(lambda x, h: loss(x, h, MAX_GRAD32), argnums=1))(x, history)
    theirs = jax.jit(jax.grad(lambda x, h: loss(x, h, MAX_GRAD32), argnums=1))(x, history)
    np.testing.assert_allclose(ours, theirs)
    # and it is not the sum that the same program gives in float32 (where cotangents do add up)
    summed = jax.jit(jax.grad(lambda x, h: loss(x, h, jnp.float32), argnums=1))(x, history)
    assert not np.allclose(theirs, summed)
    np.testing.assert_allclose(
        jax.jit(funcgrad.grad(lambda x, h: loss(x, h, jnp.float32), argnums=1))(x, history), summed
    )


def test_accumulation_helpers_follow_the_dtype():
    assert carries_gradient(jnp.float32) and carries_gradient(jnp.bfloat16) and carries_gradient(jnp.complex64)
    assert carries_gradient(MAX_GRAD32)
    assert not carries_gradient(jnp.int32) and not carries_gradient(jax.random.key(0).dtype)

    @jax.jit
    def combine(a, b):
        a, b = lax.convert_element_type(a, MAX_GRAD32), lax.convert_element_type(b, MAX_GRAD32)
        zero = zero_cotangent((2,), MAX_GRAD32)
        return lax.convert_element_type(add_cotangents(add_cotangents(a, b), zero), jnp.float32)

    np.testing.assert_allclose(combine(jnp.array([1.0, -5.0]), jnp.array([3.0, -7.0])), [3.0, -5.0])
    np.testing.assert_allclose(add_cotangents(jnp.ones(2), jnp.ones(2)), [2.0, 2.0])
    np.testing.assert_allclose(zero_cotangent((2,), jnp.float32), [0.0, 0.0])
