"""funcgrad.sensitivities: dL/dz at each tagged z equals jax.grad with respect to a zero perturbation added at z."""

from __future__ import annotations

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
