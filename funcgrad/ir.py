"""funcgrad's graph IR: typed variables, literals, equations and graphs.

Everything here is immutable. A ``Graph`` is a straight-line program in
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
import types
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import numpy as np


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
        """True for dtypes that carry gradients (floating and complex)."""
        try:
            # jax.dtypes knows the ml_dtypes floats (bfloat16, float8_*) that NumPy does not
            return bool(jax.dtypes.issubdtype(self.dtype, np.inexact))
        except TypeError:  # extended dtypes such as PRNG keys
            return False

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

    def __post_init__(self):
        if not isinstance(self.params, types.MappingProxyType):
            object.__setattr__(self, "params", types.MappingProxyType(dict(self.params)))


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
        return [g for e in self.eqns for g in subgraphs_of(e)]

    def __str__(self) -> str:
        from funcgrad.pretty import format_graph

        return format_graph(self)

    def format(self, **options) -> str:
        """The graph as text; see ``funcgrad.pretty.format_graph`` for options."""
        from funcgrad.pretty import format_graph

        return format_graph(self, **options)

    def _repr_pretty_(self, p, cycle):  # IPython
        p.text(str(self))


def subgraphs_of(eqn: Eqn) -> list[Graph]:
    found = []
    for value in eqn.params.values():
        if isinstance(value, Graph):
            found.append(value)
        elif isinstance(value, (tuple, list)):
            found.extend(v for v in value if isinstance(v, Graph))
    return found


class TypeCheckError(Exception):
    """A graph is malformed: a variable used before it is bound, bound twice, or mistyped."""


def typecheck(graph: Graph, out_types: Callable[[Eqn], Sequence[Type]] | None = None) -> None:
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
        for sub in subgraphs_of(eqn):
            typecheck(sub, out_types)
        if out_types is not None:
            expected = list(out_types(eqn))
            got = [v.type for v in eqn.outputs]
            if [(t.shape, np.dtype(t.dtype)) for t in expected] != [(t.shape, np.dtype(t.dtype)) for t in got]:
                raise TypeCheckError(f"{what}: outputs typed {got}, shape rule gives {expected}")
        for v in eqn.outputs:
            bind(v, what)
    for a in graph.outputs:
        use(a, "graph output")


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
