"""The public API against JAX's: signatures, pytrees, argnums, has_aux, allow_int, vjp, jacrev, errors, cache."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import funcgrad
from funcgrad.errors import InputError, TracingError


def f2(w, x):
    return jnp.sum(jnp.tanh(w["a"] * x) + w["b"][0] ** 2) * x.sum()


W = {"a": jnp.array([0.5, -1.0, 2.0]), "b": (jnp.array([1.5]), jnp.array(3.0))}
X = jnp.array([1.0, 2.0, -0.5])


def test_grad_pytree_structure_and_values():
    chex.assert_trees_all_close(funcgrad.grad(f2)(W, X), jax.grad(f2)(W, X), rtol=1e-6)


@pytest.mark.parametrize("argnums", [0, 1, (0, 1), (1, 0), (1,), -1])
def test_argnums(argnums):
    chex.assert_trees_all_close(funcgrad.grad(f2, argnums)(W, X), jax.grad(f2, argnums)(W, X), rtol=1e-6)


def test_value_and_grad_has_aux():
    f = lambda w, x: (f2(w, x), {"norm": jnp.linalg.norm(x), "n": 3})
    (v1, aux1), g1 = funcgrad.value_and_grad(f, has_aux=True)(W, X)
    (v2, aux2), g2 = jax.value_and_grad(f, has_aux=True)(W, X)
    chex.assert_trees_all_close((v1, aux1, g1), (v2, aux2, g2), rtol=1e-6)
    g3, aux3 = funcgrad.grad(f, has_aux=True)(W, X)
    chex.assert_trees_all_close((g3, aux3), (g2, aux2), rtol=1e-6)


def test_allow_int_gives_float0_like_jax():
    f = lambda p: p["w"] * p["count"].astype(jnp.float32)
    p = {"w": jnp.float32(2.0), "count": jnp.int32(3)}
    got, want = funcgrad.grad(f, allow_int=True)(p), jax.grad(f, allow_int=True)(p)
    assert got["count"].dtype == want["count"].dtype == jax.dtypes.float0
    np.testing.assert_allclose(got["w"], want["w"])


def test_integer_leaf_error_names_the_path():
    p = {"bn": {"count": jnp.int32(3), "scale": jnp.float32(1.0)}}
    with pytest.raises(InputError) as e:
        funcgrad.grad(lambda params: params["bn"]["scale"] * 2.0)(p)
    msg = str(e.value)
    assert "params['bn']['count']" in msg and "int32" in msg and "allow_int" in msg


def test_non_scalar_output_error():
    with pytest.raises(InputError) as e:
        funcgrad.grad(lambda x: x * 2)(X)
    msg = str(e.value)
    assert "[3]" in msg and ".sum()" in msg and "jacrev" in msg and "has_aux" in msg


def test_argnums_out_of_range():
    with pytest.raises(InputError, match="argnums"):
        funcgrad.grad(f2, argnums=2)(W, X)


def test_python_if_on_traced_value_under_jit_names_line_and_fix():
    def f(x):
        if x > 0:  # the offending line
            return x
        return -x

    # under jax.jit the trace is abstract: the error names the line and the fix
    with pytest.raises(TracingError) as e:
        jax.jit(funcgrad.grad(f))(1.0)
    msg = str(e.value)
    assert "test_api.py" in msg and "if x > 0" in msg and "jnp.where" in msg and "lax.cond" in msg
    # on concrete values the branch taken is recorded, as with jax.grad (tests/test_concrete_tracing.py)
    assert funcgrad.grad(f)(1.0) == jax.grad(f)(1.0) == 1.0 and funcgrad.grad(f)(-1.0) == -1.0


def test_static_python_flags_and_kwargs():
    def loss(w, x, scale=1.0, train=True):
        y = jnp.sum(w * x) * scale
        return y * 2 if train else y

    for kw in ({}, {"train": False}, {"scale": 3.0}):
        np.testing.assert_allclose(funcgrad.grad(loss)(X, X, **kw), jax.grad(loss)(X, X, **kw))


def test_vjp_with_pytrees_and_aux():
    f = lambda w, x: ({"y": w["a"] * x, "z": jnp.sin(w["b"][1])}, x.sum())
    out1, vjp1, aux1 = funcgrad.vjp(f, W, X, has_aux=True)
    out2, vjp2, aux2 = jax.vjp(f, W, X, has_aux=True)
    ct = {"y": jnp.array([1.0, -2.0, 0.5]), "z": jnp.float32(0.3)}
    chex.assert_trees_all_close((out1, aux1, vjp1(ct)), (out2, aux2, vjp2(ct)), rtol=1e-6)


def test_vjp_integer_primal_gets_float0():
    f = lambda x, n: x * n
    _, vjp1 = funcgrad.vjp(f, jnp.float32(2.0), jnp.int32(3))
    _, vjp2 = jax.vjp(f, jnp.float32(2.0), jnp.int32(3))
    (a1, b1), (a2, b2) = vjp1(jnp.float32(1.0)), vjp2(jnp.float32(1.0))
    np.testing.assert_allclose(a1, a2)
    assert b1.dtype == b2.dtype == jax.dtypes.float0


def test_vjp_bad_cotangent_shape_and_tree():
    _, vjp_fn = funcgrad.vjp(lambda x: x * 2, X)
    with pytest.raises(InputError, match="shape"):
        vjp_fn(jnp.ones(4))
    with pytest.raises(InputError, match="structure"):
        vjp_fn((jnp.ones(3),))


def test_jacrev_structures():
    f = lambda w, x: {"p": w["a"] * x, "q": jnp.outer(x, w["b"][0])}
    for argnums in (0, 1, (0, 1)):
        chex.assert_trees_all_close(funcgrad.jacrev(f, argnums)(W, X), jax.jacrev(f, argnums)(W, X), rtol=1e-6)
    chex.assert_trees_all_close(funcgrad.jacobian(jnp.sin)(X), jax.jacobian(jnp.sin)(X))


def test_jacrev_has_aux():
    f = lambda x: (jnp.sin(x), x.sum())
    chex.assert_trees_all_close(funcgrad.jacrev(f, has_aux=True)(X), jax.jacrev(f, has_aux=True)(X))


def test_fan_out_accumulates():
    f = lambda x: jnp.sum(x * x + jnp.sin(x) * x + x)
    np.testing.assert_allclose(funcgrad.grad(f)(X), jax.grad(f)(X), rtol=1e-6)


def test_unused_and_stopped_inputs_get_zeros():
    f = lambda x, y: jnp.sum(lax.stop_gradient(x) * 2 + x) + 0.0 * jnp.sum(lax.stop_gradient(y))
    g1, g2 = funcgrad.grad(f, (0, 1))(X, X), jax.grad(f, (0, 1))(X, X)
    chex.assert_trees_all_close(g1, g2)


def test_python_scalar_inputs():
    f = lambda x, y: x * y + jnp.sin(x)
    for argnums in (0, 1, (0, 1)):
        chex.assert_trees_all_close(funcgrad.grad(f, argnums)(2.0, 3.0), jax.grad(f, argnums)(2.0, 3.0))


def test_cache_hits_and_retraces_on_new_shape():
    funcgrad.clear_cache()
    f = lambda x: jnp.sum(x**2)
    funcgrad.grad(f)(jnp.ones(3))
    funcgrad.grad(f)(jnp.ones(3) * 2)
    info = funcgrad.cache_info()
    assert (info.hits, info.misses) == (1, 1)
    np.testing.assert_allclose(funcgrad.grad(f)(jnp.ones(4)), 2 * jnp.ones(4))
    assert funcgrad.cache_info().misses == 2


def test_cache_notices_rebound_globals():
    global SCALE
    funcgrad.clear_cache()
    SCALE = jnp.float32(2.0)

    def f(x):
        return jnp.sum(SCALE * x)

    np.testing.assert_allclose(funcgrad.grad(f)(X), 2 * jnp.ones(3))
    SCALE = jnp.float32(5.0)
    np.testing.assert_allclose(funcgrad.grad(f)(X), 5 * jnp.ones(3))


def test_a_closure_rebuilt_each_call_over_the_same_objects_is_traced_once():
    # `lambda w: loss(w, batch)` built anew in a training loop: same code over the same objects is the
    # same function (JAX's jit retraces such a closure; funcgrad's eager cache need not)
    traces = []

    def loss(w, data, scale):
        traces.append(1)
        return jnp.sum((w * data) ** 2) * scale

    data = jnp.arange(3.0)
    for scale, expected_traces in ((2.0, 1), (2.0, 1), (3.0, 2), (2.0, 2)):
        g = funcgrad.grad(lambda w: loss(w, data, scale))(jnp.ones(3))
        np.testing.assert_allclose(g, 2 * scale * data**2)
        assert len(traces) == expected_traces
    flag_traces = len(traces)
    for flag in (True, 1):  # equal but of another type: another function
        funcgrad.grad(lambda w: loss(w, data, flag))(jnp.ones(3))
    assert len(traces) == flag_traces + 2
    for _ in range(2):  # a new array object in the closure each time: traced again (no value compare)
        fresh = jnp.arange(3.0)
        funcgrad.grad(lambda w: loss(w, fresh, 2.0))(jnp.ones(3))
    assert len(traces) == flag_traces + 4


def test_graph_typechecks_and_prints_source():
    graph = funcgrad.trace(f2)(W, X)
    funcgrad.typecheck(graph)
    text = graph.format(source=True)
    assert "tanh" in text and "test_api.py" in text
