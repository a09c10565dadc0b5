"""Hot calls: a signature's second eager call runs as one compiled program (funcgrad.api.hot).

Checked here: the compiled path gives the eager path's numbers (within rounding: XLA fuses) on every
model of tests/models.py and on control-flow programs; the first call of every signature stays eager;
what must stay eager does (NaN hunting, Python control flow on values, results a program cannot return,
calls inside transformations); jax.debug.print still prints each call; the switch, cache_info and the
bound of the table.
"""

from __future__ import annotations

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import funcgrad
from funcgrad.core import hot_calls as hot_table
from tests import models


@pytest.fixture(autouse=True)
def _fresh_table():
    funcgrad.clear_cache()
    previous = funcgrad.set_hot_compilation(True)
    yield
    funcgrad.set_hot_compilation(previous)
    funcgrad.clear_cache()


def _entry(name):
    found = [e for e in funcgrad.cache_info().hot if e.name == name]
    assert len(found) == 1, funcgrad.cache_info().hot
    return found[0]


def _assert_trees_close(got, want, rtol=2e-5, atol=1e-6):
    got_leaves, got_tree = jax.tree_util.tree_flatten(got)
    want_leaves, want_tree = jax.tree_util.tree_flatten(want)
    assert got_tree == want_tree
    for g, w in zip(got_leaves, want_leaves):
        assert jnp.result_type(g) == jnp.result_type(w)
        assert getattr(g, "weak_type", False) == getattr(w, "weak_type", False)
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=rtol, atol=atol)


def _eager(vg, *args):
    with funcgrad.hot_compilation(False):
        return vg(*args)


# ---------------------------------------------------------------- same numbers


def _model_cases():
    key = jax.random.PRNGKey(0)
    k1, k2, k3 = jax.random.split(key, 3)
    mynet_w = models.init_mynet(k1)
    x1 = jax.random.normal(k2, (3, 10, 20))
    xs = jax.random.normal(k2, (16, 3, 10, 20))
    labels = jax.random.randint(k3, (16,), 0, 10)
    mlp_w = models.init_mlp(k1, [12, 32, 32, 5])
    block = models.init_transformer_block(k1, 16)
    cnn_w = models.init_cnn(k1)
    images = jax.random.normal(k2, (4, 1, 12, 12))
    return {
        "mynet, 1 example": (models.mse_loss, (mynet_w, x1, jnp.ones(10))),
        "mynet, batch": (models.batched_xent, (mynet_w, xs, labels)),
        "mlp": (lambda p, x: jnp.mean(models.mlp(p, x, jnp.tanh) ** 2), (mlp_w, jax.random.normal(k3, (8, 12)))),
        "cnn": (lambda p, x: jnp.mean(models.cnn(p, x) ** 2), (cnn_w, images)),
        "transformer block": (
            lambda p, x: jnp.mean(models.transformer_block(p, x) ** 2),
            (block, jax.random.normal(k3, (8, 16))),
        ),
    }


@pytest.mark.parametrize("name", list(_model_cases()))
def test_the_compiled_path_agrees_with_the_eager_path_on_every_model(name):
    loss, args = _model_cases()[name]
    vg = funcgrad.value_and_grad(loss)
    first = vg(*args)  # eager: the signature's first call
    assert funcgrad.cache_info().compiled == 0
    second = vg(*args)  # compiled now
    assert funcgrad.cache_info().compiled == 1
    third = vg(*args)  # the compiled program again
    _assert_trees_close(second, first)
    _assert_trees_close(third, _eager(vg, *args))
    _assert_trees_close(third, jax.jit(jax.value_and_grad(loss))(*args), rtol=1e-4, atol=1e-5)


def _control_flow_loss(w, xs, flag):
    def step(h, x):
        h = jnp.tanh(w["A"] @ h + x)
        h = lax.cond(jnp.sum(h) > 0, lambda v: v * 2.0, lambda v: jnp.sin(v), h)
        return h, jnp.sum(h**2)

    h, ys = lax.scan(step, jnp.zeros(4), xs)
    h = lax.fori_loop(0, 3, lambda i, v: v + 0.1 * jnp.cos(v * i), h)
    if flag:  # a Python flag (a constant of the compiled program)
        h = h * 3.0
    return jnp.sum(ys) + jnp.sum(h)


@pytest.mark.parametrize("flag", [True, False])
def test_the_compiled_path_agrees_on_a_control_flow_program(flag):
    w = {"A": jax.random.normal(jax.random.PRNGKey(1), (4, 4)) * 0.5}
    xs = jax.random.normal(jax.random.PRNGKey(2), (6, 4))
    g = funcgrad.grad(_control_flow_loss)
    first = g(w, xs, flag)
    hot = [g(w, xs, flag) for _ in range(3)]
    assert _entry("_control_flow_loss").compiled == 1
    for h in hot:
        _assert_trees_close(h, first)
    _assert_trees_close(hot[-1], jax.grad(_control_flow_loss)(w, xs, flag), rtol=1e-5, atol=1e-6)


def test_has_aux_allow_int_argnums_and_weak_types_come_back_as_eagerly():
    def loss(w, b, n):
        out = jnp.sum(jnp.sin(w) * b) * n
        return out, {"out": out, "twice": 2 * w}

    w, b = jnp.arange(3.0), jnp.float32(0.5)
    vg = funcgrad.value_and_grad(loss, argnums=(0, 1), has_aux=True)
    first = vg(w, b, 3)
    second = vg(w, b, 3)
    assert _entry("loss").compiled == 1
    _assert_trees_close(second, first)
    # a weakly typed Python-float argument is differentiated as a weak float32 on both paths
    g = funcgrad.grad(lambda x: x * x)
    eager, hot = g(3.0), (g(3.0), g(3.0))[1]
    assert hot.weak_type and eager.weak_type and float(hot) == float(eager) == 6.0


def test_vjp_forward_and_pullback_compile_and_agree():
    def f(w, x):
        return {"y": jnp.tanh(x @ w), "s": jnp.sum(w**2)}

    w = jax.random.normal(jax.random.PRNGKey(0), (5, 3))
    x = jax.random.normal(jax.random.PRNGKey(1), (4, 5))
    ct = {"y": jnp.ones((4, 3)), "s": jnp.float32(2.0)}
    with funcgrad.hot_compilation(False):
        out0, fn0 = funcgrad.vjp(f, w, x)
        want = fn0(ct)
    results = []
    for _ in range(3):
        out, fn = funcgrad.vjp(f, w, x)
        results.append((out, fn(ct)))
    info = funcgrad.cache_info()
    assert _entry("f").compiled == 1
    assert _entry("_Pullback").compiled == 1, info.hot
    for out, cts in results:
        _assert_trees_close(out, out0)
        _assert_trees_close(cts, want)


# ---------------------------------------------------------------- tiering


def test_the_first_call_of_every_signature_runs_eagerly():
    loss = lambda w: jnp.sum(jnp.tanh(w) ** 2)
    g = funcgrad.grad(loss)
    g(jnp.ones(3))
    assert funcgrad.cache_info().compiled == 0
    g(jnp.ones(3))
    assert funcgrad.cache_info().compiled == 1
    g(jnp.ones(4))  # a new shape: eager, not compiled
    assert funcgrad.cache_info().compiled == 1
    g(jnp.ones(4))
    assert funcgrad.cache_info().compiled == 2
    g(jnp.ones(4, jnp.float16))  # a new dtype: eager again
    assert funcgrad.cache_info().compiled == 2
    (entry,) = funcgrad.cache_info().hot
    assert entry.calls == 5 and entry.compile_s > 0 and entry.eager_reason is None


def test_the_switch_turns_it_off():
    g = funcgrad.grad(lambda w: jnp.sum(w**3))
    with funcgrad.hot_compilation(False):
        for _ in range(3):
            g(jnp.ones(3))
    assert funcgrad.cache_info().compiled == 0
    assert funcgrad.set_hot_compilation(False) is True
    g(jnp.ones(3))
    g(jnp.ones(3))
    assert funcgrad.cache_info().compiled == 0
    assert funcgrad.set_hot_compilation(True) is False


def test_the_environment_variable_turns_it_off():
    code = (
        "import jax.numpy as jnp, funcgrad\n"
        "g = funcgrad.grad(lambda w: jnp.sum(w ** 2))\n"
        "[g(jnp.ones(3)) for _ in range(3)]\n"
        "print(funcgrad.cache_info().compiled)\n"
    )
    env = {**os.environ, "FUNCGRAD_HOT_COMPILE": "0", "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0"


def test_the_table_stays_bounded(monkeypatch):
    monkeypatch.setattr(hot_table.hot_calls, "maxsize", 5)
    for k in range(12):
        scale = float(k)  # a new closure value: a new function for the table
        g = funcgrad.grad(lambda w, scale=scale: jnp.sum(w * scale))
        g(jnp.ones(2))
        g(jnp.ones(2))
    assert len(funcgrad.cache_info().hot) == 5


# ---------------------------------------------------------------- what stays eager


def test_nan_hunting_stops_at_the_right_equation_with_hot_compilation_on():
    def loss(x):
        y = jnp.sqrt(x)  # d sqrt(x)/dx = inf at 0
        return jnp.sum(y)

    x = jnp.array([0.0, 1.0])
    g = funcgrad.grad(loss)
    g(x)
    g(x)  # the compiled program: gives inf without complaint, as jax.grad does
    assert funcgrad.cache_info().compiled == 1
    for _ in range(2):
        with funcgrad.debug_nans(), pytest.raises(funcgrad.NonFiniteGradientError) as info:
            g(x)
        assert "sqrt" in str(info.value) and "test_hot_compilation.py" in str(info.value)


def test_jax_debug_print_prints_on_every_compiled_call(capfd):
    def loss(w):
        jax.debug.print("w0={}", w[0])
        return jnp.sum(w**2)

    g = funcgrad.grad(loss)
    for k in range(3):
        np.testing.assert_allclose(g(jnp.full(2, float(k))), 2.0 * k)
    jax.effects_barrier()
    assert capfd.readouterr().out.count("w0=") == 3
    assert _entry("loss").compiled == 1


def test_python_control_flow_on_values_stays_eager():
    def piecewise(x):
        return jnp.sum(x**2) if x[0] > 0 else jnp.sum(x**3)

    g = funcgrad.grad(piecewise)
    for v in (1.0, -1.0, 2.0, -2.0):
        x = jnp.array([v, 1.0])
        np.testing.assert_allclose(g(x), jax.grad(lambda x: jnp.sum(x**2) if v > 0 else jnp.sum(x**3))(x))
    entry = _entry("piecewise")
    assert entry.compiled == 0 and "concretely" in entry.eager_reason


def test_a_result_a_program_cannot_return_stays_eager():
    def loss(w):
        return jnp.sum(w**2), "a note"

    vg = funcgrad.value_and_grad(loss, has_aux=True)
    for _ in range(3):
        (value, note), g = vg(jnp.ones(2))
        assert note == "a note" and float(value) == 2.0
    entry = _entry("loss")
    assert entry.compiled == 0 and "str" in entry.eager_reason


def test_calls_inside_transformations_leave_the_table_alone():
    g = funcgrad.grad(lambda w: jnp.sum(jnp.sin(w)))
    jax.jit(g)(jnp.ones(3))
    jax.vmap(g)(jnp.ones((2, 3)))
    jax.jit(g)(jnp.ones(3))
    assert funcgrad.cache_info().hot == ()


def test_a_first_call_inside_jit_does_not_teach_the_table_that_tracers_are_arrays(monkeypatch):
    # the array type is found on the first call; found inside a jit trace it would be a tracer type,
    # and every later call inside a transformation would then go into the table
    from funcgrad.api import hot

    monkeypatch.setattr(hot, "_ARRAY_TYPES", {np.ndarray})
    g = funcgrad.grad(lambda w: jnp.sum(jnp.sin(w)))
    jax.jit(g)(jnp.ones(3))
    assert not any(issubclass(t, jax.core.Tracer) for t in hot._ARRAY_TYPES)
    jax.jit(g)(jnp.ones(4))
    jax.vmap(g)(jnp.ones((2, 3)))
    assert funcgrad.cache_info().hot == ()
    g(jnp.ones(3))
    assert any(t is type(jnp.ones(3)) for t in hot._ARRAY_TYPES)


def test_key_array_arguments_compile():
    # typed PRNG keys are jax.Arrays without a weak_type
    def f(w, key):
        return jnp.sum(w * jax.random.normal(key, w.shape))

    g = funcgrad.grad(f)
    key = jax.random.key(0)
    w = jnp.arange(3.0)
    answers = [g(w, key) for _ in range(3)]
    assert _entry("f").compiled == 1
    for a in answers:
        np.testing.assert_allclose(a, jax.random.normal(key, (3,)), rtol=1e-6)


def test_a_rebound_global_gives_a_new_entry_and_the_new_answer():
    global _SCALE
    g = funcgrad.grad(_scaled)
    for value in (1.0, 1.0, 2.0, 2.0, 2.0, 3.0):
        _SCALE = value
        np.testing.assert_array_equal(g(jnp.ones(2)), jnp.full(2, value))
    _SCALE = 1.0


_SCALE = 1.0


def _scaled(w):
    return jnp.sum(w * _SCALE)


def test_importing_funcgrad_and_a_first_grad_call_leave_jax_config_open_until_then():
    # equinox's conftest sets jax_num_cpu_devices after importing funcgrad: import must start no backend
    code = (
        "import jax, funcgrad\n"
        "jax.config.update('jax_num_cpu_devices', 2)\n"
        "import jax.numpy as jnp\n"
        "g = funcgrad.grad(lambda w: jnp.sum(w ** 2))\n"
        "print(len(jax.devices()), [float(v) for v in g(jnp.ones(2))])\n"
    )
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "2 [2.0, 2.0]"
