"""funcgrad's differentiation API as a drop-in for JAX's: signatures, errors, values, dtypes, pytrees.

Every test runs the same call through ``jax.<fn>`` and ``funcgrad.<fn>`` and compares: the parameters
(names, kinds, defaults), the exception raised (funcgrad's must be an instance of JAX's class), the
values, the dtypes and weak types of the gradients, ``aux`` values passed through unchanged, and the
``vjp`` function as a pytree that ``jax.jit`` accepts.
"""

from __future__ import annotations

import inspect

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import funcgrad
from tests.conftest import x64

typeof = getattr(jax, "typeof", None) or jax.core.get_aval  # jax.typeof: jax >= 0.6

# JAX's differentiation functions: funcgrad has each, with JAX's signature
PARITY = [
    "grad",
    "value_and_grad",
    "vjp",
    "jacrev",
    "jacobian",
    "hessian",
    "jvp",
    "jacfwd",
    "linearize",
    "linear_transpose",
]


def _params(fn):
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


@pytest.mark.parametrize("name", PARITY)
def test_signature_matches_jax(name):
    assert _params(getattr(funcgrad, name)) == _params(getattr(jax, name))


def test_every_jax_differentiation_function_is_compared():
    differentiation = {"grad", "value_and_grad", "vjp", "jvp", "linearize", "linear_transpose", "hessian"}
    differentiation |= {n for n in dir(jax) if n.startswith("jac")}
    assert differentiation <= set(PARITY) and set(PARITY) <= set(funcgrad.__all__)


# ------------------------------------------------------------------ errors


Z = jnp.array([1.0 + 2.0j, -0.5 + 0.25j], jnp.complex64)
X = jnp.array([0.5, -1.0, 2.0], jnp.float32)


@jax.custom_vjp
def _identity_vjp(x):
    return x


_identity_vjp.defvjp(lambda x: (x, None), lambda _, g: (g,))


def _vjp_fn(api, f, *primals):
    return api.vjp(f, *primals)[1]


# (id, call(api)): each raises in JAX; funcgrad must raise an instance of the same class
ERRORS = [
    ("grad_reduce_axes", lambda api: api.grad(jnp.sin, reduce_axes=("i",))),
    ("value_and_grad_reduce_axes", lambda api: api.value_and_grad(jnp.sin, reduce_axes=("i",))),
    ("vjp_reduce_axes", lambda api: api.vjp(jnp.sin, 1.0, reduce_axes=("i",))),
    ("holomorphic_real_input", lambda api: api.grad(lambda z: z * z, holomorphic=True)(1.0)),
    ("holomorphic_int_input", lambda api: api.grad(lambda z: z * 1j, holomorphic=True, allow_int=True)(1)),
    ("holomorphic_real_output", lambda api: api.grad(lambda z: jnp.real(z), holomorphic=True)(1.0 + 1j)),
    ("complex_output", lambda api: api.grad(lambda z: z * z)(1.0 + 2j)),
    ("complex_output_real_input", lambda api: api.grad(lambda x: x * 1j)(1.0)),
    ("integer_output", lambda api: api.grad(lambda x: jnp.int32(3))(1.0)),
    ("integer_input", lambda api: api.grad(lambda x: x * 2.0)(3)),
    ("non_scalar_output", lambda api: api.grad(lambda x: x * 2.0)(X)),
    ("tuple_output", lambda api: api.grad(lambda x: (jnp.sum(x),))(X)),
    ("none_output", lambda api: api.grad(lambda x: None)(1.0)),
    ("string_output", lambda api: api.grad(lambda x: "a")(1.0)),
    ("string_in_vjp_output", lambda api: api.vjp(lambda x: (x, "a"), 1.0)),
    ("aux_not_a_pair", lambda api: api.grad(lambda x: (x * 2, "s", 1), has_aux=True)(1.0)),
    ("aux_scalar", lambda api: api.grad(lambda x: x * 2, has_aux=True)(1.0)),
    ("not_callable", lambda api: api.grad(3)),
    ("argnums_float", lambda api: api.grad(jnp.sin, argnums=1.5)),
    ("argnums_out_of_range", lambda api: api.grad(jnp.sin, argnums=2)(1.0)),
    ("string_input", lambda api: api.grad(lambda s: 1.0)("a")),
    ("jacrev_holomorphic_real_input", lambda api: api.jacrev(lambda z: z * z, holomorphic=True)(X)),
    ("jacrev_holomorphic_int_output", lambda api: api.jacrev(lambda z: jnp.int32(1), holomorphic=True)(1j)),
    ("jacrev_complex_output", lambda api: api.jacrev(lambda z: z * z)(Z)),
    ("jacrev_integer_output", lambda api: api.jacrev(lambda x: x.astype(jnp.int32))(X)),
    ("jacrev_integer_input", lambda api: api.jacrev(lambda x: x * 1.0)(jnp.ones(2, jnp.int32))),
    ("hessian_holomorphic_real_input", lambda api: api.hessian(lambda z: jnp.sum(z**3), holomorphic=True)(X)),
    ("hessian_complex_input", lambda api: api.hessian(lambda z: jnp.sum(jnp.abs(z) ** 2))(Z)),
    ("vjp_fn_two_arguments", lambda api: _vjp_fn(api, jnp.sin, 1.0)(1.0, 2.0)),
    ("vjp_fn_wrong_shape", lambda api: _vjp_fn(api, jnp.sin, X)(jnp.ones(4))),
    ("vjp_fn_wrong_tree", lambda api: _vjp_fn(api, lambda x: (x, 3.0), 1.0)((1.0, None))),
    ("vjp_fn_integer_cotangent", lambda api: _vjp_fn(api, jnp.sin, 1.0)(1)),
    ("jvp_not_tuples", lambda api: api.jvp(jnp.sin, 1.0, 1.0)),
    ("jvp_tree_mismatch", lambda api: api.jvp(lambda x, y: x, (1.0, 2.0), ((1.0,), 2.0))),
    ("jvp_shape_mismatch", lambda api: api.jvp(jnp.sin, (X,), (jnp.ones(2),))),
    ("jvp_dtype_mismatch", lambda api: api.jvp(jnp.sin, (X,), (X.astype(jnp.float16),))),
    ("jvp_integer_tangent", lambda api: api.jvp(lambda n: n * 2, (1,), (1,))),
    ("jvp_custom_vjp", lambda api: api.jvp(_identity_vjp, (1.0,), (1.0,))),
    ("jacfwd_integer_input", lambda api: api.jacfwd(lambda x: x * 2.0)(jnp.ones(2, jnp.int32))),
    ("jacfwd_complex_input", lambda api: api.jacfwd(lambda z: z * 2.0)(Z)),
    ("jacfwd_holomorphic_real_input", lambda api: api.jacfwd(lambda z: z * z, holomorphic=True)(X)),
    ("jacfwd_custom_vjp", lambda api: api.jacfwd(_identity_vjp)(X)),
    ("linearize_wrong_tangent", lambda api: api.linearize(jnp.sin, 1.0)[1](jnp.ones(3))),
    ("linear_transpose_of_sin", lambda api: api.linear_transpose(jnp.sin, 1.0)(1.0)),
    ("linear_transpose_of_square", lambda api: api.linear_transpose(lambda x: x * x, 1.0)(1.0)),
    ("linear_transpose_float_to_int", lambda api: api.linear_transpose(lambda x: (x * 2).astype(jnp.int32), 1.0)),
    ("linear_transpose_reduce_axes", lambda api: api.linear_transpose(jnp.negative, 1.0, reduce_axes=("i",))),
]


@pytest.mark.parametrize("call", [c for _, c in ERRORS], ids=[i for i, _ in ERRORS])
def test_error_is_an_instance_of_jax_s(call):
    with pytest.raises(Exception) as want:
        call(jax)
    with pytest.raises(Exception) as got:
        call(funcgrad)
    assert isinstance(got.value, type(want.value)), (type(got.value), type(want.value), str(got.value))
    msg = str(got.value)
    if isinstance(got.value, funcgrad.FuncgradError):
        assert "fix:" in msg, msg  # funcgrad's message names the fix


# JAX's wording, kept at the start of funcgrad's message (funcgrad adds the culprit and the fix)
MESSAGES = [
    ("grad_reduce_axes", "reduce_axes argument to grad is deprecated"),
    ("vjp_reduce_axes", "reduce_axes argument to vjp is deprecated"),
    ("holomorphic_real_input", "grad with holomorphic=True requires inputs with complex dtype, but got float32"),
    ("holomorphic_int_input", "grad with holomorphic=True requires inputs with complex dtype, but got int32"),
    ("holomorphic_real_output", "grad with holomorphic=True requires outputs with complex dtype, but got float32"),
    (
        "complex_output",
        "grad requires real-valued outputs (output dtype that is a sub-dtype of np.floating), but got complex64",
    ),
    (
        "integer_output",
        "grad requires real-valued outputs (output dtype that is a sub-dtype of np.floating), but got int32",
    ),
    ("non_scalar_output", "Gradient only defined for scalar-output functions"),
    ("not_callable", "Expected a callable value, got 3"),
    (
        "jacrev_holomorphic_real_input",
        "jacrev with holomorphic=True requires inputs with complex dtype, but got float32",
    ),
    ("jvp_not_tuples", "primal and tangent arguments to jax.jvp must be tuples or lists; found float and float"),
    ("jvp_tree_mismatch", "primal and tangent arguments to jax.jvp must have the same tree structure"),
    ("jvp_shape_mismatch", "jvp called with different primal and tangent shapes;Got primal shape (3,)"),
    ("jvp_integer_tangent", "primal and tangent arguments to jax.jvp do not match; dtypes must be equal"),
    ("jvp_custom_vjp", "can't apply forward-mode autodiff (jvp) to a custom_vjp function."),
    ("jacfwd_integer_input", "jacfwd requires real-valued inputs (input dtype that is a sub-dtype of np.floating)"),
    ("linearize_wrong_tangent", "linearized function called on tangent values inconsistent with the original"),
    ("linear_transpose_float_to_int", "linear_transpose only supports [float or complex] -> [float or complex]"),
    (
        "jacrev_complex_output",
        "jacrev requires real-valued outputs (output dtype that is a sub-dtype of np.floating), but got complex64",
    ),
]


@pytest.mark.parametrize("case,words", MESSAGES, ids=[c for c, _ in MESSAGES])
def test_error_message_starts_with_jax_s_words(case, words):
    call = dict(ERRORS)[case]
    with pytest.raises(Exception) as want:
        call(jax)
    with pytest.raises(Exception) as got:
        call(funcgrad)
    assert str(want.value).startswith(words), str(want.value)
    assert str(got.value).startswith(words), str(got.value)


def test_reduce_axes_empty_is_accepted():
    for api in (jax, funcgrad):
        np.testing.assert_allclose(api.grad(jnp.sin, reduce_axes=())(1.0), np.cos(1.0), rtol=1e-6)
        np.testing.assert_allclose(api.value_and_grad(jnp.sin, reduce_axes=[])(1.0)[1], np.cos(1.0), rtol=1e-6)
        np.testing.assert_allclose(api.vjp(jnp.sin, 1.0, reduce_axes=())[1](1.0)[0], np.cos(1.0), rtol=1e-6)


# ----------------------------------------------------------------- holomorphic


HOLOMORPHIC = [
    ("square", lambda z: z * z),
    ("sin_times_z", lambda z: jnp.sin(z) * z),
    ("exp_over_cos", lambda z: jnp.exp(z) / jnp.cos(z)),
    ("log1p", lambda z: jnp.log1p(z)),
    ("power", lambda z: z**3 - 2.0 * z),
    ("tanh", lambda z: jnp.tanh(z)),
]
Z0 = [jnp.complex64(0.3 + 0.7j), np.complex64(-1.2 + 0.4j), 0.5 - 0.25j]


@pytest.mark.parametrize("f", [f for _, f in HOLOMORPHIC], ids=[i for i, _ in HOLOMORPHIC])
@pytest.mark.parametrize("z", Z0, ids=["jnp", "np", "python"])
def test_holomorphic_grad_and_value_and_grad(f, z):
    want = jax.grad(f, holomorphic=True)(z)
    got = funcgrad.grad(f, holomorphic=True)(z)
    np.testing.assert_allclose(got, want, rtol=1e-5)
    assert typeof(got) == typeof(want)
    (v1, g1), (v2, g2) = funcgrad.value_and_grad(f, holomorphic=True)(z), jax.value_and_grad(f, holomorphic=True)(z)
    chex.assert_trees_all_close((v1, g1), (v2, g2), rtol=1e-5)


@pytest.mark.parametrize("f", [f for _, f in HOLOMORPHIC[:3]], ids=[i for i, _ in HOLOMORPHIC[:3]])
def test_holomorphic_jacrev_and_hessian(f):
    with x64():
        z = jnp.array([0.3 + 0.7j, -1.2 + 0.4j, 0.1 - 0.2j], jnp.complex128)
        chex.assert_trees_all_close(
            funcgrad.jacrev(f, holomorphic=True)(z), jax.jacrev(f, holomorphic=True)(z), rtol=1e-10
        )
        s = lambda z: jnp.sum(f(z))
        chex.assert_trees_all_close(
            funcgrad.hessian(s, holomorphic=True)(z), jax.hessian(s, holomorphic=True)(z), rtol=1e-10
        )


def test_holomorphic_pytree_argnums_and_aux():
    def f(p, w):
        return jnp.sum(p["a"] * jnp.sin(p["b"]) * w), {"tag": "holo", "n": 2}

    p = {"a": Z, "b": Z[::-1] * 0.5}
    w = jnp.complex64(0.5 - 1j)
    for argnums in (0, 1, (0, 1)):
        got = funcgrad.grad(f, argnums, has_aux=True, holomorphic=True)(p, w)
        want = jax.grad(f, argnums, has_aux=True, holomorphic=True)(p, w)
        chex.assert_trees_all_close(got[0], want[0], rtol=1e-5)
        assert got[1] == want[1] == {"tag": "holo", "n": 2}


def test_non_holomorphic_complex_inputs_with_real_output():
    fs = [lambda z: jnp.sum(jnp.abs(z) ** 2), lambda z: jnp.sum(jnp.real(z * z)), lambda z: jnp.sum(jnp.angle(z))]
    for f in fs:
        chex.assert_trees_all_close(funcgrad.grad(f)(Z), jax.grad(f)(Z), rtol=1e-5)
        chex.assert_trees_all_close(funcgrad.jacrev(f)(Z), jax.jacrev(f)(Z), rtol=1e-5)


# ------------------------------------------------------------------ aux and constant outputs


class Opaque:
    """An object no JAX transformation knows."""


SENTINEL = Opaque()
CLOSED = jnp.arange(3.0)

AUX = [
    ("str", "hello"),
    ("object", SENTINEL),
    ("none", None),
    ("int", 3),
    ("float", 2.5),
    ("dict", {"n": 3, "s": "a", "none": None}),
    ("tuple", (1, "x", None, SENTINEL)),
    ("numpy", np.float32(2.0)),
    ("closed_over_array", CLOSED),
    ("class", Opaque),
]


def _same_aux(got, want):
    got_leaves, got_tree = jax.tree_util.tree_flatten(got)
    want_leaves, want_tree = jax.tree_util.tree_flatten(want)
    assert got_tree == want_tree
    for a, b in zip(got_leaves, want_leaves):
        assert type(a) is type(b)
        if isinstance(b, (jax.Array, np.ndarray, np.generic)):
            np.testing.assert_array_equal(a, b)
        else:
            assert a is b or a == b


@pytest.mark.parametrize("aux", [a for _, a in AUX], ids=[i for i, _ in AUX])
def test_non_array_aux_comes_back_unchanged(aux):
    f = lambda x: (jnp.sum(jnp.sin(x)), aux)
    g1, a1 = funcgrad.grad(f, has_aux=True)(X)
    g2, a2 = jax.grad(f, has_aux=True)(X)
    np.testing.assert_allclose(g1, g2, rtol=1e-6)
    _same_aux(a1, a2)
    (_, a3), _ = funcgrad.value_and_grad(f, has_aux=True)(X)
    _same_aux(a3, a2)
    _, vjp_fn, a4 = funcgrad.vjp(f, X, has_aux=True)
    _same_aux(a4, jax.vjp(f, X, has_aux=True)[2])
    np.testing.assert_allclose(vjp_fn(jnp.float32(1.0))[0], g2, rtol=1e-6)
    _, a5 = funcgrad.jacrev(lambda x: (jnp.sin(x), aux), has_aux=True)(X)
    _same_aux(a5, jax.jacrev(lambda x: (jnp.sin(x), aux), has_aux=True)(X)[1])


def test_aux_mixing_traced_and_static_leaves():
    f = lambda x: (jnp.sum(x**2), {"y": jnp.cos(x), "name": "loss", "step": 7, "c": CLOSED})
    (v1, a1), g1 = funcgrad.value_and_grad(f, has_aux=True)(X)
    (v2, a2), g2 = jax.value_and_grad(f, has_aux=True)(X)
    chex.assert_trees_all_close((v1, g1, a1["y"], a1["c"]), (v2, g2, a2["y"], a2["c"]), rtol=1e-6)
    assert a1["name"] == "loss" and a1["step"] == 7 and type(a1["step"]) is int


def test_static_aux_follows_static_arguments_through_the_cache():
    def f(x, mode):
        return jnp.sum(x), f"mode={mode}"

    for mode in ("a", "b", "a"):
        assert funcgrad.grad(f, has_aux=True)(X, mode)[1] == jax.grad(f, has_aux=True)(X, mode)[1]


# (id, function): each output depends on no input
CONSTANTS = [
    ("python_float", lambda x: 3.0),
    ("numpy_float32", lambda x: np.float32(3.0)),
    ("numpy_float64", lambda x: np.float64(3.0)),
    ("jnp_float32", lambda x: jnp.float32(3.0)),
    ("jnp_asarray", lambda x: jnp.asarray(2.0)),
    ("closed_over_array", lambda x: CLOSED[1]),
    ("stopped", lambda x: jax.lax.stop_gradient(jnp.sum(x)) * 0.0 + 1.0),
]
INPUTS = [
    ("python", lambda: 2.0),
    ("jnp_f32", lambda: jnp.float32(2.0)),
    ("numpy_vector", lambda: np.ones(3, np.float32)),
    ("jnp_vector", lambda: X),
]


def _same_value(got, want):
    assert type(got) is type(want) or (isinstance(got, jax.Array) and isinstance(want, jax.Array)), (got, want)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    if isinstance(want, jax.Array):
        assert typeof(got) == typeof(want)


@pytest.mark.parametrize("f", [f for _, f in CONSTANTS], ids=[i for i, _ in CONSTANTS])
@pytest.mark.parametrize("make_x", [m for _, m in INPUTS], ids=[i for i, _ in INPUTS])
def test_constant_output_value_and_zero_gradient(f, make_x):
    x = make_x()
    v1, g1 = funcgrad.value_and_grad(f)(x)
    v2, g2 = jax.value_and_grad(f)(x)
    _same_value(v1, v2)
    np.testing.assert_array_equal(g1, g2)
    assert typeof(g1) == typeof(g2)  # zeros of the input's dtype and weak type
    out1, vjp1 = funcgrad.vjp(f, x)
    out2, vjp2 = jax.vjp(f, x)
    _same_value(out1, out2)
    ct = jnp.ones_like(jnp.asarray(out2))
    chex.assert_trees_all_equal(vjp1(ct), vjp2(ct))


def test_constant_output_under_x64():
    with x64():
        for f in (lambda x: 3.0, lambda x: jnp.float32(1.0)):
            v1, g1 = funcgrad.value_and_grad(f)(2.0)
            v2, g2 = jax.value_and_grad(f)(2.0)
            _same_value(v1, v2)
            assert typeof(g1) == typeof(g2)


def test_constant_jacobian():
    for x in (2.0, X):
        for f in (lambda x: 3.0, lambda x: jnp.ones(2), lambda x: (CLOSED, x * 2)):
            got, want = funcgrad.jacrev(f)(x), jax.jacrev(f)(x)
            chex.assert_trees_all_close(got, want)
            assert jax.tree_util.tree_map(typeof, got) == jax.tree_util.tree_map(typeof, want)


# ------------------------------------------------------------------ dtypes and weak types


SCALAR_FUNCTIONS = [
    ("square", lambda x: x * x),
    ("times_f32", lambda x: x * jnp.float32(2.0)),
    ("sum_of_broadcast", lambda x: jnp.sum(x * jnp.ones(3))),
    ("to_f16", lambda x: (x * x).astype(jnp.float16)),
    ("unused", lambda x: jnp.float32(1.0)),
]


@pytest.mark.parametrize("f", [f for _, f in SCALAR_FUNCTIONS], ids=[i for i, _ in SCALAR_FUNCTIONS])
@pytest.mark.parametrize(
    "x", [2.0, np.float64(2.0), jnp.float32(2.0), jnp.bfloat16(2.0)], ids=["python", "np64", "jnp32", "bf16"]
)
@pytest.mark.parametrize("wide", [False, True], ids=["x32", "x64"])
def test_gradient_dtype_and_weak_type_match_jax(f, x, wide):
    if wide:
        with x64():
            got, want = funcgrad.grad(f)(x), jax.grad(f)(x)
    else:
        got, want = funcgrad.grad(f)(x), jax.grad(f)(x)
    assert typeof(got) == typeof(want)  # dtype, shape and weak type
    np.testing.assert_allclose(np.asarray(got, np.float64), np.asarray(want, np.float64), rtol=1e-3)


def test_python_scalar_gradients_of_jacrev_hessian_and_pytrees():
    f = lambda x, y: x**3 * y + jnp.sin(y)
    for argnums in (1, (0, 1)):
        for api_fn in ("grad", "jacrev", "hessian"):
            got = getattr(funcgrad, api_fn)(f, argnums)(2.0, 3.0)
            want = getattr(jax, api_fn)(f, argnums)(2.0, 3.0)
            chex.assert_trees_all_close(got, want, rtol=1e-6)
            assert jax.tree_util.tree_map(typeof, got) == jax.tree_util.tree_map(typeof, want)
    p = {"w": 2.0, "b": jnp.float32(1.0), "n": [0.5, np.float32(1.5)]}
    loss = lambda p: p["w"] * p["b"] + p["n"][0] * p["n"][1]
    got, want = funcgrad.grad(loss)(p), jax.grad(loss)(p)
    assert jax.tree_util.tree_map(typeof, got) == jax.tree_util.tree_map(typeof, want)
    chex.assert_trees_all_close(got, want)


def test_python_complex_scalar_reaches_rules_as_an_array():
    # a Python complex passed to grad is given to the VJP rules as an array (abs's rule reads x.dtype)
    f = lambda z: jnp.abs(z) ** 2
    np.testing.assert_allclose(funcgrad.grad(f)(1.0 + 2.0j), jax.grad(f)(1.0 + 2.0j), rtol=1e-6)


# ------------------------------------------------------------------ vjp_fn is a pytree


def _vjp_cases():
    w = {"a": X, "b": (jnp.array([1.5]), jnp.float32(3.0))}
    return [
        ("sin", jnp.sin, (X,), jnp.ones(3)),
        ("pytree", lambda w, x: {"y": w["a"] * x, "z": jnp.sin(w["b"][1])}, (w, X), {"y": X, "z": jnp.float32(0.3)}),
        ("python_scalar", lambda x: x**2 + 1.0, (2.0,), jnp.float32(1.0)),
        ("integer_primal", lambda x, n: x * n, (jnp.float32(2.0), jnp.int32(3)), jnp.float32(1.0)),
        ("constant_output", lambda x: (x * 2.0, 3.0), (X,), (jnp.ones(3), jnp.float32(1.0))),
    ]


@pytest.mark.parametrize("name,f,primals,ct", _vjp_cases(), ids=[c[0] for c in _vjp_cases()])
def test_vjp_fn_is_a_partial_that_jit_accepts(name, f, primals, ct):
    out1, vjp1 = funcgrad.vjp(f, *primals)
    out2, vjp2 = jax.vjp(f, *primals)
    chex.assert_trees_all_close(out1, out2)
    assert isinstance(vjp1, jax.tree_util.Partial)
    leaves = jax.tree_util.tree_leaves(vjp1)
    assert all(isinstance(leaf, (jax.Array, np.ndarray)) for leaf in leaves)
    want = vjp2(ct)
    _same_cotangents(vjp1(ct), want)
    _same_cotangents(jax.jit(lambda fn, c: fn(c))(vjp1, ct), want)


def _same_cotangents(got, want):
    chex.assert_trees_all_equal_structs(got, want)
    for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
        assert a.dtype == b.dtype and np.shape(a) == np.shape(b)
        if b.dtype != jax.dtypes.float0:
            np.testing.assert_allclose(a, b, rtol=1e-6)


def test_vjp_fn_jit_does_not_retrace_for_a_new_vjp_of_the_same_program():
    traces = []

    @jax.jit
    def apply(fn, ct):
        traces.append(1)
        return fn(ct)

    f = lambda x: jnp.sin(x) * x + CLOSED
    for k in range(3):
        x = X * (k + 1)
        got = apply(funcgrad.vjp(f, x)[1], jnp.ones(3))
        chex.assert_trees_all_close(got, jax.vjp(f, x)[1](jnp.ones(3)), rtol=1e-6)
    assert len(traces) == 1


def test_vjp_fn_with_aux_under_jit_vmap_and_returned_from_jit():
    f = lambda x: (jnp.tanh(x) * 2.0, {"n": jnp.sum(x), "tag": "t"})
    out, vjp_fn, aux = funcgrad.vjp(f, X, has_aux=True)
    assert aux["tag"] == "t"
    want = jax.vjp(f, X, has_aux=True)[1]
    cts = jnp.stack([jnp.ones(3), jnp.arange(3.0)])
    chex.assert_trees_all_close(
        jax.vmap(lambda fn, c: fn(c), in_axes=(None, 0))(vjp_fn, cts),
        jax.vmap(lambda fn, c: fn(c), in_axes=(None, 0))(want, cts),
        rtol=1e-6,
    )
    made = jax.jit(lambda x: funcgrad.vjp(lambda x: jnp.tanh(x) * 2.0, x)[1])(X)
    assert isinstance(made, jax.tree_util.Partial)
    chex.assert_trees_all_close(made(jnp.ones(3)), want(jnp.ones(3)), rtol=1e-6)


def test_vjp_fn_differentiated_again():
    f = lambda x: jnp.sin(x) * x
    second = lambda x: jnp.sum(funcgrad.vjp(f, x)[1](jnp.ones(3))[0])
    want = lambda x: jnp.sum(jax.vjp(f, x)[1](jnp.ones(3))[0])
    np.testing.assert_allclose(funcgrad.grad(second)(X), jax.grad(want)(X), rtol=1e-6)


def test_value_and_grad_positional_parameters_in_jax_s_order():
    # nnx.grad and other wrappers pass JAX's parameters by position or by name
    f = lambda x, y: (jnp.sum(x * y), "aux")
    got = funcgrad.value_and_grad(f, (0, 1), True, False, False, ())(X, X)
    want = jax.value_and_grad(f, (0, 1), True, False, False, ())(X, X)
    chex.assert_trees_all_close(got[0][0], want[0][0])
    chex.assert_trees_all_close(got[1], want[1])
    assert got[0][1] == want[0][1] == "aux"
    kw = dict(argnums=1, has_aux=False, holomorphic=False, allow_int=True)
    g = lambda x, n: jnp.sum(x) * n.astype(jnp.float32)
    assert funcgrad.grad(g, **kw)(X, jnp.int32(2)).dtype == jax.grad(g, **kw)(X, jnp.int32(2)).dtype
    chex.assert_trees_all_close(
        funcgrad.jacrev(jnp.sin, 0, False, False, False)(X), jax.jacrev(jnp.sin, 0, False, False, False)(X)
    )
    chex.assert_trees_all_close(
        funcgrad.hessian(lambda x: jnp.sum(x**3), 0, False, False)(X), jax.hessian(lambda x: jnp.sum(x**3))(X)
    )


def test_float64_mode_is_part_of_the_trace_cache_key():
    # the same function on the same Python scalar / NumPy float64 array traces to float32 or float64
    f = lambda x: jnp.sum(x * x)
    for x in (2.0, np.ones(3)):
        assert funcgrad.grad(f)(x).dtype == jax.grad(f)(x).dtype == jnp.float32
        with x64():
            assert funcgrad.grad(f)(x).dtype == jax.grad(f)(x).dtype == jnp.float64
        assert funcgrad.grad(f)(x).dtype == jnp.float32
