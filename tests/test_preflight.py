"""funcgrad.check_differentiable: every problem that would stop funcgrad.grad, listed at once."""

from __future__ import annotations

import functools
import inspect

import jax
import jax.numpy as jnp
import pytest
from jax import lax
from jax._src import dispatch  # how JAX implements a primitive it compiles
from jax.extend.core import Primitive
from jax.interpreters import mlir

import funcgrad

# compiled by JAX (no Python implementation funcgrad could differentiate through): it needs a rule
no_rule_p = Primitive("preflight_no_rule")
no_rule_p.def_impl(functools.partial(dispatch.apply_primitive, no_rule_p))
no_rule_p.def_abstract_eval(lambda x: jax.core.ShapedArray(x.shape, x.dtype))
mlir.register_lowering(no_rule_p, mlir.lower_fun(lambda x: 2 * x, multiple_results=False))


def _where(fn, marker: str) -> str:
    lines, start = inspect.getsourcelines(fn)
    return f"{__file__}:{start + next(i for i, text in enumerate(lines) if marker in text)}"


def troubled(params, x):
    h = no_rule_p.bind(params["w"] * x)  # missing rule
    h = lax.while_loop(lambda c: c[1] < 3, lambda c: (c[0] * 1.5, c[1] + 1), (h, 0))[0]  # while
    return h * params["steps"]  # a vector, times an integer leaf


def branching(params, x):
    if jnp.sum(params["w"]) > 0:  # python if
        return params["w"] * x
    return x


def clean(params, x):
    return jnp.sum(jnp.tanh(params["w"] * x) ** 2)


PARAMS = {"w": jnp.ones(3), "steps": jnp.int32(2)}


def test_three_different_problems_are_all_listed():
    report = funcgrad.check_differentiable(troubled)(PARAMS, jnp.ones(3))
    kinds = {p.kind: p for p in report.problems}
    assert set(kinds) == {"integer leaf", "non-scalar output", "missing VJP rule", "no reverse-mode derivative"}
    assert kinds["integer leaf"].where == "params['steps']"
    assert "f32[3]" in kinds["non-scalar output"].message
    assert kinds["missing VJP rule"].where == _where(troubled, "# missing rule")
    assert "preflight_no_rule" in kinds["missing VJP rule"].message
    assert "defvjp('preflight_no_rule'" in kinds["missing VJP rule"].fix
    assert kinds["no reverse-mode derivative"].where == _where(troubled, "# while")
    assert "while" in kinds["no reverse-mode derivative"].message
    assert "scan" in kinds["no reverse-mode derivative"].fix
    text = str(report)
    assert text.startswith("check_differentiable(troubled): 4 problems")
    for p in report.problems:
        assert p.where in text and p.fix in text


def test_python_control_flow_is_listed_with_the_other_problems():
    report = funcgrad.check_differentiable(branching)({"w": jnp.ones(3), "n": 3}, jnp.ones(3))
    kinds = {p.kind: p for p in report.problems}
    assert set(kinds) == {"integer leaf", "Python control flow on a traced value", "non-scalar output"}
    assert kinds["Python control flow on a traced value"].where.startswith(_where(branching, "# python if"))
    assert kinds["integer leaf"].where == "params['n']"
    with pytest.raises(funcgrad.NonDifferentiableError, match="3 problems"):
        report.raise_if_any()


def test_a_clean_function_has_no_problems_and_grad_agrees():
    args = ({"w": jnp.ones(3)}, jnp.arange(3.0))
    report = funcgrad.check_differentiable(clean)(*args)
    assert report.ok and report.problems == [] and "no problems" in str(report)
    report.raise_if_any()
    funcgrad.grad(clean)(*args)


@pytest.mark.parametrize(
    "fun, args",
    [
        (lambda p, x: jnp.sum(p["w"] * x) * p["steps"], (PARAMS, jnp.ones(3))),
        (lambda p, x: p["w"] * x, ({"w": jnp.ones(3)}, jnp.ones(3))),
        (lambda p, x: jnp.sum(no_rule_p.bind(p["w"] * x)), ({"w": jnp.ones(3)}, jnp.ones(3))),
    ],
    ids=["integer-leaf", "non-scalar-output", "missing-rule"],
)
def test_each_reported_problem_really_stops_grad(fun, args):
    assert len(funcgrad.check_differentiable(fun)(*args).problems) == 1
    with pytest.raises(funcgrad.FuncgradError):
        funcgrad.grad(fun)(*args)


def test_argnums_and_has_aux():
    loss_and_aux = lambda w, x: (jnp.sum(w * x), {"pred": w * x})
    assert funcgrad.check_differentiable(loss_and_aux, has_aux=True)(jnp.ones(3), jnp.ones(3)).ok
    report = funcgrad.check_differentiable(lambda w, n: jnp.sum(w) * n, argnums=(0, 1))(jnp.ones(3), jnp.int32(4))
    assert [p.where for p in report.problems] == ["n"]
