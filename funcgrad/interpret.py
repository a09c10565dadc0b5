"""Evaluate a ``Graph`` by running each equation's primitive (through JAX)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from funcgrad.ir import Graph, Literal


def eval_graph(graph: Graph, *args: Any) -> list[Any]:
    """Run ``graph`` on ``args`` (arrays or tracers) and return its outputs."""
    env: dict = {}
    for v, c in zip(graph.constvars, graph.consts):
        env[v] = c
    for v, x in zip(graph.inputs, args, strict=True):
        env[v] = x
    for eqn in graph.eqns:
        outs = eqn.impl(*read_all(env, eqn.inputs))
        for v, out in zip(eqn.outputs, outs):
            env[v] = out
    return read_all(env, graph.outputs)


def read_all(env: dict, atoms: Sequence) -> list[Any]:
    return [a.value if isinstance(a, Literal) else env[a] for a in atoms]


def infer_out_types(eqn) -> list:
    """Re-run ``eqn``'s shape rule (through JAX's abstract evaluation) and return its output types."""
    import jax

    from funcgrad.ir import Type

    def spec(a):
        if isinstance(a, Literal):
            return a.value
        return jax.ShapeDtypeStruct(a.type.shape, a.type.dtype)

    specs = [spec(a) for a in eqn.inputs]
    literal_pos = [i for i, a in enumerate(eqn.inputs) if isinstance(a, Literal)]

    def run(*abstract):
        full = list(abstract)
        for i in literal_pos:
            full[i] = specs[i]
        return eqn.impl(*full)

    outs = jax.eval_shape(run, *[None if i in literal_pos else s for i, s in enumerate(specs)])
    return [Type(tuple(o.shape), o.dtype) for o in outs]


def typecheck(graph: Graph) -> None:
    """Check ``graph``: single assignment, binding before use, literal types, and every equation's
    output types against the primitive's shape rule. Raises ``funcgrad.ir.TypeCheckError``."""
    from funcgrad import ir

    ir.typecheck(graph, infer_out_types)
