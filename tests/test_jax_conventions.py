"""Conventions that JAX's own test files rely on (jax/tests/*.py), checked against JAX.

* Rules run under JAX's test modes, ``jax_numpy_rank_promotion='raise'`` and
  ``jax_numpy_dtype_promotion='strict'``: they broadcast and cast explicitly, with the numbers of the
  default modes. Parameters that change the derivative's arithmetic are read, not dropped:
  ``lax.mul(..., out_dtype=...)``'s transpose is JAX's (operand dtypes and all), and so is the formula
  ``accuracy=`` picks for ``tanh``, ``logistic`` and ``expm1``.
* Where JAX refuses to differentiate, funcgrad refuses too, with an exception that is an instance of
  JAX's class and a message that contains JAX's sentence (the fragments JAX's tests match).
* ``dynamic_slice`` / ``dynamic_update_slice`` at negative or out-of-range starts send the cotangent
  where the forward read or wrote (lax clamps the start).
* ``copy``'s cotangent is a copy, as JAX's transpose makes one.
* ``custom_vjp`` / ``custom_jvp``: the user's rules see what JAX gives them (``perturbed`` flags,
  ``SymbolicZero`` cotangents and tangents), JAX's own checks of them keep their exception classes,
  a rule that applies the function to tangents is transposed through the body, and a second
  derivative follows JAX's convention (fwd's computation is differentiated, bwd applies at first
  order only), also for JAX's next custom_vjp (``jax_custom_vjp3``, a ``call_hi_primitive``).
* ``lax.platform_dependent`` compiles and differentiates only this platform's branch.
* ``jax_enable_checks`` (as JAX's test cases run) does not stop ``log_ndtr``'s gradient.
"""

from __future__ import annotations

import contextlib
import functools
import re

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import funcgrad
from tests.conftest import x64
from tests.jax_compat import row_unavailable
from tests.rule_specs import all_specs
from tests.rule_specs.custom import custom_vjp3
from tests.test_rules import TOL, _random_cotangent, _widened, differentiated


@contextlib.contextmanager
def strict_modes():
    """JAX's test-suite modes (jax/_src/test_util.py): no implicit rank promotion, strict dtype promotion."""
    with jax.numpy_rank_promotion("raise"), jax.numpy_dtype_promotion("strict"):
        yield


def _assert_same(got, want, rtol, atol):
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        assert jnp.result_type(a) == jnp.result_type(b), f"dtype {jnp.result_type(a)} vs jax {jnp.result_type(b)}"
        assert np.shape(a) == np.shape(b), f"shape {np.shape(a)} vs jax {np.shape(b)}"
        np.testing.assert_allclose(_widened(a), _widened(b), rtol=rtol, atol=atol)


# ------------------------------------------------- 1. the rules under JAX's test modes

_RNG = np.random.default_rng(0)


def _mat(*shape, dtype=np.float64, shift=0.0):
    a = _RNG.normal(size=shape) * 0.5
    if shift:
        a = a + shift * np.eye(shape[-1])
    return a.astype(dtype)


def _spd(*shape):
    a = _RNG.normal(size=shape)
    return a @ np.swapaxes(a, -1, -2) + shape[-1] * np.eye(shape[-1])


def _lu_loss(a):
    lu, _, _ = lax.linalg.lu(a)
    return jnp.sum(lu * jnp.cos(lu))


class SecondOrder:
    """A loss built from a gradient: ``make(grad)`` with ``grad`` funcgrad.grad or jax.grad."""

    def __init__(self, make):
        self.make = make


def _with(grad, fn):
    """``fn`` itself, or the loss it builds from ``grad`` if it is a ``SecondOrder``."""
    return fn.make(grad) if isinstance(fn, SecondOrder) else fn


_det_second_order = SecondOrder(lambda grad: lambda a: jnp.sum(grad(lambda a: jnp.sum(jnp.linalg.det(a)))(a) ** 2))
_svdvals_second_order = SecondOrder(
    lambda grad: lambda a: jnp.sum(grad(lambda a: jnp.sum(jnp.linalg.svd(a, compute_uv=False) ** 2))(a) ** 3)
)


def _normalized_svd_loss(a):
    u, s, vt = jnp.linalg.svd(a, full_matrices=False)
    sign = jnp.sign(u[..., :1, :])  # the vectors' signs are arbitrary: fix them, as JAX's tests do
    return jnp.sum(jnp.abs(u * sign) ** 3) + jnp.sum(s**2) + jnp.sum((vt * jnp.swapaxes(sign, -1, -2)) ** 3)


# (name, loss of one array, input): losses whose backward pass JAX's tests run under the strict modes.
# A ``SecondOrder`` loss differentiates a gradient (funcgrad's, or JAX's for the reference).
STRICT_CASES = [
    ("lu_3x5", _lu_loss, _mat(3, 5)),
    ("lu_5x3", _lu_loss, _mat(5, 3)),
    ("lu_square", _lu_loss, _mat(4, 4, shift=2.0)),
    ("lu_batched_3x5", _lu_loss, _mat(2, 3, 5)),
    ("lu_batched_5x3", _lu_loss, _mat(2, 5, 3)),
    ("lu_batched_square", _lu_loss, _mat(2, 4, 4, shift=2.0)),
    ("det_batched_second_order", _det_second_order, _mat(3, 4, 4, shift=2.0)),
    ("cholesky_batched", lambda a: jnp.sum(jnp.linalg.cholesky(a) ** 2), _spd(3, 4, 4)),
    ("eigh_batched", lambda a: jnp.sum(jnp.abs(jnp.linalg.eigh(a)[1]) ** 3), _spd(2, 3, 3)),
    ("eigvalsh_batched", lambda a: jnp.sum(jnp.linalg.eigvalsh(a) ** 2), _spd(2, 3, 3)),
    # linalg_test.py testSVDGrad: singular values of a batch, to second order (the first order is a product)
    ("svdvals_batched_second_order", _svdvals_second_order, _mat(2, 5, 5)),
    ("svdvals_batched_wide_second_order", _svdvals_second_order, _mat(2, 3, 5)),
    ("svd_thin_batched_tall", _normalized_svd_loss, _mat(2, 5, 3)),
    ("svd_thin_batched_wide", _normalized_svd_loss, _mat(2, 3, 5)),
    ("qr_complete_batched_tall", lambda a: jnp.sum(jnp.linalg.qr(a, mode="complete")[0] ** 3), _mat(2, 4, 3)),
    (
        "eig_vectors_batched",
        lambda a: jnp.sum(jnp.abs(lax.linalg.eig(a, compute_left_eigenvectors=False, enable_eigvec_derivs=True)[1])),
        _mat(2, 3, 3, shift=2.0),
    ),
]


@pytest.mark.parametrize("loss,x", [pytest.param(loss, x, id=name) for name, loss, x in STRICT_CASES])
def test_linear_algebra_rules_run_under_jax_test_modes(loss, x):
    with x64():
        jax_loss, fg_loss = _with(jax.grad, loss), _with(funcgrad.grad, loss)
        # jitted: one compilation, not an eager dispatch per operation; the strict modes act while tracing
        with strict_modes():
            want = jax.jit(jax.grad(jax_loss))(x)
            got = jax.jit(funcgrad.grad(fg_loss))(x)
        _assert_same(got, want, rtol=1e-8, atol=1e-10)


_HAS_OUT_DTYPE = "out_dtype" in lax.mul.__code__.co_varnames
_FLOATS = (np.float16, np.float32, np.float64)


# every mix of dtypes in the default modes (bit for bit), the three-dtype mixes under the strict ones
_MUL_DTYPES = [
    pytest.param(a, b, c, strict, id="-".join([np.dtype(d).name for d in (a, b, c)] + ["strict"] * strict))
    for a in _FLOATS
    for b in _FLOATS
    for c in _FLOATS
    for strict in (False, True)
    if len({a, b, c}) > 1 and (not strict or len({a, b, c}) == 3)
]


@pytest.mark.skipif(not _HAS_OUT_DTYPE, reason="lax.mul takes out_dtype from JAX 0.10 on")
@pytest.mark.parametrize("lhs,rhs,out,strict", _MUL_DTYPES)
def test_mul_with_out_dtype_transposes_as_jax(lhs, rhs, out, strict):
    # lax_autodiff_test.py's testOpGradOutDtype: mixed operand dtypes, the product in out_dtype. JAX's
    # transpose is mul(ct, y, out_dtype=x.dtype): the operands are cast to x's dtype before the product,
    # which rounds differently from a product in out_dtype cast afterwards.
    with x64(), strict_modes() if strict else contextlib.nullcontext():
        rng = np.random.default_rng(3)
        x = rng.normal(size=(4, 8)).astype(lhs)
        y = rng.normal(size=(4, 8)).astype(rhs)
        ct = (rng.normal(size=(4, 8)) * 1.37).astype(out)

        def f(x, y):
            return lax.mul(x, y, out_dtype=out)

        want = jax.vjp(f, x, y)[1](ct)
        got = funcgrad.vjp(f, x, y)[1](ct)
        for a, b in zip(got, want):
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))

        # second order (testOpGradOutDtype checks order 2): the transpose of the transpose
        def g(x, y):
            return jnp.sum(lax.mul(x, y, out_dtype=out).astype(np.float64) ** 2)

        def g2(grad):
            return lambda x, y: jnp.sum(grad(g, (0, 1))(x, y)[1].astype(np.float64) ** 3)

        want2 = jax.grad(g2(jax.grad), (0, 1))(x, y)
        got2 = funcgrad.grad(g2(funcgrad.grad), (0, 1))(x, y)
        for a, b in zip(got2, want2):
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


_HAS_ACCURACY = hasattr(lax, "AccuracyMode")


def _accuracy(name):
    return None if name is None else getattr(lax.AccuracyMode, name)


# (primitive, accuracy): JAX's JVP of these uses another formula at accuracy=HIGHEST, and tanh's default
# formula is (t + t tanh)(1 - tanh), whose transpose rounds differently from ct (1 - tanh^2)
_ACCURACY_ROWS = [("tanh", None), ("tanh", "HIGHEST"), ("logistic", "HIGHEST"), ("expm1", "HIGHEST")]


@pytest.mark.skipif(not _HAS_ACCURACY, reason="transcendental ops take accuracy= from JAX 0.6 on")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name,accuracy", _ACCURACY_ROWS, ids=[f"{n}-{a}" for n, a in _ACCURACY_ROWS])
def test_accuracy_param_picks_jaxs_derivative_formula(name, accuracy, dtype):
    # like out_dtype, accuracy= is a parameter the rule must read, not drop: bit for bit with JAX
    with x64():
        x = np.linspace(-3.0, 3.0, 61).astype(dtype)
        ct = np.cos(np.arange(61.0)).astype(dtype)

        def f(x):
            return getattr(lax, name)(x, accuracy=_accuracy(accuracy))

        np.testing.assert_array_equal(funcgrad.vjp(f, x)[1](ct)[0], jax.vjp(f, x)[1](ct)[0])

        def second(grad):
            return lambda x: jnp.sum(grad(lambda x: jnp.sum(f(x) * ct))(x) ** 2)

        np.testing.assert_array_equal(funcgrad.grad(second(funcgrad.grad))(x), jax.grad(second(jax.grad))(x))


# The rule table's rows under the strict modes: one row per primitive (the first in tests/rule_specs),
# and every batched row, in float32 (where a stray float64 constant would break strict promotion), on
# the 'broadcast' case where the row has one (a rank-0 operand with an array) and 'random' otherwise.
# Rows whose own function, or its custom JVP, is not written for strict promotion are skipped, as JAX
# itself fails on them there (custom_jvp_int_arg: its JVP multiplies by the integer exponent).


def _strict_rows():
    seen, rows = set(), []
    for spec in all_specs():
        batched = "batch" in spec.id
        if spec.primitive in seen and not batched:
            continue
        dtypes = [d for d in spec.dtypes if d == "float32"] or list(spec.dtypes)[:1]
        seen.add(spec.primitive)
        rows.append(pytest.param(spec, dtypes[0], id=f"{spec.id}-{dtypes[0]}"))
    return rows


@pytest.mark.parametrize("spec,dtype", _strict_rows())
def test_rule_table_rows_run_under_jax_test_modes(spec, dtype):
    why = row_unavailable(spec.id, spec.min_jax)
    if why is not None:
        pytest.skip(why)
    with x64():
        probe = np.random.default_rng(0)
        case = "broadcast" if spec.args(probe, np.dtype(dtype), "broadcast") is not None else "random"
        args = spec.args(np.random.default_rng(0), np.dtype(dtype), case)
        f, diff_args, _ = differentiated(spec, args)
        # JAX differentiates the row's reference where its own rule fails (tests/rule_specs: from_edtype)
        f_jax = f if spec.reference is None else differentiated(spec, args, spec.reference)[0]
        ct = jax.tree.map(lambda o: _random_cotangent(np.random.default_rng(1), o), jax.eval_shape(f, *diff_args))

        def jax_vjp(ct, *a):
            return jax.vjp(f_jax, *a)[1](ct)

        def both(ct, *a):
            return jax_vjp(ct, *a), funcgrad.vjp(f, *a)[1](ct)

        with strict_modes():
            try:  # JAX's own backward pass, traced only
                jax.eval_shape(jax_vjp, ct, *diff_args)
            except (TypeError, ValueError) as err:  # the row's function (or its custom rule) is not strict-clean
                pytest.skip(f"JAX's own VJP of the row fails under the strict modes: {err}")
            # both backward passes in one jitted function: one compilation, not an eager dispatch per
            # operation (the strict modes act while tracing, so funcgrad's rules run under them)
            want, got = jax.jit(both)(ct, *diff_args)
        rtol, atol = TOL[dtype]
        want = [w for w in want if jnp.result_type(w) != jax.dtypes.float0]
        got = [g for g in got if jnp.result_type(g) != jax.dtypes.float0]
        _assert_same(got, want, spec.rtol or rtol, spec.atol or atol)


# ----------------------------------------------------- 2. and 3. refusals, as JAX refuses


def _while(x):
    return lax.while_loop(lambda i: i < 5.0, lambda i: i + 1.0, x)


def _fori_inside_cond(x):
    # lax_control_flow_test.py testWhileGradError: a fori_loop with traced bounds is a while_loop
    return lax.cond(True, lambda x, _: lax.fori_loop(x, x + 2.0, lambda i, c: c * 2.0, x), lambda _, x: x, x, 1.0)


def _fori_inside_scan(x):
    return lax.scan(lambda c, x: (lax.fori_loop(x, x + 2.0, lambda i, c1: c1 * c, x), None), x, np.ones(2))[0]


def _composite(x):
    return lax.composite(lambda x: jnp.sin(x), name="my.sin")(x)


@jax.custom_batching.custom_vmap
def _custom_vmapped(x):
    return jnp.sin(x)


@_custom_vmapped.def_vmap
def _custom_vmapped_rule(axis_size, in_batched, xs):
    return jnp.cos(xs), in_batched[0]


def _pure_callback(x):
    return jax.pure_callback(lambda v: np.sin(v), jax.ShapeDtypeStruct((), x.dtype), x)


def _io_callback(x):
    from jax.experimental import io_callback

    return io_callback(lambda v: np.sin(v), jax.ShapeDtypeStruct((), x.dtype), x)


def _reduce_window_product(x):
    return jnp.sum(lax.reduce_window(x * jnp.arange(1.0, 5.0), 1.0, lax.mul, (2,), (1,), "VALID"))


def _zeta(x):
    return lax.zeta(x, 2.0)


_igamma_twice_in_a = SecondOrder(lambda grad: lambda a: grad(lambda a: lax.igamma(a, 2.0))(a))


def _custom_linear_solve_without_transpose(x):
    a = jnp.array([[2.0, 1.0], [1.0, 3.0]]) * x
    return jnp.sum(lax.custom_linear_solve(lambda v: a @ v, jnp.ones(2), lambda mv, b: jnp.linalg.solve(a, b)))


def _svd_full_matrices(x):
    a = jnp.arange(6.0).reshape(2, 3) * x + jnp.eye(2, 3)
    return jnp.sum(jnp.linalg.svd(a, full_matrices=True)[0])


def _eig_vectors(x):
    return jnp.sum(jnp.abs(jnp.linalg.eig(jnp.array([[2.0, 1.0], [0.5, 3.0]]) * x)[1]))


def _scatter_apply(x):
    return jnp.sum(x.at[1].apply(jnp.sin))


def _scatter_apply_lax(x):
    dn = lax.ScatterDimensionNumbers(
        update_window_dims=(), inserted_window_dims=(0,), scatter_dims_to_operand_dims=(0,)
    )
    return jnp.sum(lax.scatter_apply(x, jnp.array([[0], [2]]), jnp.exp, dn, update_shape=(2,)))


# (name, function, input, JAX's exception class, the fragment of JAX's message funcgrad's must contain)
REFUSALS = [
    ("while", _while, 1.0, ValueError, "Reverse-mode differentiation does not work for lax.while_loop"),
    ("fori_inside_cond", _fori_inside_cond, 1.0, ValueError,
     "Reverse-mode differentiation does not work for lax.while_loop"),
    ("fori_inside_scan", _fori_inside_scan, 1.0, ValueError,
     "Reverse-mode differentiation does not work for lax.while_loop"),
    ("composite", _composite, 1.5, ValueError, "JVP rule for composite not implemented"),
    ("custom_vmap", _custom_vmapped, 0.5, ValueError,
     "Linearization failed to produce known values for all output primals"),
    ("pure_callback", _pure_callback, 1.5, ValueError, "Pure callbacks do not support JVP"),
    ("io_callback", _io_callback, 1.5, ValueError, "IO callbacks do not support JVP"),
    ("reduce_window", _reduce_window_product, np.ones(4), ValueError,
     "Linearization failed to produce known values for all output primals"),
    ("zeta", _zeta, 3.0, NotImplementedError, "Differentiation rule for 'zeta' not implemented"),
    ("igamma_grad_a", _igamma_twice_in_a, 1.5, NotImplementedError,
     "Differentiation rule for 'igamma_grad_a' not implemented"),
    ("custom_linear_solve", _custom_linear_solve_without_transpose, 1.5, TypeError,
     "transpose_solve required for backwards mode automatic differentiation of custom_linear_solve"),
    ("svd_full_matrices", _svd_full_matrices, 1.5, NotImplementedError,
     "Singular value decomposition JVP not implemented for full matrices"),
    ("eig_vectors", _eig_vectors, 1.5, NotImplementedError,
     "Derivatives of non-symmetric eigenvectors are only valid under assumptions on the input that JAX cannot check"),
    ("scatter_apply", _scatter_apply, np.arange(1.0, 4.0), NotImplementedError, "scatter_apply JVP not implemented"),
    ("scatter_apply_lax", _scatter_apply_lax, np.arange(1.0, 4.0), NotImplementedError,
     "scatter_apply JVP not implemented"),
]  # fmt: skip


@pytest.mark.parametrize(
    "fn,x,jax_class,jax_message",
    [pytest.param(fn, x, cls, msg, id=name) for name, fn, x, cls, msg in REFUSALS],
)
def test_refusals_raise_jax_exception_class_and_message(fn, x, jax_class, jax_message):
    with x64():
        jax_fn, fg_fn = _with(jax.grad, fn), _with(funcgrad.grad, fn)
        # what JAX does (so a JAX release that changes it shows up here)
        with pytest.raises(jax_class, match=re.escape(jax_message)):
            jax.grad(jax_fn)(x)
        # funcgrad: an instance of JAX's class (and still its own), JAX's sentence in its message
        with pytest.raises(jax_class, match=re.escape(jax_message)) as err:
            funcgrad.grad(fg_fn)(x)
        assert isinstance(err.value, funcgrad.NonDifferentiableError)


def test_scatter_apply_is_refused_not_given_a_zero_gradient():
    # funcgrad used to return [1, 0, 1]: the applied entry's derivative (cos) silently dropped
    with pytest.raises(NotImplementedError, match="fix: write the update out"):
        funcgrad.grad(_scatter_apply)(jnp.arange(1.0, 4.0))
    # the written-out form is differentiable, in both
    x = jnp.arange(1.0, 4.0)
    written = lambda x: jnp.sum(x.at[1].set(jnp.sin(x[1])))  # noqa: E731
    np.testing.assert_allclose(funcgrad.grad(written)(x), jax.grad(written)(x))


def test_the_while_refusal_keeps_funcgrads_line_and_fix():
    with pytest.raises(ValueError) as err:
        funcgrad.grad(_while)(1.0)
    message = str(err.value)
    assert "'while'" in message and f"{__file__}:" in message and "fix: use lax.scan" in message


# --------------------------------------- 4. dynamic slices at clamped (out-of-range) starts

_X = np.arange(1.0, 6.0)
_STARTS = [-12, -10, -7, -6, -5, -4, -1, 0, 2, 3, 4, 5, 7, 100]
_DYNAMIC = {
    "dynamic_slice": (lambda x, i: lax.dynamic_slice(x, (i,), (2,)), lambda: (_X,), (2,)),
    "dynamic_index_in_dim": (lambda x, i: lax.dynamic_index_in_dim(x, i, keepdims=False), lambda: (_X,), ()),
    "dynamic_slice_in_dim": (lambda x, i: lax.dynamic_slice_in_dim(x, i, 3), lambda: (_X,), (3,)),
    "dynamic_update_slice": (
        lambda x, u, i: lax.dynamic_update_slice(x, u, (i,)),
        lambda: (_X, np.array([10.0, 20.0])),
        (5,),
    ),
    "dynamic_update_index_in_dim": (
        lambda x, u, i: lax.dynamic_update_index_in_dim(x, u, i, 0),
        lambda: (_X, np.array([7.0])),
        (5,),
    ),
}


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize("name", list(_DYNAMIC))
def test_dynamic_slices_send_the_cotangent_where_the_forward_read(name, jit):
    # lax.dynamic_slice wraps a negative start once (i + dim) and the primitive clamps it to
    # [0, dim - size]; a start in [-2 dim, -dim) is still negative after the wrap (clamped to 0).
    # Negative, too large and in-range starts, each against jax.vjp.
    fn, make_args, ct_shape = _DYNAMIC[name]
    with x64():
        ct = np.arange(1.0, 1.0 + int(np.prod(ct_shape))).reshape(ct_shape) * 10
        for start in _STARTS:
            i = jnp.int32(start)
            f = (lambda *a, i=i: jax.jit(fn)(*a, i)) if jit else (lambda *a, i=i: fn(*a, i))
            want = jax.vjp(f, *make_args())[1](ct)
            got = funcgrad.vjp(f, *make_args())[1](ct)
            for k, (a, b) in enumerate(zip(got, want)):
                np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=f"start {start}, input {k}")


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.int64])
def test_dynamic_slices_clamp_each_axis_and_index_dtype(dtype):
    x, u = np.arange(20.0).reshape(4, 5), np.ones((2, 3)) * 7
    ct_slice, ct_full = np.arange(6.0).reshape(2, 3) + 1, np.arange(20.0).reshape(4, 5) + 1
    with x64():
        for starts in [(-7, 3), (2, 9), (-5, -9), (1, 1)]:
            i = [jnp.asarray(s).astype(dtype) for s in starts]

            def f(x, i=i):
                return lax.dynamic_slice(x, i, (2, 3))

            def g(x, u, i=i):
                return lax.dynamic_update_slice(x, u, i)

            for h in (f, jax.jit(f)):
                got, want = funcgrad.vjp(h, x)[1](ct_slice)[0], jax.vjp(h, x)[1](ct_slice)[0]
                np.testing.assert_array_equal(got, want, err_msg=f"starts {starts}")
            for a, b in zip(funcgrad.vjp(g, x, u)[1](ct_full), jax.vjp(g, x, u)[1](ct_full)):
                np.testing.assert_array_equal(a, b, err_msg=f"starts {starts}")


# ------------------------------------------------------------------------- 5. copy


def test_copy_cotangent_is_a_fresh_array_as_in_jax():
    # JAX transposes copy into another copy (ad.deflinear(copy_p, lambda t: [copy_p.bind(t)]))
    x, ct = jnp.arange(3.0), jnp.ones(3)
    want = jax.vjp(jnp.copy, x)[1](ct)[0]
    got = funcgrad.vjp(jnp.copy, x)[1](ct)[0]
    assert want is not ct and got is not ct
    np.testing.assert_array_equal(got, want)

    # and the backward pass, traced, has the copy in it, as JAX's has
    def copies(vjp_fn):
        return str(jax.make_jaxpr(vjp_fn)(ct)).count("copy")

    assert copies(funcgrad.vjp(jnp.copy, x)[1]) == copies(jax.vjp(jnp.copy, x)[1]) == 1


# --------------------------------------------- custom_vjp integer outputs, composite refusal


def test_custom_vjp_bwd_gets_float0_for_an_integer_output():
    # JAX's convention (lax_test.test_stop_gradient_on_ints): the cotangent of an integer output is float0
    received = []

    @jax.custom_gradient
    def f(x):
        def fbwd(g):
            received.append(g)
            return (jnp.ones_like(x) * 2.0,)

        return (x * 3.0, jnp.round(x).astype(jnp.int32)), fbwd

    loss = lambda x: jnp.sum(f(x)[0])  # noqa: E731
    x = jnp.array([0.4, 1.6, 2.2])
    with jax.enable_checks(True):  # as JAX's test cases run: JAX then type-checks the bwd's cotangents
        np.testing.assert_allclose(funcgrad.grad(loss)(x), jax.grad(loss)(x))
    ct_float, ct_int = received[0]
    assert ct_int.dtype == jax.dtypes.float0 and np.shape(ct_int) == (3,)
    assert jnp.issubdtype(ct_float.dtype, jnp.floating)


def test_composite_refusal_matches_jaxs_message():
    my_square = lax.composite(lambda x: x**2, name="my.square")
    jax_words = (
        "JVP rule for composite not implemented. You can use `jax.custom_jvp` to add support. See "
        "https://docs.jax.dev/en/latest/_autosummary/jax.custom_jvp.html"
    )
    with pytest.raises(ValueError, match=re.escape(jax_words)):
        jax.grad(my_square)(1.0)
    with pytest.raises(ValueError, match=re.escape(jax_words)):
        funcgrad.grad(my_square)(1.0)


# ------------------------------------------ 6. custom_vjp / custom_jvp: what the user's rules see


def _perturbed_recorder(seen):
    """A custom_vjp f(x, y, z) = (x * y, z) with symbolic_zeros=True whose fwd records each input's
    ``perturbed`` flag and whose bwd records which output cotangents are JAX's SymbolicZero."""

    @jax.custom_vjp
    def f(x, y, z):
        return x * y, z

    def fwd(x, y, z):
        seen.append(("fwd", x.perturbed, y.perturbed, z.perturbed))
        return f(x.value, y.value, z.value), (x.value, y.value)

    def bwd(res, g):
        x, y = res
        g_xy, g_z = g
        seen.append(("bwd", *(type(c) is jax.custom_derivatives.SymbolicZero for c in g)))
        zero = type(g_xy) is jax.custom_derivatives.SymbolicZero
        return (None if zero else g_xy * y), (None if zero else g_xy * x), g_z

    f.defvjp(fwd, bwd, symbolic_zeros=True)
    return f


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize(
    "argnums,loss",
    [
        (0, lambda f, x, y, z: f(x, y, z)[0]),
        (1, lambda f, x, y, z: f(x, y, z)[0]),
        ((0, 2), lambda f, x, y, z: f(x, y, z)[0] + f(x, y, z)[1]),
        (2, lambda f, x, y, z: f(x, y, z)[1]),
        (0, lambda f, x, y, z: f(x, jnp.sin(x), z)[0]),  # y is perturbed through x
        (0, lambda f, x, y, z: f(x, lax.stop_gradient(x), z)[0]),  # ... but not through stop_gradient
    ],
    ids=["x", "y", "x_and_z", "z_only", "y_from_x", "y_stopped"],
)
def test_custom_vjp_symbolic_zeros_see_jaxs_perturbed_flags(argnums, loss, jit):
    # custom_api_test.test_symbolic_zero_custom_vjp*: fwd's CustomVJPPrimal.perturbed is True exactly
    # for the inputs a differentiated value flows into; bwd gets a SymbolicZero for an unused output
    ours, theirs = [], []
    args = (2.0, 3.0, 5.0)
    grad_ours = funcgrad.grad(lambda *a: loss(_perturbed_recorder(ours), *a), argnums=argnums)
    grad_theirs = jax.grad(lambda *a: loss(_perturbed_recorder(theirs), *a), argnums=argnums)
    if jit:
        grad_ours, grad_theirs = jax.jit(grad_ours), jax.jit(grad_theirs)
    np.testing.assert_allclose(grad_ours(*args), grad_theirs(*args))
    assert sorted(ours) == sorted(theirs) and theirs  # funcgrad runs fwd in the backward sweep: order differs


def test_custom_vjp_redefined_between_calls_is_not_served_stale():
    # JAX's tests call defvjp again on the same function between gradients: the new rules must run
    @jax.custom_vjp
    def f(x):
        return x * 2.0

    f.defvjp(lambda x: (f(x), None), lambda _, g: (g * 10.0,))
    assert funcgrad.grad(f)(1.0) == 10.0
    f.defvjp(lambda x: (f(x), None), lambda _, g: (g * 20.0,))
    assert funcgrad.grad(f)(1.0) == 20.0 == jax.grad(f)(1.0)
    g = lambda x: f(x) + 1.0  # noqa: E731  (a closure reading f)
    assert funcgrad.grad(g)(1.0) == 20.0
    f.defvjp(lambda x: (f(x), None), lambda _, g: (g * 30.0,))
    assert funcgrad.grad(g)(1.0) == 30.0 == jax.grad(g)(1.0)


def test_custom_vjp_of_a_closed_over_differentiated_value_raises_jaxs_exception():
    # JAX refuses (its CustomVJPException under jit; eagerly an UnexpectedTracerError), funcgrad with its
    # CustomVJPError and JAX's sentence; funcgrad once
    # returned a silent zero for x
    def loss(x):
        @jax.custom_vjp
        def f(y):
            return x * y

        f.defvjp(lambda y: (y * 2.0, None), lambda _, g: (g,))
        return f(3.0)

    with pytest.raises(Exception, match="closed-over value") as theirs:
        jax.grad(jax.jit(loss))(2.0)
    with pytest.raises(funcgrad.CustomVJPError, match="closed-over value") as ours:
        funcgrad.grad(loss)(2.0)
    assert str(theirs.value).split(" Try")[0] in str(ours.value) and "fix:" in str(ours.value)


def test_custom_gradient_closing_over_a_differentiated_value_raises_jaxs_class():
    # jax.custom_gradient builds a custom_vjp; differentiated through a value it closes over, eager JAX
    # raises UnexpectedTracerError, and funcgrad's CustomVJPError is one
    def loss(y):
        @jax.custom_gradient
        def g(x):
            return x * y, lambda ct: (ct * y,)

        return g(3.0)

    with pytest.raises(jax.errors.UnexpectedTracerError):
        jax.grad(loss)(2.0)
    with pytest.raises(jax.errors.UnexpectedTracerError, match="closed-over value") as ours:
        funcgrad.grad(loss)(2.0)
    assert isinstance(ours.value, funcgrad.CustomVJPError) and "See https" not in str(ours.value)

    # closing over a value that is not differentiated is fine, as in JAX
    def constant(x):
        y = jnp.float32(2.0)

        @jax.custom_gradient
        def g(x):
            return x * y, lambda ct: (ct * 3 * y,)

        return g(x)

    np.testing.assert_allclose(funcgrad.grad(constant)(1.0), jax.grad(constant)(1.0))


def _closing_fwd(trace_log: list):
    """loss(w, x): a custom_vjp f defined inside it whose fwd closes over ``x`` and over ``2 * x``
    (values the traced function computed, which nothing differentiates), as user code writes it."""

    def loss(w, x):
        h = x * 2.0

        @jax.custom_vjp
        def f(a):
            return jnp.sin(a) * x

        def f_fwd(a):
            trace_log.append("fwd")
            return f(a), (jnp.cos(a) * x, h)

        f.defvjp(f_fwd, lambda res, g: (res[0] * g * res[1],))
        return jnp.sum(f(w * 3.0) ** 2)

    return loss


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_custom_vjp_fwd_closing_over_traced_values_is_differentiated(jit):
    # jax.grad runs fwd when the call is bound, so fwd may close over the function's traced values;
    # funcgrad traced fwd after its own trace had ended (an UnexpectedTracerError) until it also traced
    # fwd at bind time and made the closed-over values inputs of the equation. bwd deliberately scales
    # by h, so the answer is the rule's, not the primal's derivative.
    w, x = jnp.array([0.3, -1.2, 2.0]), jnp.array([1.5, 0.5, -2.0])
    log: list = []
    loss = _closing_fwd(log)
    wrap = jax.jit if jit else (lambda f: f)
    expected = jax.grad(loss)(w, x)
    log.clear()
    np.testing.assert_allclose(wrap(funcgrad.grad(loss))(w, x), expected, rtol=1e-6)
    assert log == ["fwd"]  # traced once, as jax.jit(jax.grad(loss)) traces it
    value, grads = wrap(funcgrad.value_and_grad(loss))(w, x)
    np.testing.assert_allclose(value, loss(w, x), rtol=1e-6)
    np.testing.assert_allclose(grads, expected, rtol=1e-6)
    out, pullback = funcgrad.vjp(lambda w: loss(w, x), w)
    np.testing.assert_allclose(pullback(jnp.float32(2.0))[0], 2 * expected, rtol=1e-6)
    # also where the custom_vjp is bound inside a jitted function and inside a scan body
    in_jit = lambda w, x: jax.jit(loss)(w, x)  # noqa: E731

    def in_scan(w, x):
        def body(c, xi):
            return c + loss(w, xi), None

        return lax.scan(body, 0.0, jnp.stack([x, 2 * x]))[0]

    # (JAX's own gradients of both raise: it traces jit and scan bodies first and fwd after that trace
    # has ended; the same sums written without jit and scan give the answers)
    unrolled = lambda w, x: loss(w, x) + loss(w, 2 * x)  # noqa: E731
    np.testing.assert_allclose(wrap(funcgrad.grad(in_jit))(w, x), expected, rtol=1e-6)
    np.testing.assert_allclose(wrap(funcgrad.grad(in_scan))(w, x), jax.grad(unrolled)(w, x), rtol=1e-6)


def test_custom_vjp_fwd_closing_over_a_differentiated_value_is_refused():
    # JAX's eager gradient raises UnexpectedTracerError (the closed-over value is a JVP tracer in fwd);
    # funcgrad raises its CustomVJPError, which is one, with the fix, rather than differentiate through
    # the closure (which the custom rule does not give) or drop that path
    def loss(w):
        h = w * 3.0

        @jax.custom_vjp
        def f(a):
            return jnp.sin(a)

        f.defvjp(lambda a: (f(a), jnp.cos(a) * h), lambda res, g: (res * g,))
        return jnp.sum(f(w * 2.0))

    w = jnp.ones(3)
    with pytest.raises(jax.errors.UnexpectedTracerError):
        jax.grad(loss)(w)
    for transform in (funcgrad.grad, lambda f: jax.jit(funcgrad.grad(f))):
        with pytest.raises(
            funcgrad.CustomVJPError, match="fwd rule .* closes over a value that is being differentiated"
        ) as ours:
            transform(loss)(w)
        assert "fix:" in str(ours.value) and any("test_jax_conventions.py" in n for n in ours.value.__notes__)


def test_custom_vjp_bwd_of_the_wrong_shape_raises_jaxs_value_error():
    # custom_api_test.test_bwd_rule_shape_mismatch: JAX's own check, its class and message kept
    @jax.custom_vjp
    def foo(x, y):
        return x

    foo.defvjp(lambda x, y: (x, None), lambda _, g: (jnp.zeros(3), jnp.zeros(3)))
    loss = lambda x, y: foo(x, y * y).sum()  # noqa: E731
    pattern = r"output\[1\] the bwd rule produced an output of type f.*\[3\]"
    with pytest.raises(ValueError, match=pattern):
        jax.grad(loss, 1)(jnp.ones(3), jnp.ones(4))
    with pytest.raises(ValueError, match=pattern):
        funcgrad.grad(loss, 1)(jnp.ones(3), jnp.ones(4))


def test_custom_jvp_rule_that_calls_the_function_on_tangents_does_not_recurse():
    # custom_api_test.test_custom_jvp_vmap_broadcasting_interaction_2: the rule applies the function to
    # the tangent; transposing it goes through the function's body (JAX's partial evaluation does too)
    @jax.custom_jvp
    def transform(box, r):
        return r * box

    @transform.defjvp
    def transform_jvp(primals, tangents):
        (box, r), (dbox, dr) = primals, tangents
        return transform(box, r), dr * box + transform(dbox, r)

    loss = lambda box, r: jnp.sum(jnp.sin(transform(box, r)))  # noqa: E731
    args = (jnp.float32(1.5), jnp.arange(3.0))
    for argnums in (0, 1, (0, 1)):
        got, want = funcgrad.grad(loss, argnums)(*args), jax.grad(loss, argnums)(*args)
        jax.tree.map(lambda g, w: np.testing.assert_allclose(g, w, rtol=1e-6), got, want)


def test_custom_jvp_symbolic_zeros_see_a_symbolic_zero_tangent():
    # custom_api_test.test_symbolic_zero_custom_jvp_vmap_output: an input nothing differentiated
    # flows into has a SymbolicZero tangent in a rule defined with symbolic_zeros=True
    seen = []

    @jax.custom_jvp
    def f(x, y):
        return x * y

    @partial_defjvp(f)
    def f_jvp(primals, tangents):
        (x, y), (x_dot, y_dot) = primals, tangents
        seen.append(type(y_dot) is jax.custom_derivatives.SymbolicZero)
        return f(x, y), x_dot * y

    loss = lambda x, y: jax.vmap(f)(x, y).sum()  # noqa: E731
    np.testing.assert_allclose(funcgrad.grad(loss)(jnp.ones(3), jnp.full(3, 2.0)), jnp.full(3, 2.0))
    assert seen and all(seen)


def partial_defjvp(f):
    return lambda rule: f.defjvp(rule, symbolic_zeros=True)


def test_custom_jvp_under_vmap_with_an_unbatched_output_is_a_clear_error():
    # custom_api_test.test_hard_stuff2 (eager JAX only: JAX's grad of jit fails on it too, with a
    # TypeError from broadcast_in_dim): after vmap the output is unbatched, its tangent batched
    @jax.custom_jvp
    def f(x):
        return np.zeros(x.shape, x.dtype)

    f.defjvp(lambda p, t: (f(*p), t[0]))
    loss = lambda x: jax.vmap(f)(x).sum()  # noqa: E731
    with pytest.raises(TypeError):
        jax.grad(jax.jit(loss))(jnp.arange(3.0))
    with pytest.raises(TypeError, match="does not depend on the batched input") as e:
        funcgrad.grad(loss)(jnp.arange(3.0))
    assert "fix:" in str(e.value)


# ------------------------------------------------------------- 7. lax.platform_dependent


def _on_platform(cpu, other):
    here = jax.default_backend()
    return {"cpu": cpu, "default": other} if here == "cpu" else {"default": cpu, "cpu": other}


def test_platform_dependent_differentiates_and_compiles_only_this_platforms_branch():
    # lax_control_flow_test.test_platform_dependent_grad: no residuals or loops from another
    # platform's branch in the compiled gradient
    def by_dot(x):
        return jnp.dot(x, x)

    def by_scan(x):
        return lax.scan(lambda c, xi: (c + xi * xi, None), jnp.float32(0.0), x)[0]

    f = lambda x: jnp.sin(lax.platform_dependent(x, **_on_platform(by_dot, by_scan)))  # noqa: E731
    x = np.arange(8, dtype=np.float32)
    np.testing.assert_allclose(funcgrad.grad(f)(x), jax.grad(lambda x: jnp.sin(by_dot(x)))(x), rtol=1e-6)
    hlo = jax.jit(funcgrad.grad(f)).lower(x).as_text("hlo")
    assert " dot(" in hlo and " while(" not in hlo


def test_platform_dependent_branch_of_another_platform_needs_no_rule():
    # lax_control_flow_test.test_platform_dependent_with_non_existent_custom_call: JAX differentiates
    # only the branch it lowers; here the other branch is a while_loop, which reverse mode refuses
    other = lambda x: lax.while_loop(lambda c: jnp.sum(c) < 10.0, lambda c: c * 2.0, x)  # noqa: E731
    f = lambda x: jnp.sum(lax.platform_dependent(x, **_on_platform(jnp.sin, other)))  # noqa: E731
    x = np.linspace(0.5, 1.0, 3, dtype=np.float32)
    for grad in (funcgrad.grad, lambda f: jax.jit(funcgrad.grad(f))):
        np.testing.assert_allclose(grad(f)(x), jax.grad(f)(x), rtol=1e-6)
    # the branch this platform runs still needs its rules
    g = lambda x: jnp.sum(lax.platform_dependent(x, **_on_platform(other, jnp.sin)))  # noqa: E731
    with pytest.raises(funcgrad.NonDifferentiableError):
        funcgrad.grad(g)(x)


# ---------------------------------------------------------- 8. under jax_enable_checks


def test_log_ndtr_differentiates_under_jax_enable_checks():
    # lax_scipy_special_functions_test (JAX's test cases run with jax_enable_checks): log_ndtr is a
    # custom_jvp with a nondiff argument whose rule calls it again; JAX's checks assert on its debug
    # info when it is staged (JAX's own jit(grad) fails there), funcgrad gets past that assertion
    f = lambda x: jnp.sum(jax.scipy.special.log_ndtr(x))  # noqa: E731
    x = jnp.linspace(-3.0, 3.0, 5)
    want_grad, want_hessian = jax.grad(f)(x), jax.hessian(f)(x)
    with jax.enable_checks(True):
        for grad in (funcgrad.grad(f), jax.jit(funcgrad.grad(f))):
            np.testing.assert_allclose(grad(x), want_grad, rtol=1e-6)
        np.testing.assert_allclose(funcgrad.hessian(f)(x), want_hessian, rtol=1e-5, atol=1e-6)


# ------------------------------------------------ 9. second order through a custom_vjp


@jax.custom_vjp
def _sin_with_doubled_rule(x):
    return jnp.sin(x)


# bwd deliberately says 2 cos(x): the two conventions for the second derivative then differ
_sin_with_doubled_rule.defvjp(lambda x: (jnp.sin(x), jnp.cos(x)), lambda cos_x, g: (2.0 * cos_x * g,))


# the same under JAX's next custom_vjp (jax_custom_vjp3=True: a call_hi_primitive)
_sin_with_doubled_rule3 = custom_vjp3(lambda x: jnp.sin(x))
_sin_with_doubled_rule3.defvjp(lambda x: (jnp.sin(x), jnp.cos(x)), lambda cos_x, g: (2.0 * cos_x * g,))


@jax.custom_vjp
def _straight_through_round(x):
    return jnp.round(x)


_straight_through_round.defvjp(lambda x: (jnp.round(x), None), lambda _, g: (g,))


@pytest.mark.parametrize(
    "loss",
    [
        lambda x: _sin_with_doubled_rule(x) ** 2,
        lambda x: jnp.sum(_sin_with_doubled_rule(x) * x),
        lambda x: jnp.sum(_straight_through_round(x * 3.0) ** 2),
        lambda x: jnp.sum(_sin_with_doubled_rule3(x) * x),
    ],
    ids=["square", "times_input", "straight_through", "custom_vjp3"],
)
def test_second_order_through_custom_vjp_follows_jaxs_convention(loss):
    # JAX's first-order program computes the primal output with the user's fwd, so a second
    # derivative differentiates fwd's own computation; the custom bwd applies to first-order
    # cotangents only (funcgrad once applied it at both levels)
    x = jnp.array([0.7, -0.2, 1.3])
    fg = lambda x: jnp.sum(funcgrad.grad(lambda y: jnp.sum(loss(y)))(x) ** 2)  # noqa: E731
    jx = lambda x: jnp.sum(jax.grad(lambda y: jnp.sum(loss(y)))(x) ** 2)  # noqa: E731
    np.testing.assert_allclose(funcgrad.grad(fg)(x), jax.grad(jx)(x), rtol=1e-5)
    scalar = lambda x: jnp.sum(loss(x))  # noqa: E731
    np.testing.assert_allclose(funcgrad.hessian(scalar)(x), jax.hessian(scalar)(x), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(jax.jit(funcgrad.hessian(scalar))(x), jax.hessian(scalar)(x), rtol=1e-5, atol=1e-6)


def test_nondiff_argnums_get_the_callers_array_not_a_tracer():
    # jax.grad hands a function its non-differentiated arguments as they are, and custom_vjp insists
    # that nondiff_argnums hold no tracer (Equinox and Flax pass arrays there)
    @functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
    def scaled(x, scale):
        return x * scale

    scaled.defvjp(lambda x, scale: (x * scale, None), lambda scale, _, g: (g * scale * 2.0,))
    loss = lambda x, s: jnp.sum(scaled(x, s))  # noqa: E731
    x = jnp.ones(3)
    for s in (jnp.array(2.0), jnp.array(5.0), jnp.array(2.0)):  # new values each call: not a stale graph
        np.testing.assert_allclose(funcgrad.grad(loss)(x, s), jax.grad(loss)(x, s))
        v, g = funcgrad.value_and_grad(loss)(x, s)
        np.testing.assert_allclose(v, loss(x, s))
    # where JAX itself hands it a tracer (differentiating the scale, or under jit), both refuse alike
    for transform in (lambda g: g(loss, argnums=(0, 1)), lambda g: jax.jit(g(loss))):
        with pytest.raises(jax.errors.UnexpectedTracerError):
            transform(jax.grad)(x, jnp.array(2.0))
        with pytest.raises(jax.errors.UnexpectedTracerError):
            transform(funcgrad.grad)(x, jnp.array(2.0))


def test_custom_vjp_bwd_runs_when_no_cotangent_reaches_it():
    # JAX runs a custom_vjp's bwd whenever the equation is differentiated, even with zero cotangents, and
    # a bwd may return a "gradient" that does not come from them (Flax's fp8 layers return the new amax
    # history so). funcgrad once skipped the rule when no cotangent arrived: a silent zero.
    @jax.custom_vjp
    def record(x, history):
        return x * 1.0

    record.defvjp(lambda x, h: (x * 1.0, h + 1.0), lambda new_history, ct: (None, new_history))

    @jax.custom_vjp
    def consume(y, w):
        return y * w

    consume.defvjp(lambda y, w: (y * w, y), lambda y, ct: (None, jnp.sum(ct * y)))  # no cotangent for y

    def loss(w, history, x):
        return jnp.sum(consume(record(x, history), w))

    args = (jnp.float32(2.0), jnp.array([1.0, 5.0]), jnp.array([0.5, -1.0]))
    want = jax.grad(loss, argnums=(0, 1))(*args)
    np.testing.assert_allclose(want[1], [2.0, 6.0])
    for ours in (funcgrad.grad(loss, argnums=(0, 1))(*args), jax.jit(funcgrad.grad(loss, argnums=(0, 1)))(*args)):
        chex.assert_trees_all_close(ours, want)
