"""Evaluate a ``Graph`` by running each equation's primitive (through JAX)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from funcgrad.core.ir import Graph, Literal


def eval_graph(graph: Graph, *args: Any) -> list[Any]:
    """Run ``graph`` on ``args`` (arrays or tracers) and return its outputs."""
    return read_all(evaluate(graph, args), graph.outputs)


def evaluate(graph: Graph, args: Sequence[Any]) -> dict:
    """Run ``graph`` on ``args`` and return every value it computed, keyed by its ``Var``
    (constants and inputs included): the forward half of the reverse sweep keeps them all."""
    return evaluate_saving(graph, args, {})[0]


def evaluate_saving(graph: Graph, args: Sequence[Any], forward: Mapping[int, Callable]) -> tuple[dict, dict]:
    """``evaluate``, where each equation ``id(eqn) in forward`` runs ``forward[id(eqn)](*inputs)``,
    which returns ``(outputs, saved)``; returns (every value, ``id(eqn)`` -> what it saved)."""
    env: dict = {}
    saved: dict = {}
    for v, c in zip(graph.constvars, graph.consts):
        env[v] = c
    for v, x in zip(graph.inputs, args, strict=True):
        env[v] = x
    for eqn in graph.eqns:
        ins = read_all(env, eqn.inputs)
        if id(eqn) in forward:
            outs, saved[id(eqn)] = forward[id(eqn)](*ins)
        else:
            outs = eqn.impl(*ins)
        for v, out in zip(eqn.outputs, outs):
            env[v] = out
    return env, saved


def read_all(env: dict, atoms: Sequence) -> list[Any]:
    return [a.value if isinstance(a, Literal) else env[a] for a in atoms]
