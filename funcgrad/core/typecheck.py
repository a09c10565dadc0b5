"""The typechecker: is a ``Graph`` well formed, and does each equation have the types its primitive computes?

``check_structure`` checks binding (single assignment, nothing used before it is bound) and literal
types; ``typecheck`` also re-runs every equation's shape rule through JAX's abstract evaluation, as
Autodidax's typechecker re-runs its shape rules.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import numpy as np

from funcgrad.core.ir import Atom, Eqn, Graph, Literal, Type, Var


class TypeCheckError(Exception):
    """A graph is malformed: a variable used before it is bound, bound twice, or mistyped."""


def check_structure(graph: Graph, out_types: Callable[[Eqn], Sequence[Type]] | None = None) -> None:
    """Check that ``graph`` is well formed.

    Every variable is bound exactly once before use; literal types match their
    values; and, if ``out_types`` is given (a shape rule per equation), each
    equation's outputs have the types it computes.
    """
    bound: set[int] = set()

    def bind(v: Var, what: str) -> None:
        if not isinstance(v, Var):
            raise TypeCheckError(f"{what} binds {v!r}, which is not a Var")
        if id(v) in bound:
            raise TypeCheckError(f"{what} binds {v!r} a second time")
        bound.add(id(v))

    def use(a: Atom, what: str) -> None:
        if isinstance(a, Literal):
            shape = tuple(np.shape(a.value))
            if shape != a.type.shape:
                raise TypeCheckError(f"{what}: literal {a!r} has shape {shape}, type says {a.type.shape}")
        elif id(a) not in bound:
            raise TypeCheckError(f"{what} uses {a!r} before it is bound")

    if len(graph.constvars) != len(graph.consts):
        raise TypeCheckError(f"{len(graph.constvars)} constvars but {len(graph.consts)} consts")
    for v in (*graph.constvars, *graph.inputs):
        bind(v, "graph input")
    for i, eqn in enumerate(graph.eqns):
        what = f"equation {i} ({eqn.primitive})"
        for a in eqn.inputs:
            use(a, what)
        for sub in eqn.subgraphs():
            check_structure(sub, out_types)
        if out_types is not None:
            expected = list(out_types(eqn))
            got = [v.type for v in eqn.outputs]
            if [(t.shape, np.dtype(t.dtype)) for t in expected] != [(t.shape, np.dtype(t.dtype)) for t in got]:
                raise TypeCheckError(f"{what}: outputs typed {got}, shape rule gives {expected}")
        for v in eqn.outputs:
            bind(v, what)
    for a in graph.outputs:
        use(a, "graph output")


def infer_out_types(eqn) -> list:
    """Re-run ``eqn``'s shape rule (through JAX's abstract evaluation) and return its output types."""

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
    output types against the primitive's shape rule. Raises ``TypeCheckError``."""
    check_structure(graph, infer_out_types)
