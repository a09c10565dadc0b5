"""The mechanism shared by rules that run funcgrad's own sweep over another program.

Two kinds of rule do this:

* rules whose primitive carries a nested program (``scan``, ``cond``, ``checkpoint``,
  ``custom_jvp_call``, ``custom_vjp_call``, ``shard_map``, ``custom_linear_solve``): the program is a
  ``Graph`` in the equation's params, differentiated by ``graph_vjp`` / ``graph_backward``, often
  inside a ``lax`` construct (a ``switch``, a reversed ``scan``, a ``shard_map``);
* rules that reuse a JAX algorithm so that ties come out as JAX's do (``cumprod``/``cummax``'s
  prefix scan, the generic ``reduce``'s tree, ``qr``/``svd``'s tangent maps): the algorithm is
  traced into a graph and swept by ``traced_vjp``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax.numpy as jnp
from jax import lax

from funcgrad.core.accumulation import add_cotangents, zero_cotangent
from funcgrad.core.ir import Graph, Type
from funcgrad.core.sweep import vjp_graph
from funcgrad.core.tracer import trace_flat


def graph_vjp(graph: Graph, args: Sequence[Any], wrt: Sequence[bool], out_cts: Sequence[Any]) -> list:
    """Cotangents of ``graph``'s inputs (``None`` where none flows) given its outputs' (``None``: a zero)."""
    _, backward = vjp_graph(graph, list(args), list(wrt))
    return backward(list(out_cts))


def traced_vjp(fun: Callable, args: Sequence[Any], wrt: Sequence[bool], out_cts: Sequence[Any], specs=None) -> list:
    """``graph_vjp`` of ``fun`` (a function of ``len(args)`` arrays returning a list), traced by funcgrad.

    ``specs`` (shapes and dtypes to trace at) default to ``args`` themselves."""
    graph = trace_flat(lambda *xs: list(fun(*xs)), list(args if specs is None else specs)).graph
    return graph_vjp(graph, args, wrt, out_cts)


def differentiated(types: Sequence[Type]) -> list[bool]:
    """Which inputs of a nested program can carry a gradient: the floating-point ones."""
    return [t.is_float for t in types]


def float_only(cts: Sequence[Any], types: Sequence[Type]) -> list:
    """Keep cotangents of floating outputs; integer outputs get ``None`` (no gradient)."""
    return [c if t.is_float else None for c, t in zip(cts, types, strict=True)]


def scatter_back(diff_cts: Sequence[Any], wrt: Sequence[bool]) -> list:
    """Interleave the differentiated inputs' cotangents with ``None`` for the others."""
    it = iter(diff_cts)
    return [next(it) if w else None for w in wrt]


def strong(x, t: Type):
    """``x`` as a non-weakly-typed array of ``t``'s dtype (loop carries must keep one type)."""
    return lax.convert_element_type(x, t.dtype)


def like(ct, primal, t: Type):
    """``ct`` with ``primal``'s dtype (not weakly typed) and, inside ``shard_map``, its varying axes.

    Loop carries and branch outputs must keep one type; adding a zero shaped like the primal makes
    an invariant cotangent (e.g. the driver's zeros) varying where the primal is.
    """
    if _has_own_accumulation(t):  # (an extended dtype's zero is its own, e.g. -inf for max)
        zero = zero_cotangent(t.shape, t.dtype)
        return zero if ct is None else add_cotangents(strong(ct, t), zero)
    zero = jnp.zeros_like(primal, dtype=t.dtype)
    return zero if ct is None else lax.add(strong(ct, t), zero)


def _has_own_accumulation(t: Type) -> bool:
    return hasattr(getattr(t.dtype, "_rules", None), "add")


def graph_backward(graph: Graph, args: Sequence[Any], out_cts: Sequence[Any], wrt: Sequence[bool]) -> list:
    """Cotangents of ``graph``'s differentiated inputs only, each a concrete array typed like its primal
    (zeros where none flows): what a loop body or a branch must return."""
    in_cts = graph_vjp(graph, args, wrt, out_cts)
    return [like(c, a, t) for a, t, c, w in zip(args, graph.in_types, in_cts, wrt) if w]
