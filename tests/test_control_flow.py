"""Model-level checks of control flow, checkpointing and jnp.linalg against jax.grad.

The rule table (tests/rule_specs/control.py, linalg.py) checks each primitive in
isolation; here they run inside models: an LSTM over a sequence, a
bidirectional RNN, loops with integer counters, branches inside loops, second
derivatives through a scan, checkpointing, and the loss functions people build
from jnp.linalg.
"""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import funcgrad
from tests.conftest import x64


def assert_trees_close(a, b, rtol=1e-10, atol=1e-12):
    jax.tree.map(lambda u, v: np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=rtol, atol=atol), a, b)


def _params(key, n_in, n_hidden):
    k1, k2, k3 = jax.random.split(key, 3)
    return {
        "wx": jax.random.normal(k1, (n_in, 4 * n_hidden), jnp.float64) * 0.3,
        "wh": jax.random.normal(k2, (n_hidden, 4 * n_hidden), jnp.float64) * 0.3,
        "b": jnp.zeros(4 * n_hidden, jnp.float64),
        "out": jax.random.normal(k3, (n_hidden,), jnp.float64),
    }


def lstm_loss(params, xs, target):
    """An LSTM over a sequence (lax.scan), read out at every step."""
    n = params["wh"].shape[0]

    def cell(carry, x):
        h, c = carry
        z = x @ params["wx"] + h @ params["wh"] + params["b"]
        i, f, g, o = jnp.split(z, 4)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return (h, c), h @ params["out"]

    _, ys = lax.scan(cell, (jnp.zeros(n), jnp.zeros(n)), xs)
    return jnp.mean((ys - target) ** 2)


def test_lstm_scan_matches_jax():
    with x64():
        params = _params(jax.random.key(0), 3, 5)
        xs = jax.random.normal(jax.random.key(1), (7, 3), jnp.float64)
        target = jnp.linspace(-1, 1, 7)
        assert_trees_close(funcgrad.grad(lstm_loss)(params, xs, target), jax.grad(lstm_loss)(params, xs, target))
        # also under jit, and with respect to the inputs
        assert_trees_close(
            jax.jit(funcgrad.grad(lstm_loss, argnums=1))(params, xs, target),
            jax.grad(lstm_loss, argnums=1)(params, xs, target),
        )


def test_bidirectional_rnn_with_reverse_scan():
    def loss(w, xs):
        step = lambda h, x: (jnp.tanh(w * h + x), h * x)  # noqa: E731
        h_fwd, y_fwd = lax.scan(step, 0.1, xs)
        h_bwd, y_bwd = lax.scan(step, 0.2, xs, reverse=True)
        return h_fwd * h_bwd + jnp.sum(y_fwd * y_bwd**2)

    with x64():
        xs = jnp.linspace(-1, 1, 6)
        assert_trees_close(funcgrad.grad(loss, (0, 1))(0.7, xs), jax.grad(loss, (0, 1))(0.7, xs))


def test_fori_loop_static_bounds_with_integer_counter():
    def loss(w, x):
        # the counter i is an integer carry: it takes part but gets no gradient
        return lax.fori_loop(0, 4, lambda i, v: jnp.tanh(w @ v) * (i + 1.0), x).sum()

    with x64():
        w = jax.random.normal(jax.random.key(2), (3, 3), jnp.float64) * 0.5
        x = jnp.array([0.3, -0.2, 0.5])
        assert_trees_close(funcgrad.grad(loss, (0, 1))(w, x), jax.grad(loss, (0, 1))(w, x))
        graph = funcgrad.trace(loss)(w, x)
        assert "scan" in {e.primitive for e in graph.eqns}  # static bounds: a scan, not a while


def test_cond_and_switch_inside_scan():
    def loss(w, xs):
        def step(c, x):
            c = lax.cond(x > 0, lambda a: a * w + x, lambda a: jnp.sin(a) - x, c)
            k = jnp.clip(jnp.floor((x + 1) * 1.5), 0, 2).astype(jnp.int32)
            y = lax.switch(k, [jnp.sin, jnp.cos, lambda a: a**2 * w], c)
            return c, y

        c, ys = lax.scan(step, 0.5, xs)
        return c + ys.sum()

    with x64():
        xs = jnp.linspace(-1, 1, 9)
        assert_trees_close(funcgrad.grad(loss, (0, 1))(0.8, xs), jax.grad(loss, (0, 1))(0.8, xs))


def test_second_derivatives_through_scan_and_cond():
    def f(x):
        c, ys = lax.scan(lambda c, xi: (lax.cond(xi > 0, jnp.sin, jnp.cos, c * xi), c**2), 1.0, x)
        return c + ys.sum()

    with x64():
        x = jnp.linspace(-0.5, 1.0, 4)
        assert_trees_close(funcgrad.hessian(f)(x), jax.hessian(f)(x), rtol=1e-9)
        assert_trees_close(
            jax.vmap(funcgrad.grad(f))(jnp.stack([x, 2 * x])), jax.vmap(jax.grad(f))(jnp.stack([x, 2 * x]))
        )


def _top_level(jaxpr) -> list[str]:
    return [e.primitive.name for e in jaxpr.eqns]


def test_checkpoint_recomputes_in_the_backward_pass():
    body = lambda x: jnp.sin(jnp.sin(x)) * x  # noqa: E731
    remat = lambda x: jax.checkpoint(body)(x).sum()  # noqa: E731
    plain = lambda x: body(x).sum()  # noqa: E731
    with x64():
        x = jnp.linspace(-1, 1, 5)
        assert_trees_close(funcgrad.grad(remat)(x), jax.grad(remat)(x))
        with_remat = _top_level(jax.make_jaxpr(funcgrad.grad(remat))(x).jaxpr)
        without = _top_level(jax.make_jaxpr(funcgrad.grad(plain))(x).jaxpr)
    # without checkpoint the forward's two sins are kept for the backward pass; with it, the forward
    # runs inside the remat equation and the backward pass computes both sins again, behind a barrier
    assert without.count("sin") == 2
    assert with_remat.count("sin") == 2
    assert {"remat2", "checkpoint"} & set(with_remat)
    assert "optimization_barrier" in with_remat


@pytest.mark.parametrize(
    "policy",
    [
        jax.checkpoint_policies.nothing_saveable,
        jax.checkpoint_policies.dots_saveable,
        jax.checkpoint_policies.save_only_these_names("hidden"),
    ],
    ids=["nothing_saveable", "dots_saveable", "save_only_these_names"],
)
def test_checkpoint_policies_give_jax_gradients(policy):
    from jax.ad_checkpoint import checkpoint_name

    def block(w, x):
        return jnp.tanh(checkpoint_name(x @ w, "hidden")) @ w

    def loss(w, x):
        return jnp.sum(jax.checkpoint(block, policy=policy)(w, x) ** 2)

    with x64():
        w = jax.random.normal(jax.random.key(3), (4, 4), jnp.float64) * 0.5
        x = jax.random.normal(jax.random.key(4), (2, 4), jnp.float64)
        assert_trees_close(funcgrad.grad(loss, (0, 1))(w, x), jax.grad(loss, (0, 1))(w, x))
        if policy is jax.checkpoint_policies.dots_saveable:
            # twice: the rule's recomputation is itself differentiable
            assert_trees_close(funcgrad.hessian(loss)(w, x), jax.hessian(loss)(w, x), rtol=1e-9)


def test_while_loop_on_a_differentiated_value_names_the_line_and_suggests_scan():
    def loss(x):
        return lax.while_loop(lambda v: v.sum() < 10.0, lambda v: v * 2.0, x).sum()

    line = inspect.getsourcelines(loss)[1] + 1
    with pytest.raises(funcgrad.NonDifferentiableError) as err:
        funcgrad.grad(loss)(jnp.ones(3))
    message = str(err.value)
    assert "'while'" in message
    assert f"{__file__}:{line}" in message
    assert "lax.scan" in message and "fori_loop" in message


def test_fori_loop_with_traced_bounds_is_a_while_and_is_refused():
    def loss(x, n):
        return lax.fori_loop(0, n, lambda i, v: v * 1.5, x)

    with pytest.raises(funcgrad.NonDifferentiableError, match="static"):
        funcgrad.grad(loss)(1.0, jnp.int32(3))


def test_while_loops_that_do_not_depend_on_the_input_are_fine():
    data = jnp.array([3.0, 1.0, 2.0])

    def loss(x):
        # integer-only state
        steps = lax.while_loop(lambda s: s[0] < 5, lambda s: (s[0] + 1, s[1] * 2), (0, 1))[1]
        # floating-point state built from closed-over data only
        scale = lax.while_loop(lambda v: v.sum() < 50.0, lambda v: v * 1.5, data)
        return jnp.sum(x * scale) * steps

    with x64():
        x = jnp.array([0.5, -1.0, 2.0])
        assert_trees_close(funcgrad.grad(loss)(x), jax.grad(loss)(x))


def _opaque(v):
    """The identity through a host callback, which has no derivative: funcgrad refuses it wherever a
    perturbation reaches it, so it marks which values must stay unperturbed (Equinox's
    ``nondifferentiable`` is used the same way)."""
    return jax.pure_callback(lambda a: np.asarray(a), jax.ShapeDtypeStruct(jnp.shape(v), jnp.result_type(v)), v)


def test_an_unperturbed_carry_of_a_scan_over_a_cond_carries_no_gradient():
    # a while loop written as a scan of a cond (Equinox's test_nondifferentiable_body1): y is not
    # differentiated, so the callback on it is never differentiated, though x and z are, in the same loop
    def body(carry):
        step, x, y, z = carry
        return step + 1, x + _opaque(y), y + 1.0, z.at[step].set(y)

    def loss(xz, y):
        x, z = xz

        def f(carry, _):
            return lax.cond(carry[0] < 2, body, lambda c: c, carry), None

        _, x_out, y_out, z_out = lax.scan(f, (0, x, y, z), None, length=3)[0]
        return x_out + y_out + jnp.sum(z_out)

    with x64():
        args = ((jnp.float64(1.2), jnp.full(3, -5.0)), jnp.float64(0.7))
        assert_trees_close(funcgrad.value_and_grad(loss)(*args), jax.value_and_grad(loss)(*args))
        assert_trees_close(jax.jit(funcgrad.grad(loss))(*args), jax.grad(loss)(*args))
        with pytest.raises(funcgrad.NonDifferentiableError, match="pure_callback"):
            funcgrad.grad(loss, argnums=1)(*args)  # now y is differentiated: the callback is reached


def test_a_carry_perturbed_only_after_the_first_iteration_is_differentiated():
    # b starts unperturbed and becomes perturbed through a: the fixpoint must see it, or b's gradient is lost
    def loss(x):
        def f(carry, _):
            a, b = carry
            return (a * 1.5, b + jnp.sin(a)), b

        (a, b), bs = lax.scan(f, (x, jnp.float64(0.0)), None, length=4)
        return b + jnp.sum(bs**2)

    with x64():
        assert_trees_close(funcgrad.grad(loss)(jnp.float64(0.3)), jax.grad(loss)(jnp.float64(0.3)))


def test_a_cond_operand_no_perturbation_reaches_is_not_differentiated():
    def loss(x, y):
        return lax.cond(x > 0, lambda a, b: a * _opaque(b), lambda a, b: a - b, x, y)

    with x64():
        for x in (1.5, -1.5):
            assert_trees_close(funcgrad.grad(loss)(x, 2.0), jax.grad(loss)(x, 2.0))


def test_while_loops_jax_accepts_are_accepted():
    # JAX refuses reverse mode through a while loop only where a perturbation reaches a floating carry
    def by_condition(x):
        # x only decides when to stop: the carry's tangent stays zero
        return lax.while_loop(lambda c: c < x, lambda c: c + 1.0, 0.0) * x

    def by_counter(x):
        # x reaches only an integer counter (and a floating carry it does not feed)
        n, s = lax.while_loop(lambda c: c[0] * 1.0 < x, lambda c: (c[0] + 1, c[1] * 2.0), (0, 1.0))
        return s * x + n

    def body_const_unused(x):
        # a body const that is perturbed but never flows into the carry
        return lax.while_loop(lambda c: c[0] < 3, lambda c: (c[0] + 1, c[1] + jnp.floor(x) * 0), (0, 1.0))[1] + x

    with x64():
        for f in (by_condition, by_counter, body_const_unused):
            for x in (0.5, 3.5):
                assert_trees_close(funcgrad.value_and_grad(f)(x), jax.value_and_grad(f)(x))
                assert_trees_close(jax.jit(funcgrad.grad(f))(x), jax.grad(f)(x))


def test_a_while_loop_a_perturbation_reaches_through_the_body_is_refused():
    # the carry is unperturbed at first and the body perturbs it from a const: refused, as in JAX
    def loss(x):
        return lax.while_loop(lambda c: c[0] < 3, lambda c: (c[0] + 1, c[1] + x), (0, 1.0))[1]

    with pytest.raises(ValueError, match="Reverse-mode differentiation does not work for lax.while_loop"):
        jax.grad(loss)(1.0)
    with pytest.raises(funcgrad.NonDifferentiableError, match="Reverse-mode differentiation does not work"):
        funcgrad.grad(loss)(1.0)


def test_dead_code_needs_no_rule():
    # a while_loop (no reverse-mode rule) on the differentiated input whose result is never used: no
    # cotangent can reach it, so it is not refused (JAX's dead-code elimination drops it too)
    def loss(x):
        unused = lax.while_loop(lambda c: c[0] < 3, lambda c: (c[0] + 1, c[1] * 2.0), (0, x))
        del unused
        return jnp.sum(jnp.sin(x))

    x = jnp.array([0.5, -1.0])
    np.testing.assert_allclose(funcgrad.grad(loss)(x), jax.grad(loss)(x))

    def used(x):  # the same loop, used: refused with the line
        return jnp.sum(lax.while_loop(lambda c: c[0] < 3, lambda c: (c[0] + 1, c[1] * 2.0), (0, x))[1])

    with pytest.raises(funcgrad.NonDifferentiableError, match="while"):
        funcgrad.grad(used)(x)


def test_pure_callback_is_refused_with_the_fix_and_debug_print_is_ignored():
    def with_print(x):
        jax.debug.print("x = {}", x)
        jax.debug.callback(lambda v: None, x)
        return jnp.sum(jnp.sin(x))

    x = jnp.array([0.1, 0.2])
    np.testing.assert_allclose(funcgrad.grad(with_print)(x), jax.grad(with_print)(x))

    def with_callback(x):
        return jax.pure_callback(np.sin, jax.ShapeDtypeStruct(x.shape, x.dtype), x).sum()

    with pytest.raises(funcgrad.NonDifferentiableError, match="custom_jvp"):
        funcgrad.grad(with_callback)(x)


# ----------------------------------------------------------------- jnp.linalg

_rng = np.random.default_rng(0)
_A = _rng.normal(size=(4, 4)) * 0.5 + 2 * np.eye(4)
_W = _rng.normal(size=(5, 3))
_SPD = _A @ _A.T + np.eye(4)
_b = _rng.normal(size=4)

LINALG = {
    "solve": (lambda a: jnp.sum(jnp.linalg.solve(a, _b) ** 2), _A),
    "inv": (lambda a: jnp.sum(jnp.sin(jnp.linalg.inv(a))), _A),
    "det": (lambda a: jnp.linalg.det(a), _A),
    "slogdet": (lambda a: jnp.linalg.slogdet(a)[1], _A),
    "cholesky": (lambda a: jnp.sum(jnp.linalg.cholesky(a) ** 3), _SPD),
    "eigh": (lambda a: jnp.sum(jnp.linalg.eigh(a)[0] ** 2) + jnp.sum(jnp.linalg.eigh(a)[1][:, 0] ** 4), _SPD),
    "svd": (lambda a: jnp.sum(jnp.linalg.svd(a, full_matrices=False)[0] ** 4), _W),
    "qr": (lambda a: jnp.sum(jnp.linalg.qr(a)[1] ** 2) + jnp.sum(jnp.linalg.qr(a)[0] ** 3), _W),
    "norm_2": (lambda a: jnp.linalg.norm(a, 2), _W),
    "norm_nuc": (lambda a: jnp.linalg.norm(a, "nuc"), _W),
    "pinv": (lambda a: jnp.sum(jnp.linalg.pinv(a) ** 2), _W),
    "lstsq": (lambda a: jnp.sum(jnp.linalg.lstsq(a, jnp.arange(5.0))[0] ** 2), _W),
    "cho_solve": (lambda a: jnp.sum(jax.scipy.linalg.cho_solve(jax.scipy.linalg.cho_factor(a), _b)), _SPD),
    "expm": (lambda a: jnp.sum(jax.scipy.linalg.expm(a * 0.3)), _A),
}


@pytest.mark.parametrize("name", sorted(LINALG))
def test_jnp_linalg_gradients_match_jax(name):
    fn, a = LINALG[name]
    with x64():
        assert_trees_close(funcgrad.grad(fn)(a), jax.grad(fn)(a), rtol=1e-9, atol=1e-11)


def test_second_derivatives_through_linear_solves():
    # the VJP of custom_linear_solve is itself a linear solve, so it differentiates implicitly again
    def loss(a):
        return jnp.sum(jnp.linalg.solve(a, _b) ** 2) + jnp.linalg.slogdet(a)[1]

    with x64():
        assert_trees_close(funcgrad.hessian(loss)(_A), jax.hessian(loss)(_A), rtol=1e-9, atol=1e-11)
