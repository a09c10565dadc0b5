"""funcgrad's graph IR: typed variables, literals, equations and graphs.

Everything here is immutable, and the text form (``format_graph``) lives here too,
as Autodidax keeps ``pp_jaxpr`` beside its ``Jaxpr``. A ``Graph`` is a straight-line program in
single-assignment form, the way a jaxpr is: ``inputs`` are bound by the caller,
each ``Eqn`` binds its ``outputs`` from its ``inputs`` with one primitive, and
``outputs`` name the results. Values captured from the enclosing program
(closed-over arrays, or tracers of an outer transformation) are ``constvars``
bound to ``consts``.

``Var`` identity is object identity: two variables are the same only if they
are the same object, so they can key dictionaries in the interpreters.
"""

from __future__ import annotations

import dataclasses
import itertools
import string
import types
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

from funcgrad.core.accumulation import carries_gradient


@dataclasses.dataclass(frozen=True)
class Type:
    """The abstract value of a variable: shape, dtype and JAX's weak-type flag."""

    shape: tuple[int, ...]
    dtype: np.dtype
    weak_type: bool = False

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def is_float(self) -> bool:
        """True for dtypes that carry gradients (floating and complex, and extended dtypes whose
        tangent is not float0; PRNG keys carry none)."""
        return carries_gradient(self.dtype)

    def short(self) -> str:
        return f"{_dtype_short(self.dtype)}[{','.join(map(str, self.shape))}]"

    def __str__(self) -> str:
        return self.short()


@dataclasses.dataclass(frozen=True, eq=False)
class Var:
    """A variable bound once, by a graph input or by one equation."""

    type: Type
    # A human label: a user tag (``funcgrad.tag``) or None.
    label: str | None = None

    def __repr__(self) -> str:
        return f"Var({self.type.short()}{'' if self.label is None else ', ' + self.label})"


@dataclasses.dataclass(frozen=True, eq=False)
class Literal:
    """A constant known when the graph is built (a scalar or small array)."""

    value: Any
    type: Type

    def __repr__(self) -> str:
        return f"Literal({_literal_str(self.value)}:{self.type.short()})"


Atom = Var | Literal


@dataclasses.dataclass(frozen=True)
class Source:
    """Where an equation came from in the user's program."""

    file: str | None = None
    line: int | None = None
    function: str | None = None
    # JAX's name stack (``jax.named_scope`` and inlined ``jit`` names), e.g. "block/jit(relu)".
    scope: str = ""
    # Only while ``tracer.keeping_tracebacks()`` is on (funcgrad.explore groups equations by the code
    # that made them): JAX's ``SourceInfo`` of the bind, whose traceback holds every user frame, and
    # the ``Source`` of the inlined call (a nested ``jit``) the equation came from. Not part of an
    # equation's identity (compare=False), and None otherwise (a traceback is about 1 KB).
    info: Any = dataclasses.field(default=None, compare=False, repr=False)
    caller: Source | None = dataclasses.field(default=None, compare=False, repr=False)

    def where(self) -> str:
        if self.file is None:
            return "<unknown>"
        return f"{self.file}:{self.line}"

    def short_where(self) -> str:
        if self.file is None:
            return "<unknown>"
        return f"{self.file.rsplit('/', 1)[-1]}:{self.line}"


@dataclasses.dataclass(frozen=True, eq=False)
class Eqn:
    """``outputs = primitive[params](*inputs)``.

    ``impl`` evaluates the primitive on concrete values or tracers and returns a
    list of outputs; it is built by ``funcgrad.trace`` (the only module that
    knows how JAX binds primitives) and treated as opaque everywhere else.
    ``params`` holds the primitive's parameters, with nested programs as
    ``Graph`` objects.
    """

    primitive: str
    inputs: tuple[Atom, ...]
    outputs: tuple[Var, ...]
    params: Mapping[str, Any]
    impl: Callable[..., list[Any]]
    source: Source = Source()
    # JAX's flag for the primitive (not the count of outputs): a scan with one carry still has
    # multiple results. The sweep hands such rules their cotangents as a list.
    multiple_results: bool = False

    def __post_init__(self):
        if not isinstance(self.params, types.MappingProxyType):
            object.__setattr__(self, "params", types.MappingProxyType(dict(self.params)))

    def subgraphs(self) -> list[Graph]:
        """The programs nested in this equation's params (a scan's body, a cond's branches, ...)."""
        found = []
        for value in self.params.values():
            if isinstance(value, Graph):
                found.append(value)
            elif isinstance(value, (tuple, list)):
                found.extend(v for v in value if isinstance(v, Graph))
        return found


@dataclasses.dataclass(frozen=True, eq=False)
class Graph:
    """A closed straight-line program: ``outputs = f(*inputs)`` given ``consts``."""

    inputs: tuple[Var, ...]
    eqns: tuple[Eqn, ...]
    outputs: tuple[Atom, ...]
    constvars: tuple[Var, ...] = ()
    consts: tuple[Any, ...] = ()

    @property
    def in_types(self) -> list[Type]:
        return [v.type for v in self.inputs]

    @property
    def out_types(self) -> list[Type]:
        return [a.type for a in self.outputs]

    def subgraphs(self) -> list[Graph]:
        """Graphs nested in this one's equations (one level)."""
        return [g for e in self.eqns for g in e.subgraphs()]

    def walk(self) -> Iterator[tuple[Eqn, int]]:
        """Every equation of this graph and of the graphs nested in it, depth first, with its nesting
        depth (0 for this graph's own equations); a nested program follows the equation that holds it."""
        for eqn in self.eqns:
            yield eqn, 0
            for sub in eqn.subgraphs():
                for inner, depth in sub.walk():
                    yield inner, depth + 1

    def __str__(self) -> str:
        return format_graph(self)

    def format(self, **options) -> str:
        """The graph as text; see ``format_graph`` for options."""
        return format_graph(self, **options)

    def _repr_pretty_(self, p, cycle):  # IPython
        p.text(str(self))


_DTYPE_SHORT = {
    "float16": "f16",
    "bfloat16": "bf16",
    "float32": "f32",
    "float64": "f64",
    "int8": "i8",
    "int16": "i16",
    "int32": "i32",
    "int64": "i64",
    "uint8": "u8",
    "uint16": "u16",
    "uint32": "u32",
    "uint64": "u64",
    "bool": "bool",
    "complex64": "c64",
    "complex128": "c128",
}


def _dtype_short(dtype) -> str:
    name = getattr(dtype, "name", None) or str(dtype)
    return _DTYPE_SHORT.get(name, name)


def _literal_str(value) -> str:
    arr = np.asarray(value)
    if arr.ndim == 0:
        return repr(arr.item())
    return f"array{tuple(arr.shape)}"


# ------------------------------------------------------------------ text form
# Graphs print like jaxprs. Variables are named ``a, b, c, ...`` in order of appearance (constants,
# inputs, then each equation's outputs). A variable with a label (a ``funcgrad.tag``, or a forward
# value in ``funcgrad.backward_graph``) is printed under its label, and letters already taken by
# labels are skipped, so names stay unique.


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
