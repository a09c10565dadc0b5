"""funcgrad.check_grads, naming the failing equation, check_rule / rule_coverage, testing.assert_grads_match."""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import funcgrad
from funcgrad.checking.finite_differences import fd_step
from funcgrad.rules.registry import vjp_rules
from funcgrad.testing import assert_grads_match
from tests.conftest import x64


def _wrong_sin_vjp(ct, x, *, out, **params):
    return (ct * jnp.sin(x),)  # wrong on purpose: d sin = cos


def _line_of(marker: str, fn) -> int:
    """The line in this file where ``marker`` appears inside ``fn``."""
    lines, start = inspect.getsourcelines(fn)
    return start + next(i for i, text in enumerate(lines) if marker in text)


def _model(params, x):
    h = jnp.tanh(x @ params["w1"] + params["b1"])
    logits = h @ params["w2"] + params["b2"]
    return -jnp.mean(jax.nn.log_softmax(logits)[:, 0]) + 1e-3 * jnp.sum(params["w1"] ** 2)


def _params(rng, hidden=6, dtype=np.float32):
    return {
        "w1": rng.normal(size=(4, hidden)).astype(dtype),
        "b1": rng.normal(size=(hidden,)).astype(dtype),
        "w2": rng.normal(size=(hidden, 3)).astype(dtype),
        "b2": np.zeros(3, dtype),
    }


def sin_model(x):
    y = jnp.sin(x) * 2.0  # sin line
    return jnp.sum(y * x)


# ------------------------------------------------------------------ check_grads


def test_wrong_rule_is_caught_and_the_report_names_primitive_and_line():
    x = jnp.linspace(-1.0, 1.0, 5)
    with funcgrad.defvjp("sin", _wrong_sin_vjp):
        with pytest.raises(AssertionError) as info:
            funcgrad.check_grads(sin_model, (x,))
        report = funcgrad.check_grads(sin_model, (x,), raise_on_failure=False)
    message = str(info.value)
    where = f"{__file__}:{_line_of('# sin line', sin_model)}"
    assert report.culprit is not None and report.culprit.primitive == "sin"
    assert report.culprit.where == where
    assert "'sin'" in message and where in message
    # per-leaf report: the path, the worst index, and which number came from which method
    assert message.count("x  f32[5]: FAILED") == 1
    assert "at index (" in message
    for method in ("funcgrad =", "jax =", "finite differences ="):
        assert method in message
    # the worst index really is where funcgrad and jax differ most
    leaf = report.failures[0]
    cmp = next(c for c in leaf.comparisons if c.reference == "jax")
    worst = np.argmax(np.abs(leaf.values["funcgrad"] - leaf.values["jax"]))
    assert cmp.index == (int(worst),)
    # with the rule restored, the same check passes
    assert funcgrad.check_grads(sin_model, (x,)).ok


def test_correct_float32_model_passes_with_default_tolerances():
    rng = np.random.default_rng(0)
    params, x = _params(rng), rng.normal(size=(5, 4)).astype(np.float32)
    report = funcgrad.check_grads(_model, (params, x), argnums=0)
    assert report.ok and report.culprit is None
    assert [leaf.path for leaf in report.leaves] == ["params['b1']", "params['b2']", "params['w1']", "params['w2']"]
    expected = funcgrad.grad(_model)(params, x)
    for leaf, key in zip(report.leaves, ["b1", "b2", "w1", "w2"]):
        np.testing.assert_array_equal(leaf.values["funcgrad"], expected[key])
        np.testing.assert_allclose(leaf.values["jax"], jax.grad(_model)(params, x)[key], rtol=1e-6)
    # the check left the global x64 flag alone
    assert jnp.ones(2).dtype == jnp.float32


def test_second_order_passes_on_a_correct_model():
    rng = np.random.default_rng(1)
    params, x = _params(rng, hidden=3), rng.normal(size=(2, 4)).astype(np.float32)
    report = funcgrad.check_grads(_model, (params, x), order=2, argnums=0)
    assert report.ok
    assert sum("second order" in leaf.path for leaf in report.leaves) == 4


def test_second_order_only_bug_is_caught_and_named():
    # sin's rule calls cos; a wrong cos rule leaves first-order gradients of sin right, but not second order
    with (
        funcgrad.defvjp("sin", lambda ct, x, *, out, **params: (ct * jnp.cos(x),)),
        funcgrad.defvjp("cos", lambda ct, x, *, out, **params: (ct * jnp.sin(x),)),  # wrong sign
    ):
        report = funcgrad.check_grads(
            lambda x: jnp.sum(jnp.sin(x)), (jnp.linspace(0.1, 1.0, 4),), order=2, raise_on_failure=False
        )
    first, second = report.leaves
    assert first.ok and not second.ok
    assert report.culprit is not None and report.culprit.primitive == "cos" and report.culprit.order == 2


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_low_precision_inputs_get_float64_finite_differences(dtype):
    x = jnp.linspace(0.1, 1.5, 6).astype(dtype)
    f = lambda x: jnp.sum(jnp.sin(x) * x)
    report = funcgrad.check_grads(f, (x,), raise_on_failure=False)
    fd = report.leaves[0].values["finite differences (elementwise)"]
    assert np.all(fd != 0)
    with x64():
        exact = jax.grad(f)(jnp.asarray(np.asarray(x).astype(np.float64)))
    np.testing.assert_allclose(fd, exact, rtol=1e-8)
    jax_vs_fd = [c for c in report.leaves[0].comparisons if c.tested == "jax"]
    assert jax_vs_fd and all(c.ok for c in jax_vs_fd)
    assert report.ok


def test_fd_step_follows_the_dtype_the_function_computes_in():
    with x64():
        x = jnp.ones(3, jnp.float64)
        assert fd_step(lambda x: x * 2, [x], None) == pytest.approx(np.cbrt(np.finfo(np.float64).eps))
        forced = fd_step(lambda x: (x * 2).astype(jnp.float32), [x], None)
        assert forced == pytest.approx(np.cbrt(np.finfo(np.float32).eps))
        assert fd_step(lambda x: x, [x], 1e-3) == 1e-3


def test_fixed_seed_is_deterministic():
    x = jnp.linspace(-1.0, 2.0, 40)  # above the elementwise limit: directional differences only
    f = lambda x: jnp.sum(jnp.exp(jnp.sin(x)))

    def directional(seed):
        leaf = funcgrad.check_grads(f, (x,), seed=seed).leaves[0]
        return leaf.values["finite differences (along the direction)"]

    assert directional(3) == directional(3)
    assert directional(3) != directional(4)


def test_held_fixed_leaves_and_kwargs():
    def f(x, n, *, scale):
        return jnp.sum(jnp.cos(x) ** n) * scale

    report = funcgrad.check_grads(f, (jnp.linspace(0.0, 1.0, 3), jnp.int32(2)), kwargs={"scale": 3.0})
    assert report.ok and [leaf.path for leaf in report.leaves] == ["x"]
    assert any("n (int32)" in note for note in report.notes)


# ---------------------------------------------------------------- check_rule


def test_check_rule_checks_every_case_and_fills_the_coverage_table():
    report = funcgrad.check_rule("max", dtypes=("float32",))
    assert report.ok
    assert [c.case for c in report.cases] == ["random", "broadcast", "scalar", "empty", "kink"]
    row = funcgrad.rule_coverage(["max"]).rows[0]
    assert (row.rule, row.cases, row.failed) == ("vjp", 5, 0)


def test_check_rule_catches_a_wrong_rule_for_a_new_primitive():
    from jax.extend.core import Primitive

    cube_p = Primitive("cube_checked")
    cube_p.def_impl(lambda x: x * x * x)
    cube_p.def_abstract_eval(lambda x: jax.core.ShapedArray(x.shape, x.dtype))
    jax.interpreters.ad.defjvp(cube_p, lambda t, x: 3 * x * x * t)  # JAX's side, the reference
    cube = lambda x: cube_p.bind(x)

    with funcgrad.defvjp("cube_checked", lambda ct, x, *, out, **params: (ct * 2 * x * x,)):  # wrong: 3 x^2
        bad = funcgrad.check_rule(cube, primitive="cube_checked", dtypes=("float32",), raise_on_failure=False)
        assert not bad.ok and "cube_checked" in str(bad)
        table = funcgrad.rule_coverage(["cube_checked"])
        assert table.rows[0].failed > 0 and "cube_checked" in str(table)

    with funcgrad.defvjp("cube_checked", lambda ct, x, *, out, **params: (ct * 3 * x * x,)):
        good = funcgrad.check_rule(cube, primitive="cube_checked", dtypes=("float32",))
        assert good.ok and funcgrad.rule_coverage(["cube_checked"]).rows[0].failed == 0
    assert "cube_checked" not in vjp_rules


def test_check_rule_refuses_unknown_names():
    with pytest.raises(funcgrad.InputError, match="no jax.lax function"):
        funcgrad.check_rule("not_a_primitive_name")


# ------------------------------------------------------- assert_grads_match


def test_assert_grads_match_is_one_line_and_fails_loudly():
    rng = np.random.default_rng(2)
    params, x = _params(rng), rng.normal(size=(2, 4)).astype(np.float32)
    assert assert_grads_match(_model, params, x, argnums=0).ok
    with funcgrad.defvjp("tanh", lambda ct, x, *, out, **params: (ct * (1 + out * out),)):  # wrong: 1 - tanh^2
        with pytest.raises(AssertionError, match="primitive 'tanh'"):
            assert_grads_match(_model, params, x, argnums=0)


def test_report_mentions_culprit_inside_nested_jit():
    @jax.jit
    def inner(x):
        return lax.sin(x)

    with funcgrad.defvjp("sin", _wrong_sin_vjp):
        report = funcgrad.check_grads(lambda x: jnp.sum(inner(x) ** 2), (jnp.ones(3),), raise_on_failure=False)
    assert report.culprit.primitive == "sin" and "jit(inner)" in report.culprit.eqn.source.scope
