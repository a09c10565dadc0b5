"""The extension API: registering a rule for a new primitive and overriding an existing one."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax._src import dispatch  # how JAX itself implements a primitive it compiles
from jax.extend.core import Primitive
from jax.interpreters import mlir

import funcgrad
from funcgrad.errors import UnsupportedPrimitiveError
from funcgrad.rules.registry import lookup, symbolic_zero_rules, vjp_rules

# a primitive JAX evaluates by compiling it (no Python implementation funcgrad could differentiate
# through): it needs a rule
cube_p = Primitive("funcgrad_test_cube")
cube_p.def_impl(functools.partial(dispatch.apply_primitive, cube_p))
cube_p.def_abstract_eval(lambda x: jax.core.ShapedArray(x.shape, x.dtype))
mlir.register_lowering(cube_p, mlir.lower_fun(lambda x: x**3, multiple_results=False))


def uses_cube(x):
    return jnp.sum(cube_p.bind(x) * 2.0)  # the line the error must name


def test_missing_rule_error_then_registered_rule():
    x = jnp.arange(3.0)
    assert lookup("funcgrad_test_cube") is None
    with pytest.raises(UnsupportedPrimitiveError) as e:
        funcgrad.grad(uses_cube)(x)
    msg = str(e.value)
    assert "funcgrad_test_cube" in msg and "test_extend.py" in msg and "defvjp" in msg

    @funcgrad.defvjp("funcgrad_test_cube")
    def cube_vjp(ct, x, *, out, **params):
        return (ct * 3 * x**2,)

    try:
        assert "funcgrad_test_cube" in funcgrad.supported_primitives()
        np.testing.assert_allclose(cube_vjp(jnp.ones(3), x, out=None)[0], 3 * x**2)  # the handle calls the rule
        np.testing.assert_allclose(funcgrad.grad(uses_cube)(x), 6 * x**2)
        # the rule's own ops are differentiable: second order works
        np.testing.assert_allclose(funcgrad.grad(lambda x: funcgrad.grad(uses_cube)(x).sum())(x), 12 * x)
    finally:
        cube_vjp.restore()
    assert lookup("funcgrad_test_cube") is None and "funcgrad_test_cube" not in funcgrad.supported_primitives()


def test_override_existing_rule_and_restore():
    f = lambda x: jnp.sum(jnp.sin(x))
    x = jnp.array([0.1, 0.2])
    builtin = lookup("sin")
    with funcgrad.defvjp("sin", lambda ct, x, *, out, **p: (ct * 0.0 + 7.0,)):
        np.testing.assert_allclose(funcgrad.grad(f)(x), [7.0, 7.0])
    assert lookup("sin") is builtin
    np.testing.assert_allclose(funcgrad.grad(f)(x), jax.grad(f)(x))


def test_overrides_nest_and_restore_in_order():
    f = lambda x: jnp.sum(jnp.sin(x))
    x = jnp.array([0.1, 0.2])
    builtin = lookup("sin")
    outer = funcgrad.defvjp("sin", lambda ct, x, *, out, **p: (ct * 0.0 + 1.0,))
    inner = funcgrad.defvjp("sin", lambda ct, x, *, out, **p: (ct * 0.0 + 2.0,))
    np.testing.assert_allclose(funcgrad.grad(f)(x), [2.0, 2.0])
    inner.restore()
    np.testing.assert_allclose(funcgrad.grad(f)(x), [1.0, 1.0])
    outer.restore()
    assert lookup("sin") is builtin


def test_a_primitive_has_one_record_and_builtin_rules_register_once():
    # every view is read from the one record per primitive
    record = lookup("eigh")
    assert record.kind == "rule" and record.symbolic_zeros and "eigh" in symbolic_zero_rules
    assert lookup("while").kind == "refused" and "while" not in vjp_rules
    assert lookup("stop_gradient").kind == "stop" and lookup("floor").kind == "zero"
    # funcgrad's own rule modules cannot register a primitive twice (no override by import order)
    from funcgrad.core.registry import RuleRecord, _register

    with pytest.raises(ValueError, match="registered twice"):
        _register(RuleRecord("abs", "rule", lambda ct, x, *, out: (ct,), owner="funcgrad.rules.special"))
    assert lookup("abs").owner == "funcgrad.rules.elementwise"


# a two-output primitive: (sqrt(x), 2 x)
sqrt_and_double_p = Primitive("funcgrad_test_sqrt_and_double")
sqrt_and_double_p.multiple_results = True
sqrt_and_double_p.def_impl(lambda x: [jnp.sqrt(x), 2 * x])
sqrt_and_double_p.def_abstract_eval(lambda x: [jax.core.ShapedArray(x.shape, x.dtype)] * 2)


@pytest.mark.parametrize("symbolic_zeros", [False, True])
def test_symbolic_zeros_registration(symbolic_zeros):
    # only the second output is used; at x = 0 the unused sqrt's term is 0 * inf
    received = []

    def rule(ct, x, *, out, **params):
        received.append(ct)
        ct_sqrt, ct_double = ct
        total = 2 * ct_double
        if ct_sqrt is not None:
            total = total + ct_sqrt / (2 * out[0])
        return (total,)

    # the block unregisters it completely (tests/test_symbolic_zeros.py wants a row for every opted-in rule)
    with funcgrad.defvjp("funcgrad_test_sqrt_and_double", rule, symbolic_zeros=symbolic_zeros):
        g = funcgrad.grad(lambda x: jnp.sum(sqrt_and_double_p.bind(x)[1]))(jnp.array([0.0, 1.0]))
    assert "funcgrad_test_sqrt_and_double" not in symbolic_zero_rules
    ct_sqrt = received[0][0]
    if symbolic_zeros:
        assert ct_sqrt is None
        np.testing.assert_allclose(g, [2.0, 2.0])
    else:  # zeros are filled in, and the rule's 0 * inf is the rule's own business
        np.testing.assert_array_equal(ct_sqrt, [0.0, 0.0])
        assert np.isnan(g[0]) and g[1] == 2.0


# ------------------------------------------- primitives differentiated through their implementation


def _softplus(x, *, beta):
    return jnp.log1p(jnp.exp(beta * x)) / beta


softplus_p = Primitive("funcgrad_test_softplus")  # a user's primitive with no funcgrad rule
softplus_p.def_impl(_softplus)
softplus_p.def_abstract_eval(lambda x, *, beta: jax.core.ShapedArray(x.shape, x.dtype))
mlir.register_lowering(softplus_p, mlir.lower_fun(_softplus, multiple_results=False))

split_p = Primitive("funcgrad_test_split_signs")  # several results
split_p.multiple_results = True
split_p.def_impl(lambda x: [jnp.maximum(x, 0.0), jnp.minimum(x, 0.0) ** 2])
split_p.def_abstract_eval(lambda x: [jax.core.ShapedArray(x.shape, x.dtype)] * 2)
mlir.register_lowering(
    split_p, mlir.lower_fun(lambda x: [jnp.maximum(x, 0.0), jnp.minimum(x, 0.0) ** 2], multiple_results=True)
)


def test_a_primitive_without_a_rule_is_differentiated_through_its_python_implementation():
    assert lookup("funcgrad_test_softplus") is None
    f = lambda x: jnp.sum(softplus_p.bind(x, beta=2.0) * x)  # noqa: E731
    reference = lambda x: jnp.sum(_softplus(x, beta=2.0) * x)  # noqa: E731
    x = jnp.linspace(-1.0, 1.0, 5)
    np.testing.assert_allclose(funcgrad.grad(f)(x), jax.grad(reference)(x), rtol=1e-6)
    np.testing.assert_allclose(jax.jit(funcgrad.grad(f))(x), jax.grad(reference)(x), rtol=1e-6)
    np.testing.assert_allclose(funcgrad.hessian(f)(x), jax.hessian(reference)(x), rtol=1e-5, atol=1e-6)
    g = lambda x: jnp.sum(split_p.bind(x)[1] * 3.0 + split_p.bind(x)[0])  # noqa: E731
    ref_g = lambda x: jnp.sum(jnp.minimum(x, 0.0) ** 2 * 3.0 + jnp.maximum(x, 0.0))  # noqa: E731
    np.testing.assert_allclose(funcgrad.grad(g)(x), jax.grad(ref_g)(x), rtol=1e-6)
    assert not funcgrad.check_differentiable(f)(x).problems  # the pre-flight check agrees
    # a registered rule comes first
    with funcgrad.defvjp("funcgrad_test_softplus", lambda ct, x, *, out, beta: (ct * 100.0,)):
        np.testing.assert_allclose(funcgrad.grad(lambda x: jnp.sum(softplus_p.bind(x, beta=2.0)))(x), 100.0)
