"""Graphs as text, in the style of a jaxpr.

Variables are named ``a, b, c, ...`` in order of appearance (constants, inputs,
then each equation's outputs). A variable with a label (a ``funcgrad.tag``, or
a forward value in ``funcgrad.backward_graph``) is printed under its label, and
letters already taken by labels are skipped, so names stay unique.
"""

from __future__ import annotations

import itertools
import string

import numpy as np

from funcgrad.ir import Eqn, Graph, Literal, Type, Var, _dtype_short


def _letters():
    for n in itertools.count(1):
        for combo in itertools.product(string.ascii_lowercase, repeat=n):
            yield "".join(combo)


class _Namer:
    """Names variables on first sight: its label if it has one (made unique), else the next free letter."""

    def __init__(self, labels: bool = True, reserved: set[str] = frozenset()):
        self._it = _letters()
        self._names: dict[int, str] = {}
        self._used: set[str] = set()
        self._labels = labels
        self._reserved = set(reserved)

    def __call__(self, v: Var) -> str:
        key = id(v)
        if key not in self._names:
            if self._labels and v.label is not None:
                name, k = v.label, 2
                while name in self._used:
                    name, k = f"{v.label}#{k}", k + 1
            else:
                name = next(self._it)
                while name in self._used or name in self._reserved:
                    name = next(self._it)
            self._names[key] = name
            self._used.add(name)
        return self._names[key]


def _graph_labels(graph: Graph) -> set[str]:
    vs = [*graph.constvars, *graph.inputs, *(v for e in graph.eqns for v in e.outputs)]
    return {v.label for v in vs if v.label is not None}


def var_names(graph: Graph, *, labels: bool = True) -> dict[int, str]:
    """The name ``format_graph`` prints for each variable of ``graph`` (top level), keyed by ``id(var)``."""
    name = _Namer(labels, _graph_labels(graph) if labels else set())
    for v in (*graph.constvars, *graph.inputs):
        name(v)
    for eqn in graph.eqns:
        for v in eqn.outputs:
            name(v)
    return {k: name._names[k] for k in name._names}


def type_str(t: Type, shapes: bool = True, dtypes: bool = True) -> str:
    """``f32[2,4]``, or only the shape ``[2,4]``, or only the dtype ``f32``."""
    shape = f"[{','.join(map(str, t.shape))}]"
    dtype = _dtype_short(t.dtype)
    return (dtype if dtypes else "") + (shape if shapes else "")


def format_graph(
    graph: Graph,
    *,
    types: bool = True,
    shapes: bool | None = None,
    dtypes: bool | None = None,
    labels: bool = True,
    source: bool | str = False,
    scopes: bool = False,
    indent: int = 0,
    namer=None,
) -> str:
    """``graph`` as jaxpr-like text.

    Args:
      types: annotate each variable with its type, e.g. ``c:f32[2,4]`` (sets the default of
        ``shapes`` and ``dtypes``).
      shapes: show shapes (``c:[2,4]`` alone when ``dtypes=False``).
      dtypes: show dtypes (``c:f32`` alone when ``shapes=False``).
      labels: print labelled variables (``funcgrad.tag``) under their label instead of a letter.
      source: end each equation with ``# file.py:line`` of the user's code; ``"full"`` gives
        the full path, line and function.
      scopes: show each equation's name scope (``jax.named_scope``, inlined ``jit`` names,
        ``ct[...]`` marks of a backward graph).
      indent: spaces before every line.
      namer: reuse the variable names of an enclosing printout (internal).

    Returns:
      The text, one equation per line.
    """
    shapes = types if shapes is None else shapes
    dtypes = types if dtypes is None else dtypes
    opts = dict(shapes=shapes, dtypes=dtypes, labels=labels, source=source, scopes=scopes)
    name = namer or _Namer(labels, _graph_labels(graph) if labels else set())
    show_type = shapes or dtypes

    def binder(v: Var) -> str:
        return f"{name(v)}:{type_str(v.type, shapes, dtypes)}" if show_type else name(v)

    def atom(a) -> str:
        if isinstance(a, Literal):
            arr = np.asarray(a.value)
            val = repr(arr.item()) if arr.ndim == 0 else f"array{list(arr.shape)}"
            return f"{val}:{type_str(a.type, shapes, dtypes)}" if show_type else val
        return name(a)

    pad = " " * indent
    consts = " ".join(binder(v) for v in graph.constvars)
    ins = " ".join(binder(v) for v in graph.inputs)
    lines = [f"{pad}{{ lambda {consts}; {ins}. let"]
    for eqn in graph.eqns:
        lines.extend(_format_eqn(eqn, binder, atom, pad + "    ", opts))
    outs = ", ".join(atom(a) for a in graph.outputs)
    lines.append(f"{pad}  in ({outs}{',' if len(graph.outputs) == 1 else ''}) }}")
    return "\n".join(lines)


def _format_eqn(eqn: Eqn, binder, atom, pad, opts) -> list[str]:
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
    if opts["scopes"] and eqn.source.scope:
        comment.append(eqn.source.scope)
    if opts["source"] and eqn.source.file is not None:
        src = eqn.source
        comment.append(f"{src.where()} ({src.function})" if opts["source"] == "full" else src.short_where())
    tail = f"    # {'  '.join(comment)}" if comment else ""
    lines = [f"{pad}{outs} = {head} {args}{tail}"]
    for key, graphs in nested:
        for g in graphs:
            lines.append(f"{pad}  {key}=")
            lines.append(format_graph(g, **opts, indent=len(pad) + 4))
    return lines


def _param_str(v) -> str:
    if isinstance(v, np.dtype) or type(v).__name__ == "dtype":
        return np.dtype(v).name
    if isinstance(v, type) and hasattr(v, "dtype"):
        return np.dtype(v).name
    s = str(v)
    return s if len(s) <= 60 else s[:57] + "..."
