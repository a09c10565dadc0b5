"""The bad-input catalogue: one test per way of calling funcgrad wrongly (or unusually).

Each error test checks the exception type, that the message names the culprit
(a pytree path, a primitive, the user's file:line) and that it suggests a fix.
Unusual-but-valid inputs (None leaves, complex numbers, NaN/Inf, empty and 0-d
arrays, huge graphs, new shapes after caching) must give JAX's answers.
The catalogue is summarised in docs/reliability.md.
"""

from __future__ import annotations

import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import funcgrad
from funcgrad.errors import InputError, NonDifferentiableError, TracingError, UnsupportedPrimitiveError
from funcgrad.rules.registry import vjp_rules
from tests.conftest import x64

X = jnp.array([0.5, -1.5, 2.0])
HERE = __file__.rsplit("/", 1)[-1]


def _line_of(marker: str) -> int:
    """The line number in this file of the (unique) line containing ``marker``."""
    with open(__file__) as f:
        hits = [i for i, line in enumerate(f, 1) if marker in line and "_line_of" not in line]
    assert len(hits) == 1, hits
    return hits[0]


def _assert_same(got, want, **tol):
    """Same pytree structure, dtypes and values (NaN where JAX has NaN)."""
    assert jax.tree_util.tree_structure(got) == jax.tree_util.tree_structure(want)
    for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
        assert jnp.result_type(a) == jnp.result_type(b)
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), **(tol or {"rtol": 1e-6}))


# ----------------------------------------------------------------- outputs


def test_non_scalar_output_to_grad():
    def per_example_loss(x):
        return x**2

    with pytest.raises(InputError) as e:
        funcgrad.grad(per_example_loss)(X)
    msg = str(e.value)
    assert "per_example_loss" in msg and "float32[3]" in msg
    assert ".sum()" in msg and "jacrev" in msg and "has_aux" in msg


def test_integer_output_to_grad():
    with pytest.raises(InputError) as e:
        funcgrad.grad(lambda x: jnp.sum(x > 0))(X)
    msg = str(e.value)
    assert "int32" in msg and "floating-point" in msg and "fix:" in msg


def test_complex_output_to_grad_names_dtype_and_fix():
    z = jnp.array([1 + 2j, 3 - 1j])
    with pytest.raises(InputError) as e:
        funcgrad.grad(lambda z: jnp.sum(z * z))(z)
    msg = str(e.value)
    assert "complex64" in msg and "jnp.abs(z) ** 2" in msg and "funcgrad.vjp" in msg


# ------------------------------------------------------------------ inputs


def test_integer_leaf_names_its_path():
    params = {"layer": [{"w": X}, {"steps": jnp.int32(3)}]}
    with pytest.raises(InputError) as e:
        funcgrad.grad(lambda params: jnp.sum(params["layer"][0]["w"]))(params)
    msg = str(e.value)
    assert "params['layer'][1]['steps']" in msg and "int32" in msg and "allow_int=True" in msg


def test_integer_leaf_with_allow_int_gives_float0_like_jax():
    f = lambda p: jnp.sum(p["w"]) * p["n"]
    p = {"w": X, "n": jnp.int32(3)}
    got, want = funcgrad.grad(f, allow_int=True)(p), jax.grad(f, allow_int=True)(p)
    assert got["n"].dtype == want["n"].dtype == jax.dtypes.float0
    np.testing.assert_allclose(got["w"], want["w"])


def test_python_int_argument_is_an_integer_leaf():
    with pytest.raises(InputError) as e:
        funcgrad.grad(lambda scale: scale * 2.0)(3)
    assert "scale" in str(e.value) and "int32" in str(e.value) and "fix:" in str(e.value)


def test_bool_leaf_names_its_path():
    with pytest.raises(InputError) as e:
        funcgrad.grad(lambda p: jnp.sum(p["x"]) * p["train"])({"x": X, "train": jnp.bool_(True)})
    msg = str(e.value)
    assert "p['train']" in msg and "bool" in msg and "fix:" in msg


def test_none_leaf_is_an_empty_subtree_as_in_jax():
    # None is an empty pytree node in JAX: no gradient, and None comes back in its place
    f = lambda p: jnp.sum(p["w"] ** 2)
    p = {"w": X, "b": None, "extra": (None, X)}
    _assert_same(funcgrad.grad(f)(p), jax.grad(f)(p))
    assert funcgrad.grad(lambda p, x: jnp.sum(x))(None, X) is None
    assert jax.grad(lambda p, x: jnp.sum(x))(None, X) is None


@pytest.mark.parametrize("leaf", ["relu", object()], ids=["str", "object"])
def test_non_array_leaf_in_differentiated_argument(leaf):
    with pytest.raises(InputError) as e:
        funcgrad.grad(lambda p: jnp.sum(p["w"]))({"w": X, "act": leaf})
    msg = str(e.value)
    assert "p['act']" in msg and type(leaf).__name__ in msg and "not in argnums" in msg


def test_non_array_leaf_in_other_argument_is_passed_through():
    def loss(w, cfg):
        y = jnp.tanh(w) if cfg["act"] == "tanh" else w
        return jnp.sum(y) * cfg["scale"]

    cfg = {"act": "tanh", "scale": 2.0}
    np.testing.assert_allclose(funcgrad.grad(loss)(X, cfg), jax.grad(loss)(X, cfg), rtol=1e-6)


@pytest.mark.parametrize("argnums", [2, -3, (0, 5)])
def test_argnums_out_of_range(argnums):
    def loss(w, x):
        return jnp.sum(w * x)

    with pytest.raises(InputError) as e:
        funcgrad.grad(loss, argnums=argnums)(X, X)
    msg = str(e.value)
    assert f"argnums={argnums!r}" in msg and "loss" in msg and "2 positional" in msg
    assert "between 0 and 1" in msg


def test_argnums_with_keyword_only_call():
    with pytest.raises(InputError) as e:
        funcgrad.grad(lambda x=1.0: x * 2.0)(x=X)
    msg = str(e.value)
    assert "0 positional" in msg and "positional arguments" in msg and "between 0 and -1" not in msg


def test_complex_inputs_follow_jax_convention():
    # for a real loss of complex z, JAX returns the conjugate of dL/dz (2 conj(z) for |z|^2)
    z = jnp.array([1 + 2j, 3 - 1j, -0.5j], jnp.complex64)
    for f in (
        lambda z: jnp.sum(jnp.abs(z) ** 2),
        lambda z: jnp.sum(jnp.real(jnp.exp(z) * z)),
        lambda z: jnp.abs(jnp.sum(z**3)),
    ):
        _assert_same(funcgrad.grad(f)(z), jax.grad(f)(z), rtol=1e-5)
    ct = jnp.array([0.5 - 1j, 2 + 0.3j, 1j], jnp.complex64)
    _, vjp_f = funcgrad.vjp(jnp.sin, z)
    _, vjp_j = jax.vjp(jnp.sin, z)
    _assert_same(vjp_f(ct), vjp_j(ct), rtol=1e-5)


@pytest.mark.parametrize(
    "fn",
    [
        lambda x: jnp.sum(x * x),
        lambda x: jnp.sum(jnp.sqrt(x)),
        lambda x: jnp.max(x),
        lambda x: jnp.sum(jnp.where(x > 0, x, 0.0)),
        lambda x: jnp.sum(jnp.exp(x) * jnp.tanh(x)),
        lambda x: jnp.sum(jax.nn.relu(x)),
        lambda x: jax.nn.logsumexp(x),
        lambda x: jnp.sum(jnp.sort(x) * jnp.arange(5.0)),
    ],
    ids=["square", "sqrt", "max", "where", "exp_tanh", "relu", "logsumexp", "sort"],
)
def test_nan_and_inf_inputs_match_jax(fn):
    x = jnp.array([np.nan, np.inf, -np.inf, 1.0, 0.0])
    _assert_same(funcgrad.grad(fn)(x), jax.grad(fn)(x))


@pytest.mark.parametrize("shape", [(0,), (0, 3), (2, 0, 4), ()], ids=str)
def test_empty_and_0d_arrays_match_jax(shape):
    x = jnp.asarray(np.random.default_rng(0).normal(size=shape), jnp.float32)
    fns = [
        lambda x: jnp.sum(jnp.tanh(x) * x),
        lambda x: jnp.sum(jnp.cumsum(x.reshape(-1)) ** 2),
        lambda x: jnp.mean(x**2) if x.size else jnp.sum(x),
        lambda x: jnp.sum(jnp.concatenate([x.reshape(-1), x.reshape(-1) * 2]) ** 2),
    ]
    for f in fns:
        _assert_same(funcgrad.grad(f)(x), jax.grad(f)(x))
    out_f, vjp_f = funcgrad.vjp(lambda x: x * 3.0, x)
    out_j, vjp_j = jax.vjp(lambda x: x * 3.0, x)
    _assert_same(vjp_f(jnp.ones(shape)), vjp_j(jnp.ones(shape)))


# -------------------------------------------------------------- primitives


def _my_square_primitive():
    # JAX evaluates it by compiling it (no Python implementation funcgrad could differentiate
    # through, see tests/test_extend.py), so it needs a rule
    import functools

    from jax._src import dispatch
    from jax.extend.core import Primitive
    from jax.interpreters import mlir

    p = Primitive("fuzzcat_square")
    p.def_impl(functools.partial(dispatch.apply_primitive, p))
    p.def_abstract_eval(lambda x: jax.core.ShapedArray(x.shape, x.dtype))
    mlir.register_lowering(p, mlir.lower_fun(lambda x: x * x, multiple_results=False))
    return p


def test_unsupported_primitive_names_primitive_line_and_fix():
    square_p = _my_square_primitive()

    def loss(x):
        return jnp.sum(square_p.bind(x))  # marker: custom primitive

    with pytest.raises(UnsupportedPrimitiveError) as e:
        funcgrad.grad(loss)(X)
    msg = str(e.value)
    assert "'fuzzcat_square'" in msg
    assert f"{HERE}:{_line_of('marker: custom primitive')}" in msg
    assert "funcgrad.defvjp('fuzzcat_square'" in msg and "supported_primitives" in msg
    # ... and the fix it suggests works
    with funcgrad.defvjp("fuzzcat_square", lambda ct, x, *, out, **params: (2 * x * ct,)):
        np.testing.assert_allclose(funcgrad.grad(loss)(X), 2 * X)
    assert "fuzzcat_square" not in vjp_rules


def test_unsupported_primitive_on_a_value_without_gradient_is_fine():
    # as in JAX, a primitive needs a rule when its input carries a gradient (even if its output is
    # later cut by stop_gradient); on a stopped input it needs none
    square_p = _my_square_primitive()
    f = lambda x: jnp.sum(x * square_p.bind(lax.stop_gradient(x)))
    np.testing.assert_allclose(funcgrad.grad(f)(X), X * X)
    np.testing.assert_allclose(jax.grad(f)(X), X * X)


def test_reverse_mode_while_loop():
    assert "while" not in vjp_rules  # declared with defnovjp: no rule, a reason instead

    def loss(x):
        return lax.while_loop(lambda c: jnp.sum(c) < 10.0, lambda c: c * 2.0, x).sum()  # marker: while

    with pytest.raises(NonDifferentiableError) as e:
        funcgrad.grad(loss)(X + 3.0)
    msg = str(e.value)
    assert "'while'" in msg and f"{HERE}:{_line_of('marker: while')}" in msg
    assert "lax.scan" in msg and "fori_loop" in msg and "custom_vjp" in msg


def test_while_loop_that_carries_no_gradient_is_fine():
    def loss(x):
        n = lax.while_loop(lambda c: c < 5, lambda c: c + 1, 0)
        return jnp.sum(x * n)

    np.testing.assert_allclose(funcgrad.grad(loss)(X), jax.grad(loss)(X))


def test_python_if_on_traced_value_under_jit_names_the_line_and_suggests_where_and_cond():
    def loss(x):
        if jnp.sum(x) > 0:  # marker: python if
            return jnp.sum(x**2)
        return jnp.sum(x)

    with pytest.raises(TracingError) as e:
        jax.jit(funcgrad.grad(loss))(X)  # abstract under jit
    msg = str(e.value)
    assert f"{HERE}:{_line_of('marker: python if')}" in msg
    assert "jnp.where" in msg and "lax.cond" in msg
    np.testing.assert_allclose(funcgrad.grad(loss)(X), jax.grad(loss)(X))  # concrete values: the branch taken


def test_python_loop_bound_from_traced_value_under_jit():
    def loss(x):
        total = 0.0
        for _ in range(int(jnp.sum(x))):  # marker: python int()
            total = total + x
        return jnp.sum(total)

    with pytest.raises(TracingError) as e:
        jax.jit(funcgrad.grad(loss))(X)  # abstract under jit
    msg = str(e.value)
    assert f"{HERE}:{_line_of('marker: python int()')}" in msg and "lax.fori_loop" in msg
    np.testing.assert_allclose(funcgrad.grad(loss)(X), jax.grad(loss)(X))  # concrete values: the loop runs


# ---------------------------------------------------------------- cotangents


def _vjp_fn():
    return funcgrad.vjp(lambda x: (x * 2.0, {"norm": jnp.sum(x**2)}), X)[1]


def test_vjp_cotangent_of_wrong_shape():
    with pytest.raises(InputError) as e:
        _vjp_fn()((jnp.ones(4), {"norm": 1.0}))
    msg = str(e.value)
    assert "(4,)" in msg and "(3,)" in msg and "ones_like" in msg


def test_vjp_cotangent_of_wrong_dtype():
    with pytest.raises(InputError) as e:
        _vjp_fn()((jnp.ones(3, jnp.int32), {"norm": 1.0}))
    msg = str(e.value)
    assert "int32" in msg and "float32" in msg and "fix:" in msg


def test_vjp_cotangent_of_other_float_dtype_is_cast():
    # jax.vjp refuses a float64 cotangent for a float32 output (with float64 enabled); funcgrad casts it
    # (documented in docs/reliability.md), so the result is the one for the float32 cotangent
    with x64():
        ct64 = (np.linspace(-1, 1, 3), {"norm": np.float64(0.5)})
        ct32 = jax.tree_util.tree_map(lambda c: np.asarray(c, np.float32), ct64)
        f = lambda x: (x * 2.0, {"norm": jnp.sum(x**2)})
        with pytest.raises(ValueError):
            jax.vjp(f, X)[1](ct64)
        _assert_same(_vjp_fn()(ct64), jax.vjp(f, X)[1](ct32))


def test_vjp_cotangent_error_names_the_leaf_path():
    with pytest.raises(InputError) as e:
        _vjp_fn()((jnp.ones(3), {"norm": jnp.ones(2)}))
    assert "ct[1]['norm']" in str(e.value)


@pytest.mark.parametrize(
    "ct",
    [jnp.ones(3), (jnp.ones(3), {"other": 1.0}), (jnp.ones(3),), [jnp.ones(3), {"norm": 1.0}]],
    ids=["leaf", "key", "short", "list"],
)
def test_vjp_cotangent_of_wrong_tree(ct):
    with pytest.raises(InputError) as e:
        _vjp_fn()(ct)
    msg = str(e.value)
    assert "structure" in msg and "'norm'" in msg and "fix:" in msg


@jax.custom_vjp
def scale_and_shift(x, y):
    return x * 2.0 + y


def scale_and_shift_bwd(res, g):
    return (2.0 * g,)  # one cotangent for two inputs


scale_and_shift.defvjp(lambda x, y: (x * 2.0 + y, None), scale_and_shift_bwd)


@jax.custom_vjp
def doubled(x):
    return x * 2.0


def doubled_bwd(res, g):
    return (jnp.ones(4),)  # wrong shape


doubled.defvjp(lambda x: (x * 2.0, None), doubled_bwd)


def _shown(err: BaseException) -> str:
    """What a traceback shows of an error: its message and its notes (the primitive and the user's line)."""
    return "\n".join([str(err), *getattr(err, "__notes__", [])])


@pytest.mark.parametrize(
    "fn,what",
    [(lambda x: jnp.sum(scale_and_shift(x, 1.0)), "scale_and_shift"), (lambda x: jnp.sum(doubled(x)), "doubled")],
)
def test_custom_vjp_backward_of_wrong_structure(fn, what):
    # JAX's own check of the bwd's output raises first (its TypeError or ValueError, kept as they are)
    with pytest.raises((TracingError, InputError, TypeError, ValueError)) as e:
        funcgrad.grad(fn)(X)
    msg = _shown(e.value)
    # the custom_vjp function's name ('doubled'); JAX < 0.5 records no primal name, then the bwd's ('doubled_bwd')
    assert f"'{what}'" in msg or f"'{what}_bwd'" in msg
    assert HERE in msg and "one cotangent per primal input" in msg


# -------------------------------------------------------------------- scale


def test_graph_of_100k_equations():
    # no recursion anywhere (tracing, the sweeps, printing); time is printed for docs/reliability.md
    n = 100_000
    c = jnp.float32(1.0001)

    def chain(x):
        for _ in range(n):
            x = lax.mul(x, c)
        return x

    assert sys.getrecursionlimit() < n
    start = time.perf_counter()
    graph = funcgrad.trace(chain)(jnp.float32(1.0))
    traced = time.perf_counter() - start
    assert len(graph.eqns) == n
    g = funcgrad.grad(chain)(jnp.float32(1.0))
    total = time.perf_counter() - start
    text = graph.format() if hasattr(graph, "format") else str(graph)
    assert text.count("mul") >= n
    print(f"100k equations: trace {traced:.1f}s, trace+grad {total:.1f}s")
    np.testing.assert_allclose(g, np.float32(1.0001) ** n, rtol=2e-2)  # float32 rounding over 10^5 products


# ------------------------------------------------------------------- caching


def test_new_shapes_and_dtypes_after_caching():
    def loss(w, x):
        return jnp.sum(jnp.tanh(w * x) ** 2)

    g = funcgrad.grad(loss)
    rng = np.random.default_rng(0)
    calls = [(3,), (5,), (3,), (2, 3), (5,), ()]
    for shape in calls:
        w, x = (jnp.asarray(rng.normal(size=shape), jnp.float32) for _ in range(2))
        np.testing.assert_allclose(g(w, x), jax.grad(loss)(w, x), rtol=1e-6)
    with x64():
        w = jnp.asarray(rng.normal(size=(3,)), jnp.float64)
        got = g(w, w)
        assert got.dtype == jnp.float64
        np.testing.assert_allclose(got, jax.grad(loss)(w, w), rtol=1e-12)
