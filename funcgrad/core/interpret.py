"""Evaluate a ``Graph`` by running each equation's primitive (through JAX)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from funcgrad.core.ir import Graph, Literal


def eval_graph(graph: Graph, *args: Any) -> list[Any]:
    """Run ``graph`` on ``args`` (arrays or tracers) and return its outputs."""
    return read_all(evaluate(graph, args), graph.outputs)


def evaluate(graph: Graph, args: Sequence[Any]) -> dict:
    """Run ``graph`` on ``args`` and return every value it computed, keyed by its ``Var``
    (constants and inputs included): the forward half of the reverse sweep keeps them all."""
    env: dict = {}
    for v, c in zip(graph.constvars, graph.consts):
        env[v] = c
    for v, x in zip(graph.inputs, args, strict=True):
        env[v] = x
    for eqn in graph.eqns:
        outs = eqn.impl(*read_all(env, eqn.inputs))
        for v, out in zip(eqn.outputs, outs):
            env[v] = out
    return env


def read_all(env: dict, atoms: Sequence) -> list[Any]:
    return [a.value if isinstance(a, Literal) else env[a] for a in atoms]
