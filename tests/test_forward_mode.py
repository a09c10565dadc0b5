"""Forward mode (jvp, linearize, jacfwd, linear_transpose, hessian) from funcgrad's transposed reverse sweep.

Against JAX's own forward mode: pytrees, has_aux, integer inputs and outputs (float0), custom_jvp (the
user's rule is used) and custom_vjp (an error directly; forward over reverse works, as in JAX), the
model workloads' Hessians, second-order mixes, and jit/vmap/grad on either side. The rule table's
forward-mode column is tests/test_rules.py::test_forward_mode_matches_jax_jvp; the errors are in
tests/test_api_parity.py.
"""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import funcgrad
from tests import models
from tests.conftest import x64


def _close(a, b, rtol=1e-6, atol=1e-6):
    chex.assert_trees_all_close(a, b, rtol=rtol, atol=atol)


def loss_of_pytree(params, x):
    h = jnp.tanh(x @ params["w"] + params["b"])
    return {"y": jnp.sin(h) * params["scale"], "n": jnp.sum(h**2)}


PARAMS = {"w": jnp.arange(6.0).reshape(3, 2) / 7, "b": jnp.array([0.1, -0.2]), "scale": jnp.float32(1.5)}
X = jnp.array([[0.3, -0.4, 0.5], [1.0, 0.2, -0.7]])


def _tangent_like(tree, seed=0):
    leaves, struct = jax.tree.flatten(tree)
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    return jax.tree.unflatten(
        struct, [jax.random.normal(k, jnp.shape(x), jnp.result_type(x)) for k, x in zip(keys, leaves)]
    )


def test_jvp_of_pytrees_matches_jax():
    t = (_tangent_like(PARAMS), _tangent_like(X, 1))
    ours, theirs = funcgrad.jvp(loss_of_pytree, (PARAMS, X), t), jax.jvp(loss_of_pytree, (PARAMS, X), t)
    _close(ours, theirs)


def test_jvp_has_aux_and_integer_inputs_and_outputs():
    def f(x, n):
        y = x * n
        return (y, jnp.floor(y).astype(jnp.int32)), {"n": n, "label": "kept"}

    t = (jnp.ones(3), np.zeros((), jax.dtypes.float0))
    (out, tan, aux) = funcgrad.jvp(f, (jnp.arange(3.0), 2), t, has_aux=True)
    (out_j, tan_j, aux_j) = jax.jvp(f, (jnp.arange(3.0), 2), t, has_aux=True)
    _close(out, out_j)
    _close(tan[0], tan_j[0])
    assert tan[1].dtype == tan_j[1].dtype == jax.dtypes.float0 and tan[1].shape == (3,)
    assert aux["label"] == "kept" and int(aux["n"]) == 2


def test_jvp_of_a_custom_jvp_function_is_its_rule():
    @jax.custom_jvp
    def f(x):
        return jnp.sin(x)

    f.defjvp(lambda p, t: (jnp.sin(p[0]), 10.0 * t[0]))  # deliberately not cos: the rule must be used
    _close(funcgrad.jvp(f, (1.0,), (2.0,)), jax.jvp(f, (1.0,), (2.0,)))
    _close(funcgrad.jacfwd(f)(jnp.ones(3)), jax.jacfwd(f)(jnp.ones(3)))


def test_forward_over_reverse_through_a_custom_vjp_function_is_jaxs():
    # forward mode of a custom_vjp function is an error, but the Hessian (jacfwd of jacrev) works in JAX:
    # the inner reverse pass uses the user's bwd and the forward pass differentiates fwd's computation
    @jax.custom_vjp
    def clip_grad(x):
        return x

    clip_grad.defvjp(lambda x: (x, x), lambda x, g: (jnp.clip(g, -1.0, 1.0) * jnp.cos(x),))

    def f(x):
        return jnp.sum(clip_grad(x) ** 3)

    x = jnp.array([0.5, -1.0, 2.0])
    _close(funcgrad.hessian(f)(x), jax.hessian(f)(x))
    with pytest.raises(TypeError, match="forward-mode"):
        funcgrad.jvp(clip_grad, (x,), (x,))


@pytest.mark.parametrize("argnums", [0, 1, (0, 1)])
def test_jacfwd_matches_jax(argnums):
    _close(funcgrad.jacfwd(loss_of_pytree, argnums)(PARAMS, X), jax.jacfwd(loss_of_pytree, argnums)(PARAMS, X))


def test_jacfwd_has_aux_and_holomorphic():
    def f(x):
        return jnp.sin(x) * x, {"sum": jnp.sum(x)}

    _close(funcgrad.jacfwd(f, has_aux=True)(X[0]), jax.jacfwd(f, has_aux=True)(X[0]))
    z = jnp.array([1.0 + 2.0j, -0.5 + 0.25j])
    holo = lambda z: jnp.exp(z) * z**2
    _close(funcgrad.jacfwd(holo, holomorphic=True)(z), jax.jacfwd(holo, holomorphic=True)(z))


def test_jacfwd_of_a_real_function_of_complex_output():
    f = lambda x: jnp.exp(1j * x)  # real input, complex output: allowed without holomorphic, as in JAX
    _close(funcgrad.jacfwd(f)(X[0]), jax.jacfwd(f)(X[0]))


_MYNET = models.init_mynet(jax.random.key(0), d0=16)
WORKLOADS = {
    # mynet's Hessian in its last layer and the bias before it (450 parameters; all 3,870 would be slow for both)
    "mynet": lambda: (
        lambda top: models.mse_loss(
            {"l1": _MYNET["l1"], "l2": {"W": _MYNET["l2"]["W"], "b": top["b2"]}, "l3": top["l3"]},
            jnp.linspace(-1, 1, 16),
            jnp.ones(10) * 0.1,
        ),
        {"l3": _MYNET["l3"], "b2": _MYNET["l2"]["b"]},
    ),
    "mlp": lambda: (
        lambda p: jnp.sum(models.mlp(p, jnp.ones((2, 4)), jnp.tanh) ** 2),
        models.init_mlp(jax.random.key(1), [4, 5, 3]),
    ),
    "attention": lambda: (
        lambda p: jnp.sum(models.attention(p, jnp.ones((3, 8)) * 0.1, heads=2) ** 2),
        models.init_attention(jax.random.key(2), 8),
    ),
}


@pytest.mark.parametrize("name", list(WORKLOADS))
def test_hessian_of_the_model_workloads_matches_jax(name):
    with x64():
        loss, params = WORKLOADS[name]()
        params = jax.tree.map(lambda a: a.astype(jnp.float64), params)
        # under jit (op-by-op, both take seconds to compile; test_second_order_mixes runs eagerly)
        want = jax.jit(jax.hessian(loss))(params)
        _close(jax.jit(funcgrad.hessian(loss))(params), want, rtol=1e-9, atol=1e-10)


def test_second_order_mixes():
    with x64():
        f = lambda x: jnp.sum(jnp.sin(x) * jnp.exp(x[::-1]))
        x = jnp.array([0.3, -0.5, 1.1])
        want = jax.hessian(f)(x)
        for mix in (
            funcgrad.jacfwd(funcgrad.jacrev(f)),
            funcgrad.jacrev(funcgrad.jacfwd(f)),
            funcgrad.jacfwd(funcgrad.jacfwd(f)),
            funcgrad.jacfwd(jax.jacrev(f)),
            jax.jacrev(funcgrad.jacfwd(f)),
        ):
            _close(mix(x), want, rtol=1e-10, atol=1e-12)
        # jvp of grad (a Hessian-vector product) and grad of jvp
        v = jnp.array([1.0, 2.0, -1.0])
        _close(funcgrad.jvp(funcgrad.grad(f), (x,), (v,))[1], want @ v, rtol=1e-10)
        along = lambda x: funcgrad.jvp(f, (x,), (v,))[1]
        _close(funcgrad.grad(along)(x), jax.grad(lambda x: jax.jvp(f, (x,), (v,))[1])(x), rtol=1e-10)


def test_composes_with_jit_and_vmap():
    f = lambda x: jnp.sin(x) ** 2
    ts = jnp.eye(3)
    x = jnp.array([0.1, 0.2, 0.3])
    push = lambda t: funcgrad.jvp(f, (x,), (t,))[1]
    _close(jax.vmap(push)(ts), jax.vmap(lambda t: jax.jvp(f, (x,), (t,))[1])(ts))
    _close(jax.jit(push)(ts[0]), jax.jvp(f, (x,), (ts[0],))[1])
    _close(jax.jit(funcgrad.jacfwd(f))(x), jax.jacfwd(f)(x))
    _close(jax.vmap(funcgrad.jacfwd(f))(jnp.stack([x, 2 * x])), jax.vmap(jax.jacfwd(f))(jnp.stack([x, 2 * x])))


def test_linearize_runs_once_and_is_a_pytree_across_jit():
    calls = []

    def f(x):
        calls.append(1)
        return jnp.sin(x) * x

    x = jnp.array([0.5, 1.5])
    out, f_jvp = funcgrad.linearize(f, x)
    assert len(calls) == 1
    out_j, f_jvp_j = jax.linearize(f, x)
    calls.clear()
    _close(out, out_j)
    for t in (jnp.ones(2), jnp.array([2.0, -1.0])):
        _close(f_jvp(t), f_jvp_j(t))
    assert not calls  # each tangent runs the transposed backward pass, not f
    _close(jax.jit(lambda fj, t: fj(t))(f_jvp, jnp.ones(2)), f_jvp_j(jnp.ones(2)))
    out, f_jvp, aux = funcgrad.linearize(lambda x: (jnp.sum(x**2), "aux"), x, has_aux=True)
    assert aux == "aux"
    _close(f_jvp(jnp.ones(2)), 2 * jnp.sum(x))


LINEAR = {
    "matmul": (lambda v: jnp.arange(6.0).reshape(2, 3) @ v, (jnp.ones(3),), jnp.ones(2)),
    "affine": (lambda x: 2.0 * x + 1.0, (1.0,), 1.0),
    "two_args": (lambda x, y: x - 3.0 * y, (jnp.ones(2), jnp.ones(2)), jnp.array([1.0, 2.0])),
    "fft": (lambda x: jnp.fft.fft(x), (jnp.ones(4, jnp.complex64),), jnp.arange(4.0).astype(jnp.complex64)),
    "cumsum_index": (lambda x: jnp.cumsum(x)[::2] / 4.0, (jnp.ones(5),), jnp.ones(3)),
    "conv": (
        lambda x: jax.lax.conv(x, jnp.ones((2, 1, 2, 2)), (1, 1), "VALID"),
        (jnp.ones((1, 1, 3, 3)),),
        jnp.ones((1, 2, 2, 2)),
    ),
    "scan": (
        lambda x: jax.lax.scan(lambda c, xi: (0.5 * c + xi, 2.0 * c), 0.0, x)[1],
        (jnp.ones(4),),
        jnp.arange(4.0),
    ),
    "cond": (
        lambda x: jax.lax.cond(True, lambda x: -x, lambda x: 2.0 * x, x),
        (jnp.ones(3),),
        jnp.ones(3),
    ),
    "jit_inside": (lambda x: jax.jit(lambda x: x.T * 3.0)(x), (jnp.ones((2, 3)),), jnp.ones((3, 2))),
}


@pytest.mark.parametrize("name", list(LINEAR))
def test_linear_transpose_matches_jax(name):
    f, primals, ct = LINEAR[name]
    ours = funcgrad.linear_transpose(f, *primals)
    _close(ours(ct), jax.linear_transpose(f, *primals)(ct))
    shapes = [jax.ShapeDtypeStruct(jnp.shape(p), jnp.result_type(p)) for p in primals]
    _close(funcgrad.linear_transpose(f, *shapes)(ct), jax.linear_transpose(f, *primals)(ct))
    _close(jax.jit(lambda t, c: t(c))(ours, ct), ours(ct))  # a pytree, like vjp's function


@pytest.mark.parametrize(
    "f",
    [
        lambda x: jnp.sin(x),
        lambda x: x * x,
        lambda x: x @ x,
        lambda x: jnp.maximum(x, 0.0),
        lambda x: jax.lax.scan(lambda c, xi: (c * xi, c), 1.0, x)[1],
        lambda x: jax.lax.cond(True, jnp.exp, jnp.negative, x),
    ],
    ids=["sin", "square", "dot_of_itself", "relu", "scan_product", "cond_exp"],
)
def test_linear_transpose_refuses_what_is_not_linear(f):
    transpose = funcgrad.linear_transpose(f, jnp.ones(3))
    with pytest.raises(NotImplementedError, match="not linear") as e:
        transpose(jnp.ones(jnp.shape(jax.eval_shape(f, jnp.ones(3)))))
    assert isinstance(e.value, funcgrad.NonLinearError) and "fix:" in str(e.value)


def test_linear_transpose_of_an_integer_function_is_refused_not_zero():
    # JAX transposes it on integers; funcgrad's sweep has no integer cotangents: an error, never float0 zeros
    with pytest.raises(NotImplementedError, match="integer -> integer"):
        funcgrad.linear_transpose(lambda n: 2 * n, 3)
