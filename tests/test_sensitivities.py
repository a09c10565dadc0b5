"""funcgrad.sensitivities: dL/dz at each tagged z equals jax.grad with respect to a zero perturbation added at z."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import funcgrad
from tests.conftest import x64

RNG = np.random.default_rng(3)
PARAMS = {
    "W1": RNG.normal(size=(5, 4)),
    "b1": RNG.normal(size=(5,)),
    "W2": RNG.normal(size=(3, 5)),
}
X = RNG.normal(size=(4,))
Y = RNG.normal(size=(3,))


def loss(p, x, y, dz=None):
    """A two-layer net with tags; ``dz`` perturbs each tagged point (absent: the plain loss)."""
    dz = dz or {}
    s1 = funcgrad.tag(p["W1"] @ x + p["b1"] + dz.get("s1", 0.0), "s1")
    z1 = funcgrad.tag(jnp.tanh(s1) + dz.get("z1", 0.0), "z1")
    # z1 fans out into two branches: its sensitivity sums both
    s2 = funcgrad.tag(p["W2"] @ z1 + 0.5 * jnp.sum(z1) + dz.get("s2", 0.0), "s2")
    return jnp.sum((s2 - y) ** 2)


def _zeros(p, x, y):
    s1 = p["W1"] @ x
    return {"s1": jnp.zeros_like(s1), "z1": jnp.zeros_like(s1), "s2": jnp.zeros_like(y)}


def test_each_sensitivity_is_the_gradient_wrt_a_zero_perturbation_there():
    with x64():
        p = jax.tree.map(jnp.asarray, PARAMS)
        x, y = jnp.asarray(X), jnp.asarray(Y)
        got = funcgrad.sensitivities(loss)(p, x, y)
        expected = jax.jit(jax.grad(lambda dz: loss(p, x, y, dz)))(_zeros(p, x, y))
        assert list(got) == ["s1", "z1", "s2"]
        for k in expected:
            np.testing.assert_allclose(got[k], expected[k], rtol=1e-12, atol=1e-14, err_msg=k)


def test_sensitivities_under_jit_and_vmap():
    with x64():
        p = jax.tree.map(jnp.asarray, PARAMS)
        xs = jnp.asarray(RNG.normal(size=(3, 4)))
        y = jnp.asarray(Y)
        batched = jax.jit(jax.vmap(funcgrad.sensitivities(loss), in_axes=(None, 0, None)))(p, xs, y)
        per_example = jax.jit(jax.grad(lambda dz, x: loss(p, x, y, dz)))
        for i in range(3):
            expected = per_example(_zeros(p, xs[i], y), xs[i])
            for k in expected:
                np.testing.assert_allclose(batched[k][i], expected[k], rtol=1e-12, atol=1e-14)


def test_every_intermediate_on_request():
    with x64():
        p = jax.tree.map(jnp.asarray, PARAMS)
        x, y = jnp.asarray(X), jnp.asarray(Y)
        every = funcgrad.sensitivities(loss, every=True)(p, x, y)
        graph = funcgrad.trace(loss)(p, x, y)
        produced = [v for e in graph.eqns for v in e.outputs if v.type.is_float]
        assert len(every) == len(produced)
        tagged = funcgrad.sensitivities(loss)(p, x, y)
        for k in tagged:
            np.testing.assert_allclose(every[k], tagged[k], rtol=1e-14)
        # the loss itself is an intermediate: dL/dL = 1
        last = list(every)[-1]
        np.testing.assert_allclose(every[last], 1.0)


def test_a_value_that_does_not_reach_the_loss_has_zero_sensitivity_and_data_tags_work():
    def f(w, x):
        unused = funcgrad.tag(jnp.cos(x), "unused")
        data = funcgrad.tag(x * 2, "data")  # depends on data only: still gets dL/d(data)
        del unused
        return jnp.sum(w * data)

    w, x = jnp.arange(3.0), jnp.ones(3)
    got = funcgrad.sensitivities(f)(w, x)
    np.testing.assert_allclose(got["unused"], jnp.zeros(3))
    np.testing.assert_allclose(got["data"], w)


def test_no_tags_is_a_clear_error():
    with pytest.raises(funcgrad.InputError, match="funcgrad.tag"):
        funcgrad.sensitivities(lambda x: jnp.sum(x**2))(jnp.ones(2))


# ------------------------------------------------------------------ values inside control flow
# Each loss takes ``dz``: the perturbations written into it by hand (None: the plain loss). funcgrad's
# sensitivities of the plain loss must equal jax.grad with respect to ``dz`` at zero.


def _check(loss_fn, args, zeros, rtol=1e-12):
    got = funcgrad.sensitivities(loss_fn)(*args)
    expected = jax.jit(jax.grad(lambda dz: loss_fn(*args, dz=dz)))(zeros)
    assert list(got) == list(zeros)
    for k in zeros:
        assert got[k].shape == zeros[k].shape, k
        np.testing.assert_allclose(got[k], expected[k], rtol=rtol, atol=1e-13, err_msg=k)
    return got


def _rnn_args(T=6, H=4, scale=1.0, seed=0):
    rng = np.random.default_rng(seed)
    W = jnp.asarray(scale * rng.normal(size=(H, H)) / np.sqrt(H))
    U = jnp.asarray(rng.normal(size=(H, 3)))
    xs = jnp.asarray(rng.normal(size=(T, 3)))
    return W, U, xs, jnp.zeros(H)


def rnn_loss(W, U, xs, h0, dz=None, reverse=False):
    """A tanh RNN; the hidden state h_t is tagged, and ``dz["h"][t]`` perturbs it (scanned over)."""
    T = xs.shape[0]
    dh = jnp.zeros((T, h0.shape[0])) if dz is None else dz["h"]

    def step(h, inputs):
        x, d = inputs
        h = funcgrad.tag(jnp.tanh(W @ h + U @ x) + d, "h")
        return h, jnp.sum(jnp.sin(h))

    h, ys = jax.lax.scan(step, h0, (xs, dh), reverse=reverse)
    return jnp.sum(h**2) + jnp.sum(ys)


def test_rnn_hidden_state_gets_one_sensitivity_per_step():
    with x64():
        args = _rnn_args()
        got = _check(rnn_loss, args, {"h": jnp.zeros((6, 4))})
        assert got["h"].shape == (6, 4)  # dL/dh_t for every t


def test_scan_with_reverse_is_indexed_as_its_xs():
    with x64():
        args = _rnn_args(T=5)
        f = lambda *a, dz=None: rnn_loss(*a, dz=dz, reverse=True)
        _check(f, args, {"h": jnp.zeros((5, 4))})


def test_fori_loop_with_static_bounds():
    def f(w, x, dz=None):
        def body(i, c):
            d = 0.0 if dz is None else dz["c"][i]
            return funcgrad.tag(jnp.sin(w * c) + d, "c")

        return jnp.sum(jax.lax.fori_loop(0, 4, body, x) ** 2)

    with x64():
        _check(f, (jnp.asarray(1.3), jnp.asarray([0.2, -0.7, 1.1])), {"c": jnp.zeros((4, 3))})


def test_scan_in_scan_gives_outer_by_inner_stacks():
    def f(w, xs, dz=None):
        d_all = jnp.zeros((3, 2, 2)) if dz is None else dz["z"]

        def outer(c, inp):
            row, d_row = inp

            def inner(c, inp2):
                x, d = inp2
                z = funcgrad.tag(jnp.tanh(w * c + x) + d, "z")
                return z, jnp.sum(z)

            c, ys = jax.lax.scan(inner, c, (row, d_row))
            return c * 0.5, jnp.sum(ys)

        c, ys = jax.lax.scan(outer, jnp.ones(2), (xs, d_all))
        return jnp.sum(c) + jnp.sum(ys**2)

    with x64():
        xs = jnp.asarray(RNG.normal(size=(3, 2, 2)))
        got = _check(f, (jnp.asarray(0.8), xs), {"z": jnp.zeros((3, 2, 2))})
        assert got["z"].shape == (3, 2, 2)  # (T_outer, T_inner, *z.shape)


@pytest.mark.parametrize("taken", [True, False])
def test_tag_in_one_cond_branch(taken):
    def f(x, flag, dz=None):
        d = jnp.zeros(3) if dz is None else dz["b"]
        y = jax.lax.cond(flag, lambda x, d: funcgrad.tag(jnp.sin(x) + d, "b") * 2.0, lambda x, d: jnp.cos(x), x, d)
        return jnp.sum(y**2)

    with x64():
        got = _check(f, (jnp.asarray([0.3, -1.2, 2.0]), jnp.asarray(taken)), {"b": jnp.zeros(3)})
        assert bool(jnp.any(got["b"] != 0)) == taken  # zero when the branch does not run


def test_tags_in_several_switch_branches_and_a_cond_in_a_scan():
    def f(x, dz=None):
        d = {"a": jnp.zeros((3, 2)), "c": jnp.zeros((3, 2))} if dz is None else dz

        def step(c, inp):
            i, da, dc = inp
            branches = [
                lambda c, da, dc: funcgrad.tag(jnp.sin(c) + da, "a"),
                lambda c, da, dc: c * 1.5,
                lambda c, da, dc: funcgrad.tag(c**2 + dc, "c"),
            ]
            c = jax.lax.switch(i, branches, c, da, dc)
            return c, None

        c, _ = jax.lax.scan(step, x, (jnp.arange(3), d["a"], d["c"]))
        return jnp.sum(c**3)

    with x64():
        got = _check(f, (jnp.asarray([0.4, -0.9]),), {"a": jnp.zeros((3, 2)), "c": jnp.zeros((3, 2))})
        np.testing.assert_array_equal(got["a"][1:], 0.0)  # branch 0 runs at step 0 only
        np.testing.assert_array_equal(got["c"][:2], 0.0)  # branch 2 at step 2 only


@pytest.mark.parametrize("policy", [None, jax.checkpoint_policies.everything_saveable])
def test_tag_in_a_checkpoint_body(policy):
    def f(w, x, dz=None):
        d = jnp.zeros(3) if dz is None else dz["k"]

        @functools.partial(jax.checkpoint, policy=policy)
        def block(x, d):
            return jnp.tanh(funcgrad.tag(jnp.sin(w * x) + d, "k") * w)

        return jnp.sum(block(x, d) ** 2)

    with x64():
        _check(f, (jnp.asarray(0.7), jnp.asarray([0.1, 0.5, -2.0])), {"k": jnp.zeros(3)})


def test_tag_in_a_scan_over_a_checkpointed_body():
    # a scan whose body holds a checkpoint stores its reads per iteration (funcgrad.rules.control)
    def f(W, U, xs, h0, dz=None):
        dh = jnp.zeros((xs.shape[0], h0.shape[0])) if dz is None else dz["h"]

        @jax.checkpoint
        def cell(h, x, d):
            return funcgrad.tag(jnp.tanh(W @ h + U @ x) + d, "h")

        h, _ = jax.lax.scan(lambda h, inp: (cell(h, *inp), None), h0, (xs, dh))
        return jnp.sum(h**2)

    with x64():
        _check(f, _rnn_args(T=4), {"h": jnp.zeros((4, 4))})


def test_one_label_outside_and_inside_a_loop():
    def f(w, xs, dz=None):
        d = {"h": jnp.zeros(3), "h#2": jnp.zeros((4, 3))} if dz is None else dz
        h = funcgrad.tag(jnp.sin(w) + d["h"], "h")

        def step(c, inp):
            x, dd = inp
            c = funcgrad.tag(jnp.tanh(c * x) + dd, "h")
            return c, None

        c, _ = jax.lax.scan(step, h, (xs, d["h#2"]))
        return jnp.sum(c * h)

    with x64():
        xs = jnp.asarray(RNG.normal(size=(4, 3)))
        _check(f, (jnp.asarray([0.2, 1.0, -0.4]), xs), {"h": jnp.zeros(3), "h#2": jnp.zeros((4, 3))})


def test_loop_sensitivities_under_jit_and_vmap():
    with x64():
        W, U, _, h0 = _rnn_args()
        batch = jnp.asarray(RNG.normal(size=(3, 6, 3)))
        sens = jax.jit(jax.vmap(funcgrad.sensitivities(rnn_loss), in_axes=(None, None, 0, None)))(W, U, batch, h0)
        grad = jax.jit(jax.grad(lambda dz, xs: rnn_loss(W, U, xs, h0, dz=dz)))
        for b in range(3):
            expected = grad({"h": jnp.zeros((6, 4))}, batch[b])
            np.testing.assert_allclose(sens["h"][b], expected["h"], rtol=1e-12, atol=1e-14)


def test_vanishing_gradient_of_a_tanh_rnn():
    # with small recurrent weights each step back multiplies dL/dh by W^T diag(1 - h^2), whose norm is < 1
    def loss(W, U, xs, h0):
        def step(h, x):
            return funcgrad.tag(jnp.tanh(W @ h + U @ x), "h"), None

        h, _ = jax.lax.scan(step, h0, xs)
        return jnp.sum(h)  # the loss reads the last hidden state only

    W, U, xs, h0 = _rnn_args(T=12, H=8, scale=0.3)
    norms = np.linalg.norm(funcgrad.sensitivities(loss)(W, U, xs, h0)["h"], axis=1)
    assert np.all(np.diff(norms) > 0), norms  # ||dL/dh_t|| decreases as t goes back
    assert norms[0] < 1e-3 * norms[-1]


def test_tags_where_no_perturbation_can_go_are_left_out_with_a_warning_naming_them():
    def in_while(x):
        def body(c):
            return funcgrad.tag(c * 0.5, "halved")

        y = funcgrad.tag(x * 1.0, "outside")
        return jnp.sum(y**2) + jnp.sum(jax.lax.while_loop(lambda c: jnp.sum(c) > 1.0, body, x))

    x = jnp.ones(3) * 4.0
    with pytest.warns(UserWarning, match="'halved'.*while.*\n.*fix: use lax.scan"):
        got = funcgrad.sensitivities(in_while)(x)
    assert list(got) == ["outside"]  # the reachable tag is still there, with its sensitivity
    np.testing.assert_allclose(got["outside"], 2 * x)

    @jax.custom_vjp
    def custom(x):
        return funcgrad.tag(jnp.sin(x), "inner") * 2.0

    custom.defvjp(lambda x: (custom(x), x), lambda x, ct: (2.0 * jnp.cos(x) * ct,))
    with (
        pytest.warns(UserWarning, match="'inner'.*custom.*\n.*fix: tag the function's inputs or outputs"),
        pytest.raises(funcgrad.InputError, match="no tagged intermediate values"),
    ):
        funcgrad.sensitivities(lambda x: jnp.sum(custom(x)))(jnp.ones(3))


def test_perturbed_graph_with_nested_targets_typechecks():
    from funcgrad.core.perturbation import perturb
    from funcgrad.core.typecheck import typecheck

    W, U, xs, h0 = _rnn_args(T=3)
    graph = funcgrad.trace(rnn_loss)(W, U, xs, h0)
    tags = [e.outputs[0] for e, depth in graph.walk() if e.primitive == "tag"]
    assert len(tags) == 1
    perturbed, _ = perturb(graph, tags)
    typecheck(perturbed)
    assert perturbed.inputs[-1].type.shape == (3, 4)
    assert len(graph.inputs) == len(perturbed.inputs) - 1  # the original graph is unchanged
