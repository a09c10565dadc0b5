"""Graphs as text, in the style of a jaxpr."""

from __future__ import annotations

import itertools
import string

import numpy as np

from funcgrad.ir import Eqn, Graph, Literal, Var


def _names():
    letters = string.ascii_lowercase
    for n in itertools.count(1):
        for combo in itertools.product(letters, repeat=n):
            yield "".join(combo)


class _Namer:
    def __init__(self):
        self._it = _names()
        self._names: dict[int, str] = {}

    def __call__(self, v: Var) -> str:
        key = id(v)
        if key not in self._names:
            self._names[key] = next(self._it)
        return self._names[key]


def format_graph(graph: Graph, *, types: bool = True, source: bool = False, scopes: bool = False, indent: int = 0, namer=None) -> str:
    """``graph`` as jaxpr-like text.

    Args:
      types: annotate each variable with its type, e.g. ``c:f32[2,4]``.
      source: end each equation with ``# file:line`` of the user's code.
      scopes: show each equation's name scope (``jax.named_scope``, inlined ``jit`` names).
    """
    name = namer or _Namer()

    def binder(v: Var) -> str:
        label = f"{name(v)}:{v.type.short()}" if types else name(v)
        return label

    def atom(a) -> str:
        if isinstance(a, Literal):
            arr = np.asarray(a.value)
            val = repr(arr.item()) if arr.ndim == 0 else f"array{list(arr.shape)}"
            return f"{val}:{a.type.short()}" if types else val
        return name(a)

    pad = " " * indent
    consts = " ".join(binder(v) for v in graph.constvars)
    ins = " ".join(binder(v) for v in graph.inputs)
    lines = [f"{pad}{{ lambda {consts}; {ins}. let"]
    for eqn in graph.eqns:
        lines.extend(_format_eqn(eqn, binder, atom, name, pad + "    ", types, source, scopes))
    outs = ", ".join(atom(a) for a in graph.outputs)
    lines.append(f"{pad}  in ({outs}{',' if len(graph.outputs) == 1 else ''}) }}")
    return "\n".join(lines)


def _format_eqn(eqn: Eqn, binder, atom, namer, pad, types, source, scopes) -> list[str]:
    outs = " ".join(binder(v) for v in eqn.outputs)
    simple, nested = [], []
    for k, v in eqn.params.items():
        if isinstance(v, Graph):
            nested.append((k, [v]))
        elif isinstance(v, tuple) and v and all(isinstance(g, Graph) for g in v):
            nested.append((k, list(v)))
        elif v is None or (k in ("num_consts", "symbolic_zeros") and not v):
            continue  # defaults that only add noise
        else:
            simple.append(f"{k}={_param_str(v)}")
    head = eqn.primitive + (f"[{' '.join(simple)}]" if simple else "")
    args = " ".join(atom(a) for a in eqn.inputs)
    comment = []
    if scopes and eqn.source.scope:
        comment.append(eqn.source.scope)
    if source and eqn.source.file is not None:
        comment.append(eqn.source.short_where())
    tail = f"    # {'  '.join(comment)}" if comment else ""
    lines = [f"{pad}{outs} = {head} {args}{tail}"]
    for key, graphs in nested:
        for g in graphs:
            lines.append(f"{pad}  {key}=")
            lines.append(format_graph(g, types=types, source=source, scopes=scopes, indent=len(pad) + 4))
    return lines


def _param_str(v) -> str:
    if isinstance(v, np.dtype) or type(v).__name__ == "dtype":
        return np.dtype(v).name
    if isinstance(v, type) and hasattr(v, "dtype"):
        return np.dtype(v).name
    s = str(v)
    return s if len(s) <= 60 else s[:57] + "..."
