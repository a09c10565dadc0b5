"""The IR: immutability, the typechecker (including shape rules), and the printer."""

import dataclasses

import jax
import jax.numpy as jnp
import pytest

import funcgrad
from funcgrad.core.ir import Eqn, Graph, Type, Var
from funcgrad.core.typecheck import TypeCheckError


def loss(w, x):
    with jax.named_scope("layer1"):
        h = jnp.tanh(x @ w)
    return jax.jit(lambda z: jnp.sum(z**2), inline=False)(h)


W, X = jnp.ones((3, 2)), jnp.ones((4, 3))


def test_graph_is_immutable():
    g = funcgrad.trace(loss)(W, X)
    with pytest.raises(dataclasses.FrozenInstanceError):
        g.eqns = ()
    with pytest.raises(TypeError):
        g.eqns[0].params["dimension_numbers"] = None


def test_typecheck_accepts_traced_graphs_and_rejects_broken_ones():
    g = funcgrad.trace(loss)(W, X)
    funcgrad.typecheck(g)
    # use before definition
    broken = dataclasses.replace(g, eqns=g.eqns[1:])
    with pytest.raises(TypeCheckError, match="before it is bound"):
        funcgrad.typecheck(broken)
    # an output typed differently from what its shape rule says
    e = g.eqns[0]
    wrong = dataclasses.replace(e, outputs=(Var(Type((5, 5), e.outputs[0].type.dtype)),))
    bad = Graph(g.inputs, (wrong,), wrong.outputs)
    with pytest.raises(TypeCheckError, match="shape rule"):
        funcgrad.typecheck(bad)


def test_inlined_jit_and_named_scope_are_recorded():
    g = funcgrad.trace(loss)(W, X)
    scopes = [e.source.scope for e in g.eqns]
    assert any("layer1" in s for s in scopes)
    assert any("jit(<lambda>)" in s for s in scopes)
    assert all(isinstance(e, Eqn) for e in g.eqns)
    text = g.format(scopes=True, source=True)
    assert "layer1" in text and "test_ir.py" in text


def test_printer_reads_like_a_jaxpr():
    text = str(funcgrad.trace(loss)(W, X))
    assert text.startswith("{ lambda ; a:f32[3,2] b:f32[4,3]. let")
    assert "dot_general" in text and "tanh" in text and text.rstrip().endswith("}")
