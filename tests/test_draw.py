"""funcgrad.draw: the picture's content, with funcgrad's own layout and with Graphviz's dot.

The dot test needs the ``dot`` program. CI installs Graphviz (``.ci/run``), and there
the test fails loudly if ``dot`` is missing; on a machine without Graphviz and outside
CI it is skipped with the install command (the pure-Python tests still run everywhere).
"""

from __future__ import annotations

import html
import os
import re
from xml.etree import ElementTree

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import funcgrad
from funcgrad.inspect.backward_graph import is_backward
from funcgrad.inspect.drawing import dot as dot_module

RNG = np.random.default_rng(7)


@jax.jit
def linear(p, z):
    return p["W"] @ z + p["b"]


def net(params, x, y):
    z = jnp.reshape(x, (-1,))
    z = funcgrad.tag(jax.nn.relu(linear(params[0], z)), "h1")
    s = linear(params[1], z)
    return jnp.mean((s - y) ** 2)


PARAMS = [
    {"W": jnp.asarray(RNG.normal(size=(5, 6)), jnp.float32), "b": jnp.zeros(5, jnp.float32)},
    {"W": jnp.asarray(RNG.normal(size=(3, 5)), jnp.float32), "b": jnp.zeros(3, jnp.float32)},
]
X = jnp.asarray(RNG.normal(size=(2, 3)), jnp.float32)
Y = jnp.zeros(3, jnp.float32)


def _count(svg: str, kind: str) -> int:
    return len(re.findall(rf'class="node {kind}"', svg))


def _content_checks(svg: str, graph, backward: bool = False):
    svg = html.unescape(svg)  # dot writes ' as &#39;
    tags = sum(e.primitive == "tag" for e in graph.eqns)
    fwd = [e for e in graph.eqns if e.primitive != "tag" and not is_backward(e)]
    assert _count(svg, "function") == len(fwd), "one node per forward equation"
    assert _count(svg, "variable") == tags
    assert _count(svg, "parameter") == 4 and _count(svg, "observed") == 2
    if backward:
        assert _count(svg, "backward") == sum(is_backward(e) for e in graph.eqns)
        assert _count(svg, "gradient") == 4
        assert "∂C/∂params[0]['W']" in svg
    else:
        assert _count(svg, "cost") == 1
    for label in ("dot_general", "relu", "h1", "params[0]['W']", "[5,6]", "[3]"):
        assert label in svg, label


def test_python_engine_forward(tmp_path):
    drawing = funcgrad.draw(net, engine="python")(PARAMS, X, Y)
    assert drawing.engine == "python"
    svg = drawing.to_svg()
    assert svg.startswith("<svg") and svg == drawing._repr_svg_()
    ElementTree.fromstring(svg)  # well-formed XML
    _content_checks(svg, funcgrad.trace(net)(PARAMS, X, Y))
    # every edge is labelled with a shape
    assert len(re.findall(r'class="edge"', svg)) == len(drawing.edges) > 0
    assert all(re.fullmatch(r"\[[\d,]*\]", e.label) for e in drawing.edges)
    png = drawing.save(tmp_path / "net.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 2000
    dot_text = drawing.save(tmp_path / "net.dot").read_text()
    assert dot_text.count("class=") == len(drawing.nodes)
    assert (tmp_path / "net.dot").exists() and drawing.save(tmp_path / "net.svg").read_text() == svg


def test_python_engine_backward_and_collapse():
    drawing = funcgrad.draw(net, backward=True, engine="python")(PARAMS, X, Y)
    graph = funcgrad.backward_graph(net)(PARAMS, X, Y)
    _content_checks(drawing.to_svg(), graph, backward=True)
    collapsed = funcgrad.draw(net, backward=True, collapse=True, engine="python")(PARAMS, X, Y)
    svg = collapsed.to_svg()
    functions = [n for n in collapsed.nodes if n.kind == "function"]
    # each jit(linear) call is one box standing for its equations
    linear_boxes = [n for n in functions if n.label == "linear"]
    assert len(linear_boxes) == 2 and all(n.eqns == 2 for n in linear_boxes)
    assert sum(n.eqns for n in collapsed.nodes if n.kind in ("function", "backward", "variable")) == len(graph.eqns)
    assert len(collapsed.nodes) < len(drawing.nodes) and "linear" in svg
    only = funcgrad.draw(net, collapse=["linear"], engine="python")(PARAMS, X, Y)
    assert [n.label for n in only.nodes if n.eqns > 1] == ["linear", "linear"]


def test_without_dot_auto_uses_python_and_dot_engine_says_how_to_install(monkeypatch):
    monkeypatch.setattr(dot_module, "dot_program", lambda: None)
    assert funcgrad.draw(net)(PARAMS, X, Y).engine == "python"
    with pytest.raises(RuntimeError, match="apt-get install graphviz"):
        funcgrad.draw(net, engine="dot")(PARAMS, X, Y)


def test_dot_engine(tmp_path):
    if dot_module.dot_program() is None:
        if os.environ.get("CI") == "true":
            pytest.fail("Graphviz's dot is not installed on CI; .ci/run installs it with apt-get")
        pytest.skip("Graphviz's dot is not installed (apt-get install graphviz)")
    drawing = funcgrad.draw(net, backward=True, engine="dot")(PARAMS, X, Y)
    assert funcgrad.draw(net)(PARAMS, X, Y).engine == "dot"  # auto prefers dot when installed
    svg = drawing.to_svg()
    assert "<svg" in svg
    _content_checks(svg, funcgrad.backward_graph(net)(PARAMS, X, Y), backward=True)
    png = drawing.save(tmp_path / "net.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_named_scopes_collapse_into_one_box():
    def f(x):
        with jax.named_scope("block"):
            h = jnp.sin(x) * 2 + 1
        return jnp.sum(h)

    graph = funcgrad.trace(f)(jnp.ones(3))
    in_block = [e for e in graph.eqns if e.source.scope == "block"]
    drawing = funcgrad.draw(f, collapse=True, engine="python")(jnp.ones(3))
    (box,) = [n for n in drawing.nodes if n.label == "block"]
    assert box.eqns == len(in_block) == 3
    assert sum(n.kind == "function" for n in drawing.nodes) == len(graph.eqns) - 3 + 1


def test_level_draws_one_box_per_block_of_the_code(tmp_path):
    """draw(level=...) groups as funcgrad.explore does: jitted calls, scopes, functions, lines of code."""

    def layer_norm(x):
        mean = jnp.mean(x, axis=-1, keepdims=True)
        return (x - mean) / jnp.sqrt(jnp.mean((x - mean) ** 2, axis=-1, keepdims=True) + 1e-5)

    def block(p, x):
        h = layer_norm(x)
        with jax.named_scope("mlp"):
            h = jax.nn.relu(h @ p["W1"]) @ p["W2"]
        return x + h

    def loss(p, x):
        return jnp.mean(block(p, x) ** 2)

    p = {
        "W1": jnp.asarray(RNG.normal(size=(4, 8)), jnp.float32),
        "W2": jnp.asarray(RNG.normal(size=(8, 4)), jnp.float32),
    }
    x = jnp.asarray(RNG.normal(size=(3, 4)), jnp.float32)
    graph = funcgrad.trace(loss)(p, x)
    top = funcgrad.draw(loss, level=1, engine="python")(p, x)
    boxes = [n for n in top.nodes if n.kind == "function"]
    assert [n.label for n in boxes if n.eqns > 1] == ["block"]  # the call of block(), then the loss's own ops
    assert sum(n.eqns for n in boxes) == len(graph.eqns)
    inner = funcgrad.draw(loss, level=2, engine="python")(p, x)
    labels = [n.label for n in inner.nodes if n.kind == "function" and n.eqns > 1]
    assert labels == ["layer_norm", "mlp"]
    svg = inner.to_svg()
    assert "layer_norm" in svg and "mlp" in svg
    assert inner.save(tmp_path / "blocks.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    backward = funcgrad.draw(loss, level=2, backward=True, engine="python")(p, x)
    assert {"layer_norm", "mlp"} <= {n.label for n in backward.nodes} and backward.diagram.kinds()["backward"] > 0
    with pytest.raises(ValueError, match="not both"):
        funcgrad.draw(loss, level=1, collapse=True)(p, x)
    with pytest.raises(ValueError, match="positive int"):
        funcgrad.draw(loss, level=0)(p, x)
