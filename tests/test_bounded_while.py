"""``funcgrad.while_loop``: reverse mode through a bounded while loop, against a masked ``lax.scan``.

The reference is the same loop written as a ``lax.scan`` of ``max_steps`` steps whose body is a
``lax.cond`` on the loop's condition, differentiated by ``jax.grad``: for every trip count up to
``max_steps`` it computes the same function, and JAX can differentiate it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import funcgrad
from funcgrad.api.bounded_while import STRATEGIES
from tests.conftest import x64

MAX_STEPS = 10
TRIPS = (0, 1, 6, MAX_STEPS)


def masked_scan(cond, body, init, max_steps):
    def step(carry, _):
        return lax.cond(cond(carry), body, lambda c: c, carry), None

    return lax.scan(step, init, None, length=max_steps)[0]


def rnn_loss(loop):
    """A recurrent update run while its counter is below ``stop``; ``w`` and ``b`` are closed over."""

    def loss(params, x0, stop):
        w, b = params

        def body(carry):
            i, x, acc = carry
            x = jnp.tanh(w @ x + b) + 0.1 * x
            return i + 1, x, acc + jnp.sum(x**2)

        _, x, acc = loop(lambda c: c[0] < stop, body, (0, x0, jnp.zeros((), x0.dtype)))
        return jnp.sum(jnp.sin(x)) + 0.01 * acc

    return loss


def bounded(strategy, max_steps=MAX_STEPS):
    return lambda c, b, i: funcgrad.while_loop(c, b, i, max_steps=max_steps, strategy=strategy)


REFERENCE = rnn_loss(lambda c, b, i: masked_scan(c, b, i, MAX_STEPS))


def _args():
    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    w = jax.random.normal(k1, (4, 4), jnp.float64) * 0.6
    b = jax.random.normal(k2, (4,), jnp.float64) * 0.1
    return (w, b), jax.random.normal(k3, (4,), jnp.float64)


def assert_close(a, b):
    jax.tree.map(lambda u, v: np.testing.assert_allclose(u, v, rtol=1e-10, atol=1e-12), a, b)


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("trips", TRIPS)
def test_gradients_equal_the_masked_scans(strategy, trips):
    with x64():
        params, x0 = _args()
        loss = rnn_loss(bounded(strategy))
        expected = jax.value_and_grad(REFERENCE, (0, 1))(params, x0, trips)
        assert_close(funcgrad.value_and_grad(loss, (0, 1))(params, x0, trips), expected)
        assert_close(jax.jit(funcgrad.value_and_grad(loss, (0, 1)))(params, x0, trips), expected)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_under_vmap_each_example_has_its_own_trip_count(strategy):
    with x64():
        params, x0 = _args()
        trips = jnp.array(TRIPS)
        loss = rnn_loss(bounded(strategy))
        ours = jax.jit(jax.vmap(funcgrad.grad(loss), (None, None, 0)))(params, x0, trips)
        assert_close(ours, jax.vmap(jax.grad(REFERENCE), (None, None, 0))(params, x0, trips))
        # and the vmapped batch of initial states, differentiated per example
        x0s = jnp.stack([x0 * (k + 1) for k in range(len(TRIPS))])
        per_example = jax.vmap(funcgrad.grad(loss, 1), (None, 0, 0))(params, x0s, trips)
        assert_close(per_example, jax.vmap(jax.grad(REFERENCE, 1), (None, 0, 0))(params, x0s, trips))


def test_the_strategies_give_identical_gradients_on_a_long_loop():
    with x64():
        params, x0 = _args()
        grads = [jax.jit(funcgrad.grad(rnn_loss(bounded(s, max_steps=200))))(params, x0, 137) for s in STRATEGIES]
        for g in grads[1:]:
            assert_close(g, grads[0])
        assert_close(grads[0], jax.grad(rnn_loss(lambda c, b, i: masked_scan(c, b, i, 200)))(params, x0, 137))


def test_jax_grad_differentiates_it_too():
    # a jax.custom_vjp whose backward pass is funcgrad's sweep: jax.grad can use it as well
    with x64():
        params, x0 = _args()
        assert_close(jax.grad(rnn_loss(bounded("sqrt")))(params, x0, 6), jax.grad(REFERENCE)(params, x0, 6))


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_more_steps_than_max_steps_gives_the_exact_value_and_nan_gradients(strategy):
    with x64():
        params, x0 = _args()
        loss = rnn_loss(bounded(strategy))
        unbounded = rnn_loss(lambda c, b, i: masked_scan(c, b, i, MAX_STEPS + 3))
        value, grads = funcgrad.value_and_grad(loss, (0, 1))(params, x0, MAX_STEPS + 3)
        np.testing.assert_allclose(value, unbounded(params, x0, MAX_STEPS + 3), rtol=1e-12)  # not truncated
        assert all(bool(jnp.all(jnp.isnan(g))) for g in jax.tree.leaves(grads))


def test_newton_iterations_differentiate_to_the_implicit_derivative():
    # sqrt(a) by Newton's method until converged: d sqrt(a) / da = 1 / (2 sqrt(a))
    def newton_sqrt(a):
        return funcgrad.while_loop(
            lambda x: jnp.abs(x * x - a) > 1e-12, lambda x: 0.5 * (x + a / x), a, max_steps=60, strategy="log"
        )

    with x64():
        for a in (2.0, 9.0, 0.3):
            np.testing.assert_allclose(funcgrad.grad(newton_sqrt)(a), 0.5 / np.sqrt(a), rtol=1e-9)


def test_integer_and_condition_state_get_no_gradient():
    # the carry's integer counter and the condition's closed-over threshold: float0 / zero cotangents
    def loss(x, limit):
        n, y = funcgrad.while_loop(lambda c: c[1] < limit, lambda c: (c[0] + 1, c[1] * 1.5), (0, x), max_steps=50)
        return y * n

    with x64():
        ours = funcgrad.grad(loss, (0, 1))(1.0, 7.0)
        theirs = jax.grad(loss_ref, (0, 1))(1.0, 7.0)
        assert_close(ours, theirs)


def loss_ref(x, limit):
    n, y = masked_scan(lambda c: c[1] < limit, lambda c: (c[0] + 1, c[1] * 1.5), (0, x), 50)
    return y * n


def test_the_forward_pass_keeps_what_its_strategy_says():
    # the kept carries, as XLA allocates them: every step's (all), about 2 sqrt(N) (sqrt), about 2 log N (log)
    n, width = 1024, 64
    w, x0 = jnp.eye(width) * 0.9, jnp.ones(width)

    def temp_bytes(strategy):
        def loss(w, x0):
            body = lambda c: (c[0] + 1, jnp.tanh(w @ c[1]))
            return jnp.sum(funcgrad.while_loop(lambda c: c[0] < 700, body, (0, x0), max_steps=n, strategy=strategy)[1])

        return jax.jit(funcgrad.grad(loss)).lower(w, x0).compile().memory_analysis().temp_size_in_bytes

    carry = width * 4
    all_, sqrt, log = (temp_bytes(s) for s in STRATEGIES)
    assert all_ >= n * carry  # every carry
    assert sqrt < 4 * 32 * carry  # 2 sqrt(1024) = 64 carries, with room for XLA's temporaries
    assert log < sqrt


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"max_steps": -1}, TypeError),
        ({"max_steps": 2.5}, TypeError),
        ({"max_steps": 3, "strategy": "tree"}, ValueError),
    ],
)
def test_bad_arguments_say_what_to_pass(kwargs, error):
    with pytest.raises(error, match="max_steps|strategy"):
        funcgrad.while_loop(lambda c: c < 3.0, lambda c: c + 1.0, 0.0, **kwargs)


def test_debug_nans_stops_at_the_users_loop_when_it_overflows():
    import inspect

    def loss(x):
        return funcgrad.while_loop(lambda c: c < 100.0, lambda c: c * x, x, max_steps=3)  # marker

    line = inspect.getsourcelines(loss)[1] + 1
    with pytest.raises(funcgrad.NonFiniteGradientError, match=f"{__file__}:{line}"):
        with funcgrad.debug_nans():
            funcgrad.grad(loss)(1.5)
    assert np.isfinite(funcgrad.grad(loss)(11.0))  # two steps: within the bound
