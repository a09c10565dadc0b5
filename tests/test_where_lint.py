"""The where-lint: NaN traps (a jnp.where masking an operation whose derivative is infinite there)
found on the traced graph, by check_differentiable, the opt-in warning of grad, and debug_nans."""

from __future__ import annotations

import contextlib
import inspect
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import funcgrad
from benchmarks.workloads import make_workloads
from funcgrad.core import registry, where_traps
from funcgrad.errors import NaNTrapWarning
from tests import models

# ---------------------------------------------------------------- the traps, and their fixed forms
# Each trap has its unsafe operation and its where on lines of their own, so both lines are checked.


def sqrt_trap(x):
    root = jnp.sqrt(x)  # unsafe
    return jnp.sum(jnp.where(x > 0, root, 0.0))  # mask


def sqrt_fixed(x):
    safe = jnp.where(x > 0, x, 1.0)
    return jnp.sum(jnp.where(x > 0, jnp.sqrt(safe), 0.0))


def log_trap(x):
    logs = jnp.log(x)  # unsafe
    return jnp.sum(jnp.where(x > 0, logs, 0.0))  # mask


def log_fixed(x):
    safe = jnp.where(x > 0, x, 1.0)
    return jnp.sum(jnp.where(x > 0, jnp.log(safe), 0.0))


def div_trap(x):
    inverse = 1 / x  # unsafe
    return jnp.sum(jnp.where(x != 0, inverse, 0.0))  # mask


def div_fixed(x):
    safe = jnp.where(x != 0, x, 1.0)
    return jnp.sum(jnp.where(x != 0, 1 / safe, 0.0))


def fractional_pow_trap(x):
    roots = x**0.5  # unsafe
    return jnp.sum(jnp.where(x > 0, roots, 0.0))  # mask


def fractional_pow_fixed(x):
    return jnp.sum(jnp.where(x > 0, jnp.where(x > 0, x, 1.0) ** 0.5, 0.0))


def arcsin_trap(x):
    angles = jnp.arcsin(x)  # unsafe
    return jnp.sum(jnp.where(jnp.abs(x) < 1, angles, 0.0))  # mask


def arcsin_fixed(x):
    inside = jnp.abs(x) < 1
    return jnp.sum(jnp.where(inside, jnp.arcsin(jnp.where(inside, x, 0.0)), 0.0))


def naive_elu_trap(x):
    grown = jnp.exp(x) - 1  # unsafe
    return jnp.sum(jnp.where(x > 0, x, grown))  # mask


def naive_elu_fixed(x):  # what jax.nn.elu does
    return jnp.sum(jnp.where(x > 0, x, jnp.expm1(jnp.where(x > 0, 0.0, x))))


def negated_mask_trap(x):
    root = jnp.sqrt(2 * x + 1)  # unsafe
    return jnp.sum(jnp.where(x <= -0.5, 0.0, root))  # mask


def negated_mask_fixed(x):  # the inner where tests the complement of the outer one
    safe = jnp.where(x > -0.5, x, 0.0)
    return jnp.sum(jnp.where(x <= -0.5, 0.0, jnp.sqrt(2 * safe + 1)))


def clip_trap(x):
    clipped = jnp.clip(x, 0.0, 1.0)  # mask
    return jnp.sum(jnp.sqrt(clipped))  # unsafe


def clip_fixed(x):
    return jnp.sum(jnp.sqrt(jnp.clip(x, 1e-12, 1.0)))


# (trap, its fixed form, the primitive named, the kind, an input where the trap's gradient is NaN)
CASES = [
    (sqrt_trap, sqrt_fixed, "sqrt", "where", [-1.0, 0.0, 4.0]),
    (log_trap, log_fixed, "log", "where", [-1.0, 0.0, 4.0]),
    (div_trap, div_fixed, "div", "where", [-1.0, 0.0, 4.0]),
    (fractional_pow_trap, fractional_pow_fixed, "pow", "where", [-1.0, 0.0, 4.0]),
    (arcsin_trap, arcsin_fixed, "asin", "where", [-1.0, 0.5, 2.0]),
    (naive_elu_trap, naive_elu_fixed, "exp", "where", [-1.0, 0.5, 100.0]),
    (negated_mask_trap, negated_mask_fixed, "sqrt", "where", [-1.0, -0.5, 3.0]),
    (clip_trap, clip_fixed, "sqrt", "clip", [-1.0, 0.5, 3.0]),
]
IDS = [case[0].__name__ for case in CASES]


def _where(fn, marker: str) -> str:
    lines, start = inspect.getsourcelines(fn)
    return f"{__file__}:{start + next(i for i, text in enumerate(lines) if marker in text)}"


@pytest.fixture
def lint(monkeypatch):
    """The opt-in warning on, on fresh traces (a graph is linted once)."""
    monkeypatch.setenv(where_traps.ENV_VAR, "1")
    funcgrad.clear_cache()
    yield
    funcgrad.clear_cache()


@contextlib.contextmanager
def no_trap_warning():
    """A block in which a NaNTrapWarning fails the test."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", NaNTrapWarning)
        yield


@pytest.mark.parametrize("trap, fixed, primitive, kind, xs", CASES, ids=IDS)
def test_the_trap_is_real_and_the_fix_removes_it(trap, fixed, primitive, kind, xs):
    # the ground truth the lint predicts: NaN gradient, finite value; the fixed form is finite
    x = jnp.array(xs)
    assert np.isfinite(trap(x))
    assert np.isnan(funcgrad.grad(trap)(x)).any()
    assert np.isfinite(funcgrad.grad(fixed)(x)).all()
    np.testing.assert_allclose(fixed(x), trap(x), rtol=1e-6)


@pytest.mark.parametrize("trap, fixed, primitive, kind, xs", CASES, ids=IDS)
def test_check_differentiable_lists_the_trap_with_both_lines_and_the_fix(trap, fixed, primitive, kind, xs):
    report = funcgrad.check_differentiable(trap)(jnp.ones(3))
    assert report.ok  # a trap does not stop grad: it is a warning
    (warning,) = report.warnings
    assert warning.kind == f"NaN trap: {kind}"
    assert warning.where == _where(trap, "# mask")
    assert _where(trap, "# unsafe") in warning.message
    assert repr(primitive) in warning.message
    assert "jnp.where(mask, x," in warning.fix and "safe" in warning.fix
    text = str(report)
    assert "1 warning" in text and warning.where in text and warning.fix in text


@pytest.mark.parametrize("trap, fixed, primitive, kind, xs", CASES, ids=IDS)
def test_the_fixed_form_has_no_warning(trap, fixed, primitive, kind, xs):
    report = funcgrad.check_differentiable(fixed)(jnp.ones(3))
    assert report.ok and report.warnings == [], str(report)


def test_the_required_traps_name_their_lines_in_the_found_traps():
    # the analysis itself, below the report: sqrt, log of a masked zero, division by a masked zero
    for trap, primitive in ((sqrt_trap, "sqrt"), (log_trap, "log"), (div_trap, "div")):
        graph = funcgrad.trace(trap)(jnp.ones(3))
        (found,) = where_traps.find_traps(graph, [True])
        assert (found.kind, found.primitive, found.mask_primitive) == ("where", primitive, "select_n")
        assert found.op_where == _where(trap, "# unsafe")
        assert found.mask_where == _where(trap, "# mask")


# ---------------------------------------------------------------- the opt-in warning


@pytest.mark.parametrize("trap, fixed, primitive, kind, xs", CASES[:3], ids=IDS[:3])
def test_grad_warns_once_with_both_lines_when_enabled(lint, trap, fixed, primitive, kind, xs):
    x = jnp.array(xs)
    with pytest.warns(NaNTrapWarning) as record:
        funcgrad.grad(trap)(x)
    (warning,) = [w for w in record if issubclass(w.category, NaNTrapWarning)]
    message = str(warning.message)
    assert _where(trap, "# mask") in message and _where(trap, "# unsafe") in message
    assert repr(primitive) in message and "jnp.where(mask" in message
    assert warning.filename == __file__  # it points at the call of grad
    with no_trap_warning():  # the same graph, from the cache: not again
        funcgrad.grad(trap)(x)
        funcgrad.grad(trap)(x + 1)


def test_value_and_grad_and_vjp_warn_too(lint):
    with pytest.warns(NaNTrapWarning, match="'log'"):
        funcgrad.value_and_grad(log_trap)(jnp.ones(3))
    with pytest.warns(NaNTrapWarning, match="'div'"):
        funcgrad.vjp(div_trap, jnp.ones(3))


def test_no_warning_when_off(monkeypatch):
    monkeypatch.delenv(where_traps.ENV_VAR, raising=False)
    funcgrad.clear_cache()
    with no_trap_warning():
        funcgrad.grad(sqrt_trap)(jnp.ones(3))
        monkeypatch.setenv(where_traps.ENV_VAR, "0")
        funcgrad.grad(log_trap)(jnp.ones(3))


def test_enable_where_lint_overrides_the_environment(monkeypatch):
    monkeypatch.delenv(where_traps.ENV_VAR, raising=False)
    funcgrad.clear_cache()
    where_traps.enable_where_lint(True)
    try:
        with pytest.warns(NaNTrapWarning):
            funcgrad.grad(sqrt_trap)(jnp.ones(3))
        where_traps.enable_where_lint(False)
        monkeypatch.setenv(where_traps.ENV_VAR, "1")
        funcgrad.clear_cache()
        with no_trap_warning():
            funcgrad.grad(sqrt_trap)(jnp.ones(3))
    finally:
        where_traps.enable_where_lint(None)


@pytest.mark.parametrize("trap, fixed, primitive, kind, xs", CASES, ids=IDS)
def test_grad_of_the_fixed_form_does_not_warn(lint, trap, fixed, primitive, kind, xs):
    with no_trap_warning():
        funcgrad.grad(fixed)(jnp.array(xs))


# ---------------------------------------------------------------- no gradient, no trap; nested programs


def scaled_sqrt_trap(w, x):
    return w * jnp.sum(jnp.where(x > 0, jnp.sqrt(x), 0.0))


def test_only_where_the_differentiated_inputs_reach_the_unsafe_operation():
    assert funcgrad.check_differentiable(scaled_sqrt_trap, argnums=0)(2.0, jnp.ones(3)).warnings == []
    assert len(funcgrad.check_differentiable(scaled_sqrt_trap, argnums=1)(2.0, jnp.ones(3)).warnings) == 1
    assert np.isfinite(funcgrad.grad(scaled_sqrt_trap)(2.0, jnp.zeros(3)))


def test_an_unsafe_substitute_is_a_trap_only_where_its_nan_reaches_a_gradient():
    # sqrt's NaN goes back through the inner where, which sends it only to the constant 0
    sqrt_of_zero = lambda x: jnp.sum(jnp.where(x > 0, jnp.sqrt(jnp.where(x > 0, x, 0.0)), 0.0))
    # div's NaN also goes to the numerator, which has a gradient
    over_zero = lambda x: jnp.sum(jnp.where(x > 0, (x + 1) / jnp.where(x > 0, x, 0.0), 0.0))
    x = jnp.array([-1.0, 0.0, 2.0])
    assert funcgrad.check_differentiable(sqrt_of_zero)(x).warnings == []
    assert np.isfinite(funcgrad.grad(sqrt_of_zero)(x)).all()
    assert len(funcgrad.check_differentiable(over_zero)(x).warnings) == 1
    assert np.isnan(funcgrad.grad(over_zero)(x)).any()


def test_a_mask_unrelated_to_the_unsafe_input_is_not_a_trap():
    causal = lambda x: jnp.sum(jnp.where(jnp.arange(3) > 0, jnp.sqrt(x), 0.0))
    assert funcgrad.check_differentiable(causal)(jnp.ones(3)).warnings == []


NESTED = {
    "cond": lambda x: jnp.sum(lax.cond(jnp.sum(x) > 0, sqrt_trap, jnp.sum, x)),
    "scan": lambda x: lax.scan(lambda c, xi: (c + log_trap(xi), None), 0.0, x)[0],
    "checkpoint": lambda x: jax.checkpoint(div_trap)(x),
}


@pytest.mark.parametrize("name", NESTED)
def test_traps_inside_nested_programs_are_found(name):
    (warning,) = funcgrad.check_differentiable(NESTED[name])(jnp.ones(3)).warnings
    assert warning.kind == "NaN trap: where"
    assert warning.where.startswith(__file__)


# ---------------------------------------------------------------- no false alarms


def _workload_args(name):
    wl = make_workloads()[name]
    return wl.loss, (wl.params, *wl.batch)


KEY = jax.random.PRNGKey(0)
MODELS = {
    "mynet mse": lambda: (models.mse_loss, (models.init_mynet(KEY), jnp.ones((3, 10, 20)), jnp.ones(10))),
    "mynet xent": lambda: (models.xent_loss, (models.init_mynet(KEY), jnp.ones((3, 10, 20)), 3)),
    "mlp gelu": lambda: (
        lambda p, x: jnp.sum(models.mlp(p, x, jax.nn.gelu) ** 2),
        (models.init_mlp(KEY, [8, 16, 4]), jnp.ones((2, 8))),
    ),
    "cnn": lambda: (lambda p, x: jnp.sum(models.cnn(p, x) ** 2), (models.init_cnn(KEY), jnp.ones((2, 1, 12, 12)))),
    "transformer block": lambda: (
        lambda p, x: jnp.sum(models.transformer_block(p, x) ** 2),
        (models.init_transformer_block(KEY, 16), jnp.ones((6, 16))),
    ),
    **{f"benchmark {name}": (lambda name=name: _workload_args(name)) for name in ("A1", "A128", "B", "C", "D")},
}


@pytest.mark.parametrize("name", MODELS)
def test_the_benchmark_models_have_no_warning(name):
    loss, args = MODELS[name]()
    report = funcgrad.check_differentiable(loss)(*args)
    assert report.ok and report.warnings == [], str(report)


def test_grad_of_the_small_models_does_not_warn(lint):
    with no_trap_warning():
        for name in ("mynet xent", "mlp gelu", "cnn", "transformer block"):
            loss, args = MODELS[name]()
            funcgrad.grad(loss)(*args)


MASK = jnp.array([True, False, True, True, False])
SAFE_FUNCTIONS = {
    "relu": jax.nn.relu,
    "relu6": jax.nn.relu6,
    "gelu": jax.nn.gelu,
    "gelu exact": lambda x: jax.nn.gelu(x, approximate=False),
    "elu": jax.nn.elu,
    "selu": jax.nn.selu,
    "celu": jax.nn.celu,
    "silu": jax.nn.silu,
    "mish": jax.nn.mish,
    "softplus": jax.nn.softplus,
    "log_sigmoid": jax.nn.log_sigmoid,
    "sparse_plus": jax.nn.sparse_plus,
    "squareplus": jax.nn.squareplus,
    "leaky_relu": jax.nn.leaky_relu,
    "hard_tanh": jax.nn.hard_tanh,
    "logsumexp": jax.nn.logsumexp,
    "logsumexp where": lambda x: jax.nn.logsumexp(x, where=MASK),
    "logsumexp b": lambda x: jax.nn.logsumexp(x, b=jnp.arange(5.0)),
    "log_softmax": jax.nn.log_softmax,
    "log_softmax where": lambda x: jax.nn.log_softmax(x, where=MASK),
    "softmax where": lambda x: jax.nn.softmax(x, where=MASK),
    "standardize": jax.nn.standardize,
    "l2 normalize": lambda x: x / jnp.linalg.norm(x),
    "layer norm": lambda x: (x - x.mean()) * lax.rsqrt(jnp.var(x) + 1e-5),
    "std": jnp.std,
    "sinc": jnp.sinc,
    "xlogy": lambda x: jax.scipy.special.xlogy(x, x),
    "cross-entropy int": lambda x: funcgrad.nn.losses.softmax_cross_entropy_int(2, x),
    "cross-entropy one-hot": lambda x: funcgrad.nn.losses.softmax_cross_entropy_onehot(jax.nn.one_hot(2, 5), x),
    "squared error": lambda x: funcgrad.nn.losses.squared_error(jnp.ones(5), x),
    "clamped sqrt": lambda x: jnp.sqrt(lax.clamp(0.0, x, 1.0)),  # clamp's VJP selects: finite
    "sqrt of relu": lambda x: jnp.sqrt(jax.nn.relu(x)),  # relu's JVP selects: finite
    "where of sqrt(x^2 + 1)": lambda x: jnp.where(x > 0, jnp.sqrt(x * x + 1), 0.0),
    "where on isfinite": lambda x: jnp.where(jnp.isfinite(x), jnp.log(jnp.abs(x) + 1), 0.0),
}


@pytest.mark.parametrize("name", SAFE_FUNCTIONS)
def test_jax_nn_functions_and_losses_have_no_warning(name):
    fn = SAFE_FUNCTIONS[name]
    loss = lambda x: jnp.sum(fn(x))
    report = funcgrad.check_differentiable(loss)(jnp.linspace(-2.0, 2.0, 5))
    assert report.warnings == [], str(report)


# ---------------------------------------------------------------- debug_nans names the where


@pytest.mark.parametrize("trap, fixed, primitive, kind, xs", CASES[:3], ids=IDS[:3])
def test_debug_nans_names_the_where_that_masked_the_nan(trap, fixed, primitive, kind, xs):
    with funcgrad.debug_nans():
        with pytest.raises(funcgrad.NonFiniteGradientError) as info:
            funcgrad.grad(trap)(jnp.array(xs))
    message = str(info.value)
    assert f"VJP rule of {primitive!r}" in message
    assert f"masked by: the where (select_n) at {_where(trap, '# mask')}" in message
    assert _where(trap, "# unsafe") in message
    assert "jnp.where(mask, x," in message


def test_debug_nans_without_a_where_keeps_its_general_explanation():
    with funcgrad.debug_nans():
        with pytest.raises(funcgrad.NonFiniteGradientError) as info:
            funcgrad.grad(lambda x: jnp.sum(jnp.sqrt(x) * 0.0))(jnp.zeros(2))
    assert "masked by: the" not in str(info.value) and "double-where" in str(info.value)


# ---------------------------------------------------------------- the table


def test_every_row_of_the_table_is_a_differentiable_primitive():
    for name, row in where_traps.UNSAFE_OPS.items():
        assert row.primitive == name
        record = registry.lookup(name)
        assert record is not None and record.has_vjp, name
        assert row.operands and row.unsafe and "{}" in row.call
