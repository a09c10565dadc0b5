"""A bounded cache of traced graphs, keyed by function and input signature.

A second call with the same function, argument structure, shapes, dtypes and
static (non-traced) values reuses the graph instead of re-tracing. Like
``jax.jit``, values the function reads from closures or globals are captured
when it is traced; funcgrad re-traces when such a variable is *rebound* (its
object identity changes), but not when a NumPy array is mutated in place —
pass such arrays as arguments, or call ``funcgrad.clear_cache()``.

Graphs that captured tracers of an enclosing transformation (a function
defined inside ``jax.jit``/``jax.vmap``) are never cached: those tracers die
with their transformation.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import threading
import types
from collections.abc import Callable, Hashable
from typing import Any

import jax
import numpy as np

from funcgrad.core.hot_calls import HotEntryInfo, hot_calls
from funcgrad.core.jax_compat import CUSTOM_DERIVATIVE_TYPES, placement_of


@dataclasses.dataclass(frozen=True)
class CacheInfo:
    """Counters of the trace cache (hits, misses, current size and bound), and the hot-call table's
    entries (``funcgrad.core.hot_calls``): ``compiled`` programs (one per function, argument structure
    and array signature) took ``compile_s`` seconds in all to build; ``hot`` lists each entry (name,
    calls, compiled signatures and their compile time, or why it stays eager)."""

    hits: int
    misses: int
    size: int
    maxsize: int
    uncacheable: int
    compiled: int = 0
    compile_s: float = 0.0
    hot: tuple[HotEntryInfo, ...] = ()


class TraceCache:
    """LRU map from call signature to traced (graph, out_tree)."""

    def __init__(self, maxsize: int = 512):
        self.maxsize = maxsize
        self._entries: collections.OrderedDict = collections.OrderedDict()
        self._lock = threading.Lock()
        self._hits = self._misses = self._uncacheable = 0
        # signatures whose abstract trace failed on Python control flow: traced concretely each call
        self._concrete: collections.OrderedDict = collections.OrderedDict()
        # signatures whose non-differentiated arrays must be constants of the graph (traced each call)
        self._constants: collections.OrderedDict = collections.OrderedDict()

    def needs_constants(self, key: Hashable) -> bool:
        return self._has(self._constants, key)

    def mark_constants(self, key: Hashable | None) -> None:
        """This signature's non-differentiated arrays must be traced as constants (a custom_vjp's
        nondiff_argnums): its abstract trace is not tried again."""
        self._mark(self._constants, key)

    def needs_concrete(self, key: Hashable) -> bool:
        return self._has(self._concrete, key)

    def mark_concrete(self, key: Hashable | None) -> None:
        self._mark(self._concrete, key)

    def _has(self, marks: collections.OrderedDict, key: Hashable) -> bool:
        with self._lock:
            return key in marks

    def _mark(self, marks: collections.OrderedDict, key: Hashable | None) -> None:
        if key is None:
            return
        with self._lock:
            marks[key] = True
            while len(marks) > self.maxsize:
                marks.popitem(last=False)

    def get_or_trace(self, key: Hashable | None, trace: Callable[[], Any], consts_of: Callable[[Any], tuple]) -> Any:
        if key is None:
            with self._lock:
                self._uncacheable += 1
            return trace()
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                self._hits += 1
                return self._entries[key]
        value = trace()
        with self._lock:
            self._misses += 1
            if not any(isinstance(c, jax.core.Tracer) for c in consts_of(value)):
                self._entries[key] = value
                while len(self._entries) > self.maxsize:
                    self._entries.popitem(last=False)
        return value

    def info(self) -> CacheInfo:
        with self._lock:
            return CacheInfo(self._hits, self._misses, len(self._entries), self.maxsize, self._uncacheable)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._concrete.clear()
            self._constants.clear()
            self._hits = self._misses = self._uncacheable = 0


def signature_key(fun: Callable, tree, leaves: list, traced_idx: list[int]) -> Hashable | None:
    """The cache key of a call, or None if some part of it is not hashable."""
    traced = set(traced_idx)
    parts = []
    for i, leaf in enumerate(leaves):
        if i in traced:
            parts.append(
                ("T", np.shape(leaf), _dtype_of(leaf), bool(getattr(leaf, "weak_type", False)), placement_of(leaf))
            )
        else:
            parts.append(("S", type(leaf), leaf))
    key = (function_key(fun), tree, tuple(parts), closure_fingerprint(fun))
    try:
        hash(key)
    except TypeError:
        return None
    return key


def _dtype_of(leaf):
    dtype = getattr(leaf, "dtype", None)
    return str(dtype) if dtype is not None else type(leaf).__name__


class _Same:
    """An object compared by identity. Holding it keeps the object alive, so its ``id`` cannot be
    reused by a new object (as CPython does for freed floats) while a cache key refers to it."""

    __slots__ = ("obj",)

    def __init__(self, obj):
        self.obj = obj

    def __eq__(self, other):
        return isinstance(other, _Same) and other.obj is self.obj

    def __hash__(self):
        return id(self.obj)


def function_key(fun: Callable) -> Hashable:
    """What identifies a function for the cache: a plain Python function by its code and default
    arguments (with its closure and globals in ``closure_fingerprint``), so that a closure rebuilt on
    every call (``lambda w: loss(w, batch)`` in a loop) over the same objects is the same function;
    anything else (a jitted function, a bound method, a callable object) by identity."""
    if type(fun) is not types.FunctionType:
        return _Same(fun)
    defaults = tuple(_value_or_same(d) for d in (fun.__defaults__ or ()))
    kwdefaults = tuple(sorted((k, _value_or_same(v)) for k, v in (fun.__kwdefaults__ or {}).items()))
    return (fun.__code__, defaults, kwdefaults)


_IMMUTABLE = (int, float, complex, bool, str, bytes, type(None))


def _value_or_same(obj) -> Hashable:
    """A Python scalar or string by (type, value), anything else by identity."""
    if type(obj) in _IMMUTABLE:
        return (type(obj), obj)
    return _Same(obj)


def closure_fingerprint(fun: Callable) -> tuple:
    """The objects ``fun`` reads from its closure and globals, compared by identity.

    A ``jax.custom_vjp``/``custom_jvp`` function is one object whose rules ``defvjp``/``defjvp``
    replace in place (JAX's tests redefine them between calls): its rules count as well."""
    fun = getattr(fun, "__func__", fun)
    while isinstance(fun, functools.partial):
        fun = fun.func
    code = getattr(fun, "__code__", None)
    if code is None:
        return _rules_of(fun)
    cells = [c.cell_contents for c in (fun.__closure__ or ()) if _cell_filled(c)]
    glb = getattr(fun, "__globals__", {})
    read = cells + [glb[n] for n in code.co_names if n in glb]
    return tuple(_value_or_same(obj) for obj in read) + tuple(part for obj in read for part in _rules_of(obj))


def objects_read(fun: Callable) -> list:
    """What a call of ``fun`` depends on besides its arguments, as objects: a plain function's code,
    defaults, closure cells and the globals it names (with a custom_vjp/custom_jvp function's rules);
    anything else itself, with the same of the function it wraps. ``funcgrad.api.hot`` keys its
    compiled programs by these objects' ids (and holds them, so the ids stay theirs)."""
    found = []
    if isinstance(fun, types.MethodType):  # a new object at each attribute access: its parts
        found.append(fun.__self__)
        fun = fun.__func__
    if type(fun) is types.FunctionType:
        found.append(fun.__code__)
        found.extend(fun.__defaults__ or ())
        found.extend(v for _, v in sorted((fun.__kwdefaults__ or {}).items()))
    else:
        found.append(fun)
    inner = getattr(fun, "__func__", fun)
    while isinstance(inner, functools.partial):
        inner = inner.func
    code = getattr(inner, "__code__", None)
    if code is None:
        read = [inner]
    else:
        glb = getattr(inner, "__globals__", {})
        read = [c.cell_contents for c in (inner.__closure__ or ()) if _cell_filled(c)]
        read += [glb[n] for n in code.co_names if n in glb]
        found.extend(read)
    for obj in read:
        if isinstance(obj, CUSTOM_DERIVATIVE_TYPES):
            found.extend(getattr(obj, name, None) for name in _RULE_ATTRS)
    return found


_RULE_ATTRS = ("fwd", "bwd", "jvp", "symbolic_zeros", "symz")


def _rules_of(obj) -> tuple:
    """The derivative rules of a custom_vjp/custom_jvp function (by identity), else ()."""
    if not isinstance(obj, CUSTOM_DERIVATIVE_TYPES):
        return ()
    return tuple(_Same(getattr(obj, name, None)) for name in _RULE_ATTRS)


def _cell_filled(cell) -> bool:
    try:
        cell.cell_contents  # noqa: B018
    except ValueError:
        return False
    return True


trace_cache = TraceCache()


def cache_info() -> CacheInfo:
    """Hits, misses and size of funcgrad's trace cache, and its compiled hot calls."""
    hot = hot_calls.info()
    return dataclasses.replace(
        trace_cache.info(), compiled=sum(e.compiled for e in hot), compile_s=sum(e.compile_s for e in hot), hot=hot
    )


def clear_cache() -> None:
    """Drop every cached graph and compiled hot call (and reset the counters)."""
    trace_cache.clear()
    hot_calls.clear()
