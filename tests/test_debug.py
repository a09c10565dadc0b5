"""funcgrad.debug_nans: stop at the first backward equation producing NaN/Inf, name it and its line."""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import funcgrad
from funcgrad import NonFiniteGradientError


def masked_sqrt(x):
    return jnp.where(x > 0, jnp.sqrt(x), 0.0)  # sqrt line


def masked_sqrt_of_sin(x):
    return jnp.sum(jnp.where(x > 0, jnp.sqrt(jnp.sin(x)), 0.0))


def double_where_sqrt(x):
    safe = jnp.where(x > 0, x, 1.0)
    return jnp.where(x > 0, jnp.sqrt(safe), 0.0)


def _where(fn, marker: str) -> str:
    lines, start = inspect.getsourcelines(fn)
    return f"{__file__}:{start + next(i for i, text in enumerate(lines) if marker in text)}"


def test_default_mode_returns_exactly_what_jax_returns():
    got, expected = funcgrad.grad(masked_sqrt)(0.0), jax.grad(masked_sqrt)(0.0)
    assert np.isnan(expected)
    np.testing.assert_array_equal(got, expected)
    assert jnp.result_type(got) == jnp.result_type(expected)


def test_debug_mode_names_sqrt_and_the_user_line():
    with funcgrad.debug_nans():
        with pytest.raises(NonFiniteGradientError) as info:
            funcgrad.grad(masked_sqrt)(0.0)
    message = str(info.value)
    assert "VJP rule of 'sqrt'" in message
    assert _where(masked_sqrt, "# sqrt line") in message
    # the values' summary: the input is a finite 0, the produced cotangent one NaN
    assert "produced cotangents:\n    0: f32[]  1 NaN" in message
    assert "primal inputs:\n    0: f32[]  finite part in [0, 0]" in message
    assert "double-where" in message
    assert isinstance(info.value, FloatingPointError)


def test_double_where_fix_is_finite_and_matches_jax():
    with funcgrad.debug_nans():
        got = funcgrad.grad(double_where_sqrt)(0.0)
        at_four = funcgrad.grad(double_where_sqrt)(4.0)
    np.testing.assert_array_equal(got, jax.grad(double_where_sqrt)(0.0))
    np.testing.assert_allclose(at_four, jax.grad(double_where_sqrt)(4.0))


def test_the_first_equation_is_reported_not_the_ones_the_nan_reaches_later():
    x = jnp.array([0.0, 1.0])
    with funcgrad.debug_nans():
        with pytest.raises(NonFiniteGradientError, match="VJP rule of 'sqrt'") as info:
            funcgrad.grad(masked_sqrt_of_sin)(x)
    assert "'sin'" not in str(info.value).splitlines()[0]
    assert "f32[2]  1 NaN, finite part in" in str(info.value)


def test_under_jit_the_error_is_raised_when_the_program_runs():
    with funcgrad.debug_nans():
        step = jax.jit(funcgrad.grad(masked_sqrt_of_sin))
        np.testing.assert_allclose(
            step(jnp.array([0.5, 1.0])), jax.grad(masked_sqrt_of_sin)(jnp.array([0.5, 1.0])), rtol=1e-6
        )
        with pytest.raises(Exception, match="VJP rule of 'sqrt'") as info:
            step(jnp.array([0.0, 1.0]))
    assert "VJP rule of 'sin'" not in str(info.value)  # ordered callbacks: the first offender raises
    assert _where(masked_sqrt_of_sin, "jnp.sqrt") in str(info.value)


def test_off_by_default_and_switchable_off_inside():
    assert np.isnan(funcgrad.grad(masked_sqrt)(0.0))
    with funcgrad.debug_nans():
        with funcgrad.debug_nans(False):
            assert np.isnan(funcgrad.grad(masked_sqrt)(0.0))


def test_second_order_nan_is_named_too():
    f = lambda x: jnp.sum(jnp.where(x > 0, x * jnp.sqrt(x), 0.0))
    h = lambda x: jnp.vdot(funcgrad.grad(f)(x), jnp.ones(2))
    x = jnp.array([1.0, 0.0])
    with funcgrad.debug_nans():
        with pytest.raises(Exception, match="VJP rule of 'sqrt'"):
            funcgrad.grad(h)(x)
    # leaving debug mode drops graphs traced with the checks in them
    np.testing.assert_array_equal(funcgrad.grad(h)(x), jax.grad(lambda x: jnp.vdot(jax.grad(f)(x), jnp.ones(2)))(x))


def test_a_nan_output_cotangent_is_explained():
    with funcgrad.debug_nans():
        _, pullback = funcgrad.vjp(jnp.sin, jnp.ones(3))
        with pytest.raises(NonFiniteGradientError, match="already NaN/Inf"):
            pullback(jnp.array([1.0, jnp.nan, 1.0]))
