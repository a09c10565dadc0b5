"""Real third-party code differentiates identically with funcgrad.grad and jax.grad: Equinox models, optax losses."""

import chex
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import funcgrad


def _both(loss, *args, argnums=0):
    return funcgrad.grad(loss, argnums)(*args), jax.grad(loss, argnums)(*args)


def _split_loss(model, x, y):
    # the usual Equinox idiom with a plain grad: differentiate the array leaves only
    params, static = eqx.partition(model, eqx.is_array)

    def loss(params, x, y):
        m = eqx.combine(params, static)
        return jnp.mean((jax.vmap(m)(x) - y) ** 2)

    return loss, params


def test_equinox_mlp():
    model = eqx.nn.MLP(5, 3, width_size=16, depth=2, activation=jax.nn.gelu, key=jax.random.key(0))
    x, y = jax.random.normal(jax.random.key(1), (8, 5)), jax.random.normal(jax.random.key(2), (8, 3))
    loss, params = _split_loss(model, x, y)
    ours, theirs = _both(loss, params, x, y)
    chex.assert_trees_all_close(ours, theirs, rtol=1e-5, atol=1e-6)


def test_equinox_cnn():
    k1, k2, k3 = jax.random.split(jax.random.key(3), 3)
    model = eqx.nn.Sequential(
        [
            eqx.nn.Conv2d(1, 4, kernel_size=3, padding=1, key=k1),
            eqx.nn.Lambda(jax.nn.relu),
            eqx.nn.MaxPool2d(kernel_size=2, stride=2),
            eqx.nn.Conv2d(4, 2, kernel_size=3, key=k2),
            eqx.nn.Lambda(jnp.tanh),
            eqx.nn.AvgPool2d(kernel_size=2, stride=2),
            eqx.nn.Lambda(jnp.ravel),
        ]
    )
    x = jax.random.normal(k3, (3, 1, 10, 10))
    y = jnp.ones((3, 2))
    loss, params = _split_loss(model, x, y)
    ours, theirs = _both(loss, params, x, y)
    chex.assert_trees_all_close(ours, theirs, rtol=1e-5, atol=1e-6)


def test_equinox_layernorm_and_attention():
    k1, k2 = jax.random.split(jax.random.key(4))
    attn = eqx.nn.MultiheadAttention(num_heads=2, query_size=8, key=k1)
    norm = eqx.nn.LayerNorm(8)
    x = jax.random.normal(k2, (5, 8))

    def loss(modules, x):
        attn, norm = modules
        mask = jnp.tril(jnp.ones((5, 5), bool))
        h = jax.vmap(norm)(x)
        return jnp.sum(attn(h, h, h, mask=mask) ** 2)

    params, static = eqx.partition((attn, norm), eqx.is_array)
    split = lambda p, x: loss(eqx.combine(p, static), x)
    ours, theirs = _both(split, params, x, argnums=(0, 1))
    chex.assert_trees_all_close(ours, theirs, rtol=1e-4, atol=1e-5)


def test_optax_losses():
    k1, k2, k3 = jax.random.split(jax.random.key(5), 3)
    logits = jax.random.normal(k1, (6, 4))
    labels = jax.random.randint(k2, (6,), 0, 4)
    targets = jax.random.normal(k3, (6, 4))
    losses = {
        "softmax_cross_entropy_with_integer_labels": lambda z: optax.softmax_cross_entropy_with_integer_labels(
            z, labels
        ).mean(),
        "softmax_cross_entropy": lambda z: optax.softmax_cross_entropy(z, jax.nn.one_hot(labels, 4)).mean(),
        "huber_loss": lambda z: optax.huber_loss(z, targets, delta=0.5).sum(),
        "l2_loss": lambda z: optax.l2_loss(z, targets).sum(),
        "sigmoid_binary_cross_entropy": lambda z: optax.sigmoid_binary_cross_entropy(
            z, (targets > 0).astype(z.dtype)
        ).mean(),
        "cosine_distance": lambda z: optax.cosine_distance(z, targets).sum(),
    }
    for name, loss in losses.items():
        ours, theirs = _both(loss, logits)
        chex.assert_trees_all_close(ours, theirs, rtol=1e-5, atol=1e-6, custom_message=name)


def test_optax_update_fed_by_funcgrad():
    params = {"w": jnp.linspace(-1.0, 1.0, 4)}
    loss = lambda p: jnp.sum(jnp.sin(p["w"]) ** 2)
    opt = optax.adam(1e-2)
    state = opt.init(params)
    updates, _ = opt.update(funcgrad.grad(loss)(params), state, params)
    want, _ = opt.update(jax.grad(loss)(params), state, params)
    chex.assert_trees_all_close(updates, want, rtol=1e-6)


# ---------------------------------------- Equinox's own expectations (its tests/test_ad.py)


def test_equinox_nondiff_args_refuse_a_tangent_as_with_jax():
    # filter_custom_vjp's non-differentiable arguments pass through a custom_jvp whose rule raises on
    # a tangent; JAX runs that rule in program order, before the custom_vjp's fwd asserts anything
    import pytest

    @eqx.filter_custom_vjp
    def f(x, y):
        return x + y

    f.def_fwd(lambda perturbed, x, y: (x + y, None))
    f.def_bwd(lambda res, ct, perturbed, x, y: ct)
    with pytest.raises(RuntimeError, match="cannot be autodifferentiated"):
        jax.grad(lambda x: f(x, x))(1.0)
    with pytest.raises(RuntimeError, match="cannot be autodifferentiated"):
        funcgrad.grad(lambda x: f(x, x))(1.0)
    assert funcgrad.grad(lambda x: f(x, 2.0))(1.0) == 1.0


def test_custom_vjp_bwd_of_a_jitted_function_is_traced_once():
    # Equinox counts: eager gradients of a jitted function trace its custom_vjp bwd once, as JAX does
    traces = []

    @eqx.filter_custom_vjp
    def f(x):
        return x

    f.def_fwd(lambda perturbed, x: (x, None))

    @f.def_bwd
    def f_bwd(residual, g, perturbed, x):
        traces.append(1)
        return g + 2

    jitted = jax.jit(f)
    for grad in (jax.grad, funcgrad.grad):
        traces.clear()
        for x in (1.0, 1.0, 5.0):
            assert grad(jitted)(jnp.array(x)) == 3
        assert len(traces) == 1, grad


def test_equinox_noinline_is_differentiated_through_its_implementation():
    import equinox.internal as eqxi

    f = lambda x: jnp.sum(eqxi.noinline(lambda y: jnp.sin(y) * y)(x) ** 2)  # noqa: E731
    x = jnp.linspace(-1.0, 1.0, 4)
    np.testing.assert_allclose(funcgrad.grad(f)(x), jax.grad(f)(x), rtol=1e-6)
    np.testing.assert_allclose(jax.jit(funcgrad.grad(f))(x), jax.grad(f)(x), rtol=1e-6)


def test_equinox_checkpointed_while_loop_symbolic_zeros_settle_as_with_jax(monkeypatch):
    # Equinox's checkpointed while_loop asks jax.vjp, again and again, which carry cotangents are symbolic
    # zeros until the answer stops changing. With funcgrad's vjp it must reach JAX's answer: through
    # select_if_vmap's implementation it never did (an endless loop); its rule follows Equinox's transpose.
    import equinox.internal as eqxi
    import equinox.internal._loop.checkpointed as checkpointed

    asked = []

    def counting_tree_equal(a, b):
        asked.append((a, b))
        assert len(asked) < 10, f"the symbolic zeros do not settle: {asked[-1]}"
        return eqx.tree_equal(a, b)

    def run(grad):
        def body(carry):
            c0, c1, c2, c3, c4, c5 = carry
            return c2, c3, jax.lax.stop_gradient(c1), c3, c5, c4

        def loss(init):
            outs = eqxi.while_loop(
                lambda c: c[4] < 10, body, init + (5, jnp.array(6)), kind="checkpointed", max_steps=5
            )
            return outs[0]

        asked.clear()
        return grad(loss)((1.0, 2.0, jnp.array(3.0), jnp.array(4.0))), [b for _, b in asked]

    monkeypatch.setattr(checkpointed, "tree_equal", counting_tree_equal)
    want, jax_steps = run(jax.grad)
    monkeypatch.setattr(jax, "vjp", funcgrad.vjp)  # Equinox calls jax.vjp inside: funcgrad's, as when swapped in
    ours, our_steps = run(funcgrad.grad)
    chex.assert_trees_all_close(ours, want)
    assert our_steps == jax_steps


def test_equinox_nontraceable_and_nondifferentiable_backward_raise_as_with_jax():
    # Equinox's assertion primitives: the identity, whose JAX rules raise RuntimeError when differentiated.
    # Through their implementation funcgrad differentiated them silently; its rules raise as Equinox's do.
    import equinox.internal as eqxi

    def through(op):
        return lambda x: jnp.sum(op(x) * x)

    x = jnp.arange(3.0)
    for op, words in [
        (lambda x: eqxi.nontraceable(x, name="the op"), "Detected differentiation of the op"),
        (lambda x: eqxi.nondifferentiable_backward(x, msg="kaboom"), "kaboom"),
    ]:
        for grad in (jax.grad, funcgrad.grad):
            with pytest.raises(RuntimeError, match=words):
                grad(through(op))(x)
    # no cotangent reaches it (it only feeds a stop_gradient): no error, with either
    quiet = lambda x: jnp.sum(jax.lax.stop_gradient(eqxi.nondifferentiable_backward(x)) * x)
    chex.assert_trees_all_close(funcgrad.grad(quiet)(x), jax.grad(quiet)(x))


def test_flax_fp8_dense_amax_history_gradients():
    # Flax's fp8 DenseGeneral returns its new amax histories and scales as the gradient of those
    # variables (through custom_vjp bwds that receive no cotangent): funcgrad once returned zeros there
    import flax.linen as nn
    from flax.linen import fp8_ops

    key, x_key = jax.random.split(jax.random.key(123))
    x = jax.random.uniform(x_key, (16, 16))
    dy = jax.random.normal(key, (16, 32))
    for quantizer in (nn.Fp8DotGeneral, nn.NANOOFp8DotGeneralOp):
        dense = nn.DenseGeneral(features=32, use_bias=True, dot_general_cls=quantizer)
        variables = dense.init(key, x)

        def loss(v, dense=dense):
            return jnp.sum(dense.apply(v, x) * dy)

        want = jax.jit(jax.grad(loss))(variables)
        ours = jax.jit(funcgrad.grad(loss))(variables)
        chex.assert_trees_all_close(ours, want, rtol=1e-5, atol=1e-5)
        history = jax.tree.leaves(want[fp8_ops.OVERWRITE_WITH_GRADIENT])
        assert any(float(jnp.max(jnp.abs(h.astype(jnp.float32)))) > 0 for h in history)


def test_flax_nnx_custom_vjp_with_a_diff_state(monkeypatch):
    # Flax's transforms_test.TestCustomVJP.test_diff_state, with funcgrad standing in for jax.grad: the
    # fwd of an nnx.custom_vjp closes over the module's non-differentiated state, a traced value that
    # funcgrad's own trace had ended before it traced fwd (UnexpectedTracerError), and the module's
    # counter must be bumped once, as under jax.grad
    import dataclasses

    from flax import nnx

    @dataclasses.dataclass
    class Foo(nnx.Module):
        x: nnx.Param
        y: nnx.Param
        z: int

    x_in_path = nnx.PathContains("x")

    @nnx.custom_vjp(nondiff_argnums=(nnx.DiffState(0, x_in_path),), graph=True, graph_updates=True)
    def f(m):
        m.z += 1
        return jnp.sin(m.x) * m.y

    def f_fwd(m):
        return f(m), (jnp.cos(m.x), m)

    def f_bwd(res, g):
        (m_g,), out_g = g
        cos_x, m = res
        m_g["x"][...] = cos_x * out_g * m.y * 3.0  # not the primal's derivative: the rule's
        del m_g["y"]
        return (m_g,)

    f.defvjp(f_fwd, f_bwd)
    called = []
    monkeypatch.setattr(jax, "grad", lambda *a, **k: called.append(1) or funcgrad.grad(*a, **k))
    m = Foo(nnx.Param(jnp.array(1.0)), nnx.Param(jnp.array(2.0)), 0)
    grad = nnx.grad(f, argnums=nnx.DiffState(0, x_in_path), graph=True, graph_updates=True)(m)
    assert called
    np.testing.assert_allclose(grad["x"][...], jnp.cos(1.0) * 2.0 * 3.0, rtol=1e-6)
    assert m.z == 1


def test_equinox_nondifferentiable_raises_its_message():
    # eqxi.nondifferentiable is a custom_jvp whose rule raises: with funcgrad, the same error as with JAX,
    # raised by the grad call (JAX raises it while the function runs; funcgrad when it runs the rules)
    import equinox.internal as eqxi

    f = lambda x: jnp.sum(eqxi.nondifferentiable(x * 2, msg="kaboom!"))
    for grad in (jax.grad, funcgrad.grad):
        with pytest.raises(RuntimeError, match="kaboom!"):
            grad(f)(jnp.ones(2))
    np.testing.assert_allclose(funcgrad.grad(lambda x: jnp.sum(x) + f(jax.lax.stop_gradient(x)))(jnp.ones(2)), 1.0)


@pytest.mark.parametrize("kind", ["scan_of_cond", "checkpointed"])
def test_equinox_nondifferentiable_on_an_unperturbed_carry(kind):
    # Equinox's test_while_loop::test_nondifferentiable_body1: y is not differentiated, so its
    # nondifferentiable assertion in the loop body must not fire, though x and z are differentiated
    import equinox.internal as eqxi
    from jax import lax

    def body_fun(carry):
        step, x, y, z, _ = carry
        return step + 1, x + eqxi.nondifferentiable(y), y + 1, z.at[step].set(y), None

    def loop(init):
        if kind == "checkpointed":
            return eqxi.while_loop(lambda c: True, body_fun, init, max_steps=3, kind="checkpointed")

        def f(val, _):
            return lax.cond(True, body_fun, lambda v: v, val), None

        return lax.scan(f, init, xs=None, length=3)[0]

    def loss(x__z, y_in):
        _, x_out, y_out, z_out, none = loop((0, x__z[0], y_in, x__z[1], None))
        assert none is None
        return x_out + y_out + jnp.sum(z_out)

    args = ((jnp.array(1.2), jnp.array([-5.0, -5.0, -5.0])), jnp.array(0.7))
    for wrap in (lambda f: f, eqx.filter_jit):
        chex.assert_trees_all_close(
            wrap(funcgrad.value_and_grad(loss))(*args), jax.value_and_grad(loss)(*args), rtol=1e-6
        )
