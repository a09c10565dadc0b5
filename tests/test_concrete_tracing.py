"""Python control flow on values, outside jit: funcgrad records the branch taken, as jax.grad does.

funcgrad traces abstractly (like jax.jit) and, when that fails on Python control flow and the
arguments are concrete, records the function concretely (funcgrad/core/concrete.py). Under
jax.jit the abstract trace and its clear error stay.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import funcgrad
from funcgrad.core import call as fg_call

# --------------------------------------------------------------- the functions


def piecewise_quadratic(x):
    # the lecture's piecewise model: one formula below the kink, another above
    if x < 2:
        return x**2
    return 3 * x - 2


def leaky_unit(w, x):
    # a hand-written leaky relu unit: the branch depends on the weighted sum's value
    s = jnp.dot(w, x)
    if s > 0:
        return jnp.tanh(s) * 2.0
    return 0.1 * s


def newton_sqrt(a):
    # a while loop on values: iterate until converged (the trip count depends on a)
    y = a
    while jnp.abs(y * y - a) > 1e-5 * a:
        y = 0.5 * (y + a / y)
    return y


def recursive_depth(x, depth=None):
    # the recursion depth is decided by the value of x
    if depth is None:
        depth = int(x)
    if depth == 0:
        return jnp.sin(x)
    return jnp.cos(recursive_depth(x, depth - 1)) * x


def early_exit(x):
    # a Python loop left early when a running sum passes a threshold
    s = 0.0
    for i in range(x.shape[0]):
        s = s + x[i] ** 2
        if s > 3.0:
            break
    return s


def elementwise_branches(x):
    # a Python loop over entries with an if on each entry
    total = 0.0
    for i in range(x.shape[0]):
        total = total + (jnp.exp(x[i]) if x[i] > 0 else x[i] ** 3)
    return total


def mlp_with_switch(params, x):
    # a pytree of parameters; the head is chosen by the value of the hidden activations
    h = jnp.tanh(params["W1"] @ x + params["b1"])
    if jnp.mean(h) > 0:
        return jnp.sum((params["W2"] @ h) ** 2)
    return jnp.sum(params["W2"] @ h)


def index_of_value(x):
    # int() of a value, used as a Python index
    k = int(jnp.argmax(x))
    return x[k] ** 2 + jnp.sum(jnp.sin(x))


_BRANCHES = [lambda x: x * 3.0, lambda x: jnp.sin(x) + 1.0, lambda x: x**3]


def branch_by_index(x):
    # a Python list indexed by a value (__index__ on it; lax_control_flow_test.testSwitchGradWithWeakTypeMismatch)
    return _BRANCHES[x.astype(jnp.int32)](x)


def _params(sign):
    rng = np.random.default_rng(0)
    return {
        "W1": jnp.asarray(rng.normal(size=(4, 3)), jnp.float32),
        "b1": jnp.full((4,), sign * 2.0, jnp.float32),
        "W2": jnp.asarray(rng.normal(size=(2, 4)), jnp.float32),
    }


X3 = jnp.array([0.5, -1.0, 0.25])

# (name, function, argument tuples taking different branches)
CASES = [
    ("piecewise_quadratic", piecewise_quadratic, [(1.5,), (3.0,), (jnp.float32(-0.5),)]),
    ("leaky_unit", leaky_unit, [(jnp.array([1.0, 2.0]), jnp.array([0.5, 0.1])), (jnp.array([1.0, -2.0]), X3[:2])]),
    ("newton_sqrt", newton_sqrt, [(jnp.float32(2.0),), (jnp.float32(30.0),)]),
    ("recursive_depth", recursive_depth, [(jnp.float32(0.5),), (jnp.float32(3.2),)]),
    ("early_exit", early_exit, [(jnp.linspace(0.0, 2.0, 6),), (jnp.linspace(0.0, 0.3, 6),)]),
    ("elementwise_branches", elementwise_branches, [(X3,), (-X3,)]),
    ("mlp_with_switch", mlp_with_switch, [(_params(1.0), X3), (_params(-1.0), X3)]),
    ("index_of_value", index_of_value, [(X3,), (-X3,)]),
    ("branch_by_index", branch_by_index, [(0.5,), (1.5,), (jnp.float32(2.25),)]),
]


@pytest.mark.parametrize("name,fun,calls", CASES, ids=[c[0] for c in CASES])
def test_grad_equals_jax_grad_on_every_branch(name, fun, calls):
    # called alternately: a graph recorded for one branch is never reused for another
    for args in [*calls, *calls[::-1]]:
        got = funcgrad.grad(fun)(*args)
        want = jax.grad(fun)(*args)
        jax.tree_util.tree_map(lambda g, w: np.testing.assert_allclose(g, w, rtol=2e-5, atol=1e-6), got, want)


@pytest.mark.parametrize("name,fun,calls", CASES, ids=[c[0] for c in CASES])
def test_under_jit_the_clear_error_stays(name, fun, calls):
    with pytest.raises((jax.errors.ConcretizationTypeError, jax.errors.TracerIntegerConversionError)):
        jax.jit(jax.grad(fun))(*calls[0])  # JAX refuses it too
    with pytest.raises(funcgrad.TracingError) as info:
        jax.jit(funcgrad.grad(fun))(*calls[0])
    message = str(info.value)
    assert "test_concrete_tracing.py" in message and "jnp.where" in message and "lax.cond" in message


def test_value_and_grad_vjp_jacrev_hessian_and_grad_of_grad():
    for x in (1.5, 3.0):
        xa = jnp.float32(x)
        np.testing.assert_allclose(
            funcgrad.value_and_grad(piecewise_quadratic)(xa), jax.value_and_grad(piecewise_quadratic)(xa)
        )
        out, pull = funcgrad.vjp(piecewise_quadratic, xa)
        out_j, pull_j = jax.vjp(piecewise_quadratic, xa)
        np.testing.assert_allclose(out, out_j)
        np.testing.assert_allclose(pull(jnp.float32(2.0))[0], pull_j(jnp.float32(2.0))[0])
        np.testing.assert_allclose(funcgrad.jacrev(piecewise_quadratic)(xa), jax.jacrev(piecewise_quadratic)(xa))
        np.testing.assert_allclose(funcgrad.hessian(piecewise_quadratic)(xa), jax.hessian(piecewise_quadratic)(xa))
        gg = funcgrad.grad(funcgrad.grad(piecewise_quadratic))(xa)
        np.testing.assert_allclose(gg, jax.grad(jax.grad(piecewise_quadratic))(xa))
    np.testing.assert_allclose(
        funcgrad.jacrev(elementwise_branches)(X3), jax.jacrev(elementwise_branches)(X3), rtol=1e-6
    )


def test_trace_shows_the_branch_taken():
    below = [e.primitive for e in funcgrad.trace(piecewise_quadratic)(jnp.float32(1.5)).eqns]
    above = [e.primitive for e in funcgrad.trace(piecewise_quadratic)(jnp.float32(3.0)).eqns]
    assert "integer_pow" in below and "integer_pow" not in above
    assert "mul" in above and "sub" in above
    # the recorded equations point at the user's lines
    graph = funcgrad.trace(piecewise_quadratic)(jnp.float32(3.0))
    assert all(e.source.file is not None and e.source.file.endswith("test_concrete_tracing.py") for e in graph.eqns)


def test_tags_jit_and_custom_jvp_inside_a_concretely_traced_function():
    @jax.jit
    def inner(x):
        return jnp.sin(x) * 2

    def f(x):
        h = jax.nn.relu(funcgrad.tag(inner(x), "h"))
        if jnp.max(h) > 0.5:
            return jnp.sum(h**2)
        return jnp.sum(h)

    x = jnp.array([0.3, -0.2, 0.9])
    np.testing.assert_allclose(funcgrad.grad(f)(x), jax.grad(f)(x), rtol=1e-6)
    graph = funcgrad.trace(f)(x)
    assert "tag" in [e.primitive for e in graph.eqns] and "custom_jvp_call" in [e.primitive for e in graph.eqns]
    assert any("jit(inner)" in e.source.scope for e in graph.eqns)
    # dL/dh by a zero perturbation, as jax.grad gives it
    h = jax.nn.relu(inner(x))
    np.testing.assert_allclose(funcgrad.sensitivities(f)(x)["h"], 2 * h * (h > 0), rtol=1e-6)


def test_the_abstract_attempt_is_made_once_per_signature(monkeypatch):
    funcgrad.clear_cache()
    attempts = []
    real = fg_call.trace_flat

    def counting(fun, args):
        attempts.append(1)
        return real(fun, args)

    monkeypatch.setattr(fg_call, "trace_flat", counting)
    size = funcgrad.cache_info().size
    for x in (1.5, 3.0, 1.0, 4.0):
        funcgrad.grad(piecewise_quadratic)(jnp.float32(x))
    assert len(attempts) == 1  # later calls go straight to the concrete trace
    assert funcgrad.cache_info().size == size  # and no recorded branch is cached


def test_vmap_of_grad_refuses_as_jax_does():
    xs = jnp.array([1.0, 3.0])
    with pytest.raises(jax.errors.ConcretizationTypeError):
        jax.vmap(jax.grad(piecewise_quadratic))(xs)
    with pytest.raises(funcgrad.TracingError):
        jax.vmap(funcgrad.grad(piecewise_quadratic))(xs)


def test_nan_hunting_works_on_a_concretely_traced_function():
    f = lambda x: jnp.sqrt(x) if x >= 0 else x  # noqa: E731
    with funcgrad.debug_nans():
        with pytest.raises(funcgrad.NonFiniteGradientError, match="'sqrt'"):
            funcgrad.grad(f)(jnp.float32(0.0))
    np.testing.assert_allclose(funcgrad.grad(f)(jnp.float32(-1.0)), 1.0)
