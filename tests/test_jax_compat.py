"""The boundary to JAX (funcgrad/core/jax_compat.py + tracer.py), run on the oldest and newest supported JAX.

These are the places where JAX releases differ in what the tracer reads; each test states the
convention funcgrad presents to the rest of the code, whatever the release.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import funcgrad
from funcgrad.core import jax_compat


def _pytree_psum(a, b):
    s, t = jax.vmap(lambda x, y: lax.psum((x * x, jnp.sin(y)), "i"), axis_name="i")(a, b)
    return jnp.sum(s * 3.0) + jnp.sum(t**2)


def test_psum_of_a_pytree_is_one_equation_per_leaf():
    # jax < 0.10 binds one multiple-results psum for all the leaves; newer releases one psum per leaf:
    # the tracer always presents the newer form, so the psum rule sees one operand
    a, b = jnp.arange(3.0), jnp.linspace(0.0, 1.0, 3)
    graph = funcgrad.trace(_pytree_psum)(a, b)
    psums = [e for e in graph.eqns if e.primitive == "psum"]
    assert len(psums) == 2 and all(len(e.inputs) == 1 and not e.multiple_results for e in psums)
    for mine, ref in zip(funcgrad.grad(_pytree_psum, (0, 1))(a, b), jax.grad(_pytree_psum, (0, 1))(a, b)):
        np.testing.assert_allclose(mine, ref, rtol=1e-6)


def test_equations_carry_jaxs_multiple_results_flag():
    def f(x):
        (y,) = lax.split(x, (4,))  # one output, but a multiple-results primitive
        return jnp.sum(jnp.sin(y))

    graph = funcgrad.trace(f)(jnp.ones(4))
    flags = {e.primitive: e.multiple_results for e in graph.eqns}
    assert flags["split"] is True and flags["sin"] is False
    np.testing.assert_allclose(funcgrad.grad(f)(jnp.ones(4)), jax.grad(f)(jnp.ones(4)))


def test_canonical_names_and_inlined_calls():
    assert jax_compat.canonical_name("pjit") == "jit"
    assert jax_compat.canonical_name("custom_vjp_call_jaxpr") == "custom_vjp_call"
    assert jax_compat.canonical_name("sin") == "sin"
    graph = funcgrad.trace(lambda x: jax.jit(jnp.sin)(x) * 2)(jnp.ones(3))
    assert [e.primitive for e in graph.eqns] == ["sin", "mul"]  # the jit call is inlined on every release
    assert "jit(sin)" in graph.eqns[0].source.scope


def test_custom_vjp_residuals_forwarded_from_inputs_and_consts():
    # input_fwds index into consts + args (jax >= 0.7) or args alone (before): the layout is absorbed
    @jax.custom_vjp
    def f(x, y):
        return x * y

    f.defvjp(lambda x, y: (x * y, (x, y)), lambda res, g: (g * res[1], g * res[0]))
    w = jnp.array([1.0, 2.0])
    loss = lambda x: jnp.sum(f(x, w) * w)  # w is a closed-over constant and a forwarded residual
    np.testing.assert_allclose(funcgrad.grad(loss)(jnp.ones(2)), jax.grad(loss)(jnp.ones(2)))


def test_custom_vjp_fwd_traced_at_bind_names_the_values_it_closes_over():
    # while funcgrad traces, a custom_vjp's fwd is traced as the call is bound, and the tracer learns
    # which equation input each traced value fwd closes over is; outside funcgrad JAX's lazy trace is left
    # alone, and a symbolic_zeros fwd (which needs the perturbed flags) is not traced early
    runs = []

    def loss(w, x, symbolic_zeros=False):
        h = jnp.cos(x)

        @jax.custom_vjp
        def f(a):
            return a * x

        def fwd(a):
            runs.append(1)
            return f(a), h

        f.defvjp(fwd, lambda h, g: (g * h,), symbolic_zeros=symbolic_zeros)
        return f(w)

    w, x = jnp.ones(3), jnp.arange(3.0)
    jax.make_jaxpr(loss)(w, x)
    assert runs == []
    graph = funcgrad.trace(loss)(w, x)
    assert runs == [1]
    (eqn,) = [e for e in graph.eqns if e.primitive == "custom_vjp_call"]
    (cos,) = [e for e in graph.eqns if e.primitive == "cos"]
    total = lambda w, x: loss(w, x).sum()  # noqa: E731
    if jax_compat.JAX_VERSION[:2] < (0, 10) and eqn.params.get("fwd_closure_lost"):
        # older releases rename a finished trace's variables: a clear refusal, not a dead tracer
        with pytest.raises(funcgrad.TracingError, match="(?s)closes over values .* fix: pass"):
            funcgrad.grad(total)(w, x)
    else:
        closed = eqn.inputs[len(eqn.inputs) - len(eqn.params["fwd_closure"]) :]  # h, and x (fwd calls f)
        assert {id(a) for a in closed} == {id(cos.outputs[0]), id(graph.inputs[1])}
        np.testing.assert_allclose(funcgrad.grad(total)(w, x), jnp.cos(x))
    runs.clear()
    graph = funcgrad.trace(lambda w, x: loss(w, x, symbolic_zeros=True))(w, x)
    assert runs == [] and "fwd_closure" not in graph.eqns[-1].params


def test_user_lines_point_at_the_users_code():
    graph = funcgrad.trace(lambda x: jnp.sin(x))(jnp.ones(2))  # this line
    assert graph.eqns[0].source.file.endswith("test_jax_compat.py")
    assert jax_compat.JAX_VERSION >= (0, 4, 38)


# ----------------------------------------------------------- a JAX newer than the tested ones


def test_known_params_file_is_current_on_the_newest_tested_jax():
    from funcgrad.core import jax_compat as jc

    if jc.JAX_VERSION[:2] != jc.NEWEST_TESTED:
        pytest.skip(f"the file is written on JAX {jc.NEWEST_TESTED}.x; this is {jax.__version__}")
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "scripts/known_params.py", "--check"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_on_an_untested_jax_a_parameter_no_rule_was_written_for_is_refused(monkeypatch):
    from funcgrad.core import jax_compat as jc

    if jc.JAX_VERSION[:2] != jc.NEWEST_TESTED:  # older releases have other parameter names
        pytest.skip(f"pretends a release newer than {jc.NEWEST_TESTED}.x; this is {jax.__version__}")
    monkeypatch.setattr(jc, "UNTESTED_JAX", True)
    mlp = lambda w, x: jnp.sum(jnp.tanh(x @ w) ** 2)  # noqa: E731
    w, x = jnp.ones((3, 2)), jnp.ones((4, 3))
    np.testing.assert_allclose(funcgrad.grad(mlp)(w, x), jax.grad(mlp)(w, x), rtol=1e-6)  # known params: fine
    jc.unknown_params("tanh", {})  # load the file
    known = {**jc._known_params, "tanh": []}  # as if tanh's `accuracy` had appeared after the tested JAX
    monkeypatch.setattr(jc, "_known_params", known)
    funcgrad.clear_cache()
    with pytest.raises(funcgrad.UntestedJAXError, match="'tanh'.*accuracy") as e:
        funcgrad.grad(mlp)(w, x)
    assert isinstance(e.value, NotImplementedError) and "check_grads" in str(e.value)
    monkeypatch.setenv("FUNCGRAD_ALLOW_UNKNOWN_PARAMS", "1")
    np.testing.assert_allclose(funcgrad.grad(mlp)(w, x), jax.grad(mlp)(w, x), rtol=1e-6)


def test_importing_with_an_untested_jax_warns(monkeypatch):
    from funcgrad.core import jax_compat as jc

    monkeypatch.setattr(jc, "UNTESTED_JAX", True)
    with pytest.warns(funcgrad.UntestedJAXWarning, match="tested with JAX up to"):
        funcgrad._warn_if_jax_is_untested()
    monkeypatch.setattr(jc, "UNTESTED_JAX", False)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        funcgrad._warn_if_jax_is_untested()
