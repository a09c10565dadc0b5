"""One call's arguments, split into the leaves funcgrad traces and the leaves it passes through.

Which arguments are traced: every leaf of a differentiated argument, and every array leaf
(``jax.Array``, ``numpy.ndarray``) of the other arguments and keyword arguments. Other leaves of
non-differentiated arguments (Python numbers, strings, flags) are passed to the function as they
are, so ``loss(params, x, y, train=True)`` can branch on ``train`` in Python.

``Call`` is the one object that does this split, for the API, the inspection tools and the checks;
``trace_call`` traces it into a ``Graph`` through the trace cache.

With ``static_outputs=True`` (the differentiation API) the output leaves that do not depend on
the traced values (a Python number, a string, a constant array) are not graph outputs: each is
kept, unchanged, in a ``StaticLeaf`` node of the output tree and handed back as it was returned,
as JAX's ``grad`` with ``has_aux=True`` hands back a string ``aux``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import inspect
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from funcgrad.core.cache import signature_key, trace_cache
from funcgrad.core.concrete import can_trace_concretely, trace_concrete
from funcgrad.core.ir import Graph
from funcgrad.core.tracer import Traced, trace_flat
from funcgrad.errors import InputError, TracingError

tree_util = jax.tree_util


def fun_name(fun) -> str:
    return getattr(fun, "__name__", type(fun).__name__)


def arg_names(fun, nargs: int) -> list[str]:
    """Names of ``fun``'s first ``nargs`` positional parameters (``args[i]`` where it has none), for error messages."""
    try:
        params = list(inspect.signature(fun).parameters.values())
    except (TypeError, ValueError):
        params = []
    names = []
    for i in range(nargs):
        if i < len(params) and params[i].kind in (params[i].POSITIONAL_ONLY, params[i].POSITIONAL_OR_KEYWORD):
            names.append(params[i].name)
        else:
            names.append(f"args[{i}]")
    return names


def argnums_tuple(argnums: int | Sequence[int], nargs: int, fun: Callable) -> tuple[int, ...]:
    """``argnums`` as a tuple of non-negative ints, or a clear error if one is out of range."""
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    for n in nums:
        if not isinstance(n, int) or not -nargs <= n < nargs:
            fix = (
                f"pass argnums between 0 and {nargs - 1}, and pass differentiated values positionally"
                if nargs
                else "pass the value(s) to differentiate as positional arguments"
            )
            raise InputError(
                f"argnums={argnums!r} is out of range: {fun_name(fun)} was called with {nargs} "
                f"positional argument(s).\n  fix: {fix} (keyword arguments are never differentiated)."
            )
    return tuple(n % nargs for n in nums)


class StaticLeaf:
    """An output leaf that does not depend on the traced values, kept as the function returned it.

    A pytree node without children whose node data is the box itself (compared by identity), so
    the output tree of a trace carries it and ``tree_unflatten`` gives it back.
    """

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __repr__(self) -> str:
        return f"StaticLeaf({self.value!r})"


tree_util.register_pytree_node(StaticLeaf, lambda s: ((), s), lambda s, _: s)


def is_static_leaf(x) -> bool:
    return isinstance(x, StaticLeaf)


def box_static_outputs(out):
    """``out`` with each leaf that is not a tracer (so depends on no traced value) in a ``StaticLeaf``."""
    return tree_util.tree_map(lambda y: y if isinstance(y, jax.core.Tracer) else StaticLeaf(y), out)


def is_array(x) -> bool:
    return isinstance(x, (jax.Array, np.ndarray, np.generic)) or isinstance(x, jax.core.Tracer)


def leaf_dtype(x):
    try:
        return jnp.result_type(x)
    except TypeError:
        return None


@dataclasses.dataclass(frozen=True)
class LeafProblem:
    """A leaf of a differentiated argument that cannot be differentiated as given."""

    kind: str  # "non-array leaf" or "integer leaf"
    path: str  # e.g. "params['w']"
    leaf: Any

    def error(self) -> InputError:
        if self.kind == "non-array leaf":
            return InputError(
                f"{self.path} is a {type(self.leaf).__name__}, which funcgrad cannot differentiate: every leaf of a "
                "differentiated argument must be an array or a Python number.\n"
                "  fix: move it to an argument that is not in argnums, or close over it."
            )
        return InputError(
            f"{self.path}: {dtype_name(self.leaf)} is an integer/boolean leaf of a differentiated argument; only "
            "floating-point values have gradients.\n  fix: pass allow_int=True (its gradient is a float0 zero, as "
            "in JAX), move it to an argument that is not in argnums, or convert it to a float."
        )


def dtype_name(leaf) -> str:
    dtype = leaf_dtype(leaf)
    return "bool" if dtype == jnp.bool_ else np.dtype(dtype).name


def _leaf_problem(path: str, leaf, allow_int: bool) -> LeafProblem | None:
    dtype = leaf_dtype(leaf) if (is_array(leaf) or isinstance(leaf, (int, float, complex, bool))) else None
    if dtype is None:
        return LeafProblem("non-array leaf", path, leaf)
    if jnp.issubdtype(dtype, jnp.inexact) or allow_int:
        return None
    return LeafProblem("integer leaf", path, leaf)


class Call:
    """One call's arguments, split into traced leaves and static leaves.

    ``problems`` collects the leaves of differentiated arguments that cannot be differentiated;
    with ``collect=False`` (the API) the first one raises ``InputError`` instead. A non-array leaf
    is then passed through untraced, an integer leaf traced but not differentiated.
    """

    def __init__(self, fun, args, kwargs, argnums, allow_int, *, collect: bool = False, static_outputs: bool = False):
        self.fun, self.argnums = fun, argnums
        self.static_outputs = static_outputs
        names = arg_names(fun, len(args))
        with_paths, self.tree = tree_util.tree_flatten_with_path((tuple(args), dict(kwargs)))
        self.leaves = [leaf for _, leaf in with_paths]
        self.traced_idx: list[int] = []
        self.wrt: list[bool] = []
        self.diff_leaf_idx: list[int] = []
        self.diff_leaf_argnum: list[int] = []
        self.problems: list[LeafProblem] = []
        for i, (path, leaf) in enumerate(with_paths):
            top = path[0].idx  # 0: positional, 1: keyword
            argnum = path[1].idx if top == 0 else None
            if top == 0 and argnum in argnums:
                problem = _leaf_problem(names[argnum] + tree_util.keystr(path[2:]), leaf, allow_int)
                if problem is not None and not collect:
                    raise problem.error()
                if problem is not None:
                    self.problems.append(problem)
                    if problem.kind == "non-array leaf":
                        continue  # passed through unchanged, so the trace can still go on
                self.diff_leaf_idx.append(i)
                self.diff_leaf_argnum.append(argnum)
                self.traced_idx.append(i)
                self.wrt.append(bool(jnp.issubdtype(leaf_dtype(leaf), jnp.inexact)))
            elif is_array(leaf):
                self.traced_idx.append(i)
                self.wrt.append(False)

    def bake_undifferentiated_arrays(self) -> None:
        """Pass the arrays of non-differentiated arguments into the function as the caller gave them
        (constants of the graph), not as tracers: what ``jax.grad`` hands a function, and what a
        ``custom_vjp``/``custom_jvp`` function requires of its ``nondiff_argnums``."""
        diff = set(self.diff_leaf_idx)
        kept = [(i, w) for i, w in zip(self.traced_idx, self.wrt) if i in diff]
        self.traced_idx = [i for i, _ in kept]
        self.wrt = [w for _, w in kept]

    def traced_values(self) -> list:
        return [self.leaves[i] for i in self.traced_idx]

    def flat_fun(self, *traced):
        full = list(self.leaves)
        for i, v in zip(self.traced_idx, traced):
            full[i] = v
        args, kwargs = tree_util.tree_unflatten(self.tree, full)
        out = self.fun(*args, **kwargs)
        return box_static_outputs(out) if self.static_outputs else out


def trace_call(call: Call) -> tuple[Graph, Any]:
    """``(graph, output tree)`` of the call (see ``trace_call_values``)."""
    traced = trace_call_values(call)
    return traced.graph, traced.out_tree


def trace_call_values(call: Call) -> Traced:
    """The call traced into a graph: abstractly, like ``jax.jit``, and from the trace cache when its
    signature was seen before; or, when that fails on Python control flow and the values are concrete
    (no ``jax.jit`` or other transformation around), concretely, for the branch the values take
    (``funcgrad.core.concrete``; never cached: the next call may branch differently)."""
    key = signature_key(call.fun, call.tree, call.leaves, call.traced_idx)
    if key is not None:
        # float64 on or off: the same Python scalars and NumPy float64 arrays trace to other dtypes
        key = (key, call.static_outputs, jax.dtypes.canonicalize_dtype(np.float64) == np.float64)
    with gc_paused():
        if key is not None and trace_cache.needs_constants(key):
            call.bake_undifferentiated_arrays()
            return trace_flat(call.flat_fun, call.traced_values())
        values = call.traced_values()
        if key is not None and trace_cache.needs_concrete(key) and can_trace_concretely(values):
            return trace_concrete(call.flat_fun, values)
        try:
            return trace_cache.get_or_trace(key, lambda: trace_flat(call.flat_fun, values), lambda t: t.graph.consts)
        except TracingError:
            if not can_trace_concretely(values):
                raise  # under jit/vmap: today's clear error
            traced = trace_concrete(call.flat_fun, values)
            trace_cache.mark_concrete(key)
            return traced
        except jax.errors.UnexpectedTracerError as err:
            # a custom_vjp/custom_jvp function got a traced array in its nondiff_argnums: jax.grad hands
            # the function its non-differentiated arguments as they are, so trace again with them baked
            # in (not cached by shape: their values are in the graph)
            if "nondiff_argnums" not in str(err) or len(call.traced_idx) == len(call.diff_leaf_idx):
                raise
            call.bake_undifferentiated_arrays()
            traced = trace_flat(call.flat_fun, call.traced_values())
            trace_cache.mark_constants(key)
            return traced


@contextlib.contextmanager
def gc_paused():
    """Pause CPython's cyclic garbage collector while graphs are built (tracing, the sweeps).

    Building a graph allocates many long-lived objects and, as measured, no reference cycles;
    each full collection re-scans every live object, which made tracing and differentiating a
    10^5-equation graph 2-3x slower. Memory is still freed by reference counting, and the
    collector's previous state is restored on exit.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def scalar_seed(out, fun):
    """The cotangent 1 for a scalar real output (``grad``'s seed), or a clear error for any other output."""
    leaves = tree_util.tree_leaves(out)
    if len(leaves) != 1 or np.shape(leaves[0]) != ():
        shapes = ", ".join(f"{leaf_dtype(x)}{list(np.shape(x))}" for x in leaves) or "nothing"
        raise InputError(
            f"grad requires {fun_name(fun)} to return a scalar, but it returned {shapes}.\n"
            "  fix: reduce it with .sum() or .mean(); use funcgrad.jacrev for the full Jacobian; "
            "or return (loss, extras) and pass has_aux=True."
        )
    dtype = leaf_dtype(leaves[0])
    if not jnp.issubdtype(dtype, jnp.floating):
        fix = (
            "reduce it to a real loss (jnp.real(z), jnp.abs(z) ** 2), or use funcgrad.vjp with a "
            "complex cotangent (JAX's convention)"
            if jnp.issubdtype(dtype, jnp.complexfloating)
            else "compute the loss in a floating-point dtype (e.g. x.astype(jnp.float32))"
        )
        raise InputError(
            f"grad requires a real floating-point output, but {fun_name(fun)} returned dtype {dtype}.\n  fix: {fix}."
        )
    return tree_util.tree_unflatten(tree_util.tree_structure(out), [jnp.ones((), dtype)])
