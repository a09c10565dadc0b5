"""funcgrad.tag, the graph printer's options, and the marked graph of a gradient computation."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import funcgrad
from funcgrad.core.interpret import eval_graph
from funcgrad.core.ir import var_names
from funcgrad.inspect.backward_graph import cotangent_targets, is_backward
from tests.conftest import x64

RNG = np.random.default_rng(0)
W = jnp.asarray(RNG.normal(size=(3, 2)))
X = jnp.asarray(RNG.normal(size=(4, 3)))


def layer(w, x):
    s = funcgrad.tag(x @ w, "s")
    with jax.named_scope("activation"):
        z = funcgrad.tag(jnp.tanh(s), "z")
    return jnp.sum(z * z)


def test_tag_is_the_identity_under_every_transformation():
    with x64():
        w, x = W.astype(jnp.float64), X.astype(jnp.float64)

        def untagged(w, x):
            return jnp.sum(jnp.tanh(x @ w) ** 2)

        expected = jax.grad(untagged)(w, x)
        np.testing.assert_allclose(layer(w, x), untagged(w, x), rtol=1e-14)
        np.testing.assert_allclose(jax.jit(layer)(w, x), untagged(w, x), rtol=1e-14)
        np.testing.assert_allclose(jax.jit(jax.grad(layer))(w, x), expected, rtol=1e-12)
        np.testing.assert_allclose(funcgrad.grad(layer)(w, x), expected, rtol=1e-12)
        np.testing.assert_allclose(jax.jit(funcgrad.grad(layer))(w, x), expected, rtol=1e-12)
        batched = jax.vmap(funcgrad.grad(layer), in_axes=(None, 0))(w, jnp.stack([x, 2 * x]))
        np.testing.assert_allclose(batched[1], jax.grad(untagged)(w, 2 * x), rtol=1e-12)
        # second order through the tag's own VJP rule
        hvp = jax.jit(funcgrad.grad(lambda w: jnp.sum(funcgrad.grad(layer)(w, x))))(w)
        np.testing.assert_allclose(hvp, jax.jit(jax.grad(lambda w: jnp.sum(jax.grad(untagged)(w, x))))(w), rtol=1e-10)


def test_tag_is_one_labelled_equation_with_the_callers_line():
    graph = funcgrad.trace(layer)(W, X)
    tags = [e for e in graph.eqns if e.primitive == "tag"]
    assert [e.params["name"] for e in tags] == ["s", "z"]
    assert [e.outputs[0].label for e in tags] == ["s", "z"]
    assert all(e.source.file.endswith("test_seeing_graphs.py") for e in tags)
    assert tags[1].source.scope == "activation"
    text = graph.format()
    assert "s:f32[4,2] = tag[name=s]" in text and "z:f32[4,2] = tag[name=z]" in text


def test_tag_of_a_pytree_labels_each_leaf_by_path():
    def f(p):
        q = funcgrad.tag({"a": p["a"] * 2, "b": p["b"] + 1}, "p")
        return q["a"].sum() + q["b"].sum()

    graph = funcgrad.trace(f)({"a": jnp.ones(2), "b": jnp.ones(3)})
    assert sorted(v.label for e in graph.eqns if e.primitive == "tag" for v in e.outputs) == ["p['a']", "p['b']"]


def test_tag_inside_a_jitted_function_is_kept():
    inner = jax.jit(lambda x: funcgrad.tag(jnp.sin(x), "inner") * 2)
    graph = funcgrad.trace(lambda x: inner(x).sum())(jnp.ones(3))
    (tag,) = [e for e in graph.eqns if e.primitive == "tag"]
    assert tag.params["name"] == "inner" and "jit(" in tag.source.scope


def test_format_options():
    graph = funcgrad.trace(layer)(W, X)
    assert "s:[4,2] = tag" in graph.format(dtypes=False)
    assert "s:f32 = tag" in graph.format(shapes=False)
    assert "s = tag[name=s] c" in graph.format(types=False)
    no_labels = graph.format(types=False, labels=False)
    assert "s = tag" not in no_labels and "tag[name=s] c" in no_labels
    assert "# activation" in graph.format(scopes=True)
    full = graph.format(source="full")
    assert __file__ in full and "(layer)" in full
    assert "test_seeing_graphs.py:" in graph.format(source=True)


def test_labels_never_collide_with_letter_names():
    def f(x):
        a = funcgrad.tag(jnp.sin(x), "a")  # a label that is also the first letter name
        return funcgrad.tag(a * 2, "a").sum()

    graph = funcgrad.trace(f)(jnp.ones(2))
    names = list(var_names(graph).values())
    assert len(names) == len(set(names)) and "a" in names and "a#2" in names


def test_backward_graph_computes_the_gradient_and_marks_each_rule():
    with x64():
        w, x = W.astype(jnp.float64), X.astype(jnp.float64)
        bg = funcgrad.backward_graph(layer)(w, x)
        loss, grad_w = eval_graph(bg, w, x)
        np.testing.assert_allclose(loss, layer(w, x), rtol=1e-14)
        np.testing.assert_allclose(grad_w, jax.grad(layer)(w, x), rtol=1e-12)

        forward = funcgrad.trace(layer)(w, x)
        n_forward = len(forward.eqns)
        assert [e.primitive for e in bg.eqns[:n_forward]] == [e.primitive for e in forward.eqns]
        assert [e.source for e in bg.eqns[:n_forward]] == [e.source for e in forward.eqns]
        backward = bg.eqns[n_forward:]
        assert backward and all(is_backward(e) for e in backward)
        forward_names = set(var_names(forward).values())
        marked = [e for e in backward if cotangent_targets(e)]
        assert all(set(cotangent_targets(e)) <= forward_names for e in marked)
        # tanh's rule computes dC/ds; the product z*z's rule dC/dz; the matmul's rule dC/dw (input 'a')
        targets = {t for e in marked for t in cotangent_targets(e)}
        assert {"s", "z", "a"} <= targets
        # x is data (not differentiated): nothing computes its cotangent, so it is never a target
        assert "b" not in targets
        text = bg.format(scopes=True)
        assert "backward/ct[s]" in text and "backward/ct[z]" in text
        # forward variables keep the forward printout's names in the backward graph's printout
        assert "z:f64[4,2] = tag[name=z]" in text
