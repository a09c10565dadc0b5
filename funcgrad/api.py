"""The public differentiation API, with JAX's signatures and semantics.

``grad``, ``value_and_grad``, ``vjp``, ``jacrev``/``jacobian`` and ``hessian``
trace the function into a ``funcgrad.ir.Graph`` (abstractly, like ``jax.jit``)
and run ``funcgrad.backprop`` over it. Pytrees go in and come out as in JAX.

Which arguments are traced: every leaf of a differentiated argument, and every
array leaf (``jax.Array``, ``numpy.ndarray``) of the other arguments and
keyword arguments. Other leaves of non-differentiated arguments (Python
numbers, strings, flags) are passed to the function as they are, so
``loss(params, x, y, train=True)`` can branch on ``train`` in Python.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import inspect
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from funcgrad import trace as _trace
from funcgrad.backprop import vjp_graph
from funcgrad.cache import signature_key, trace_cache
from funcgrad.debug import backward_hooks
from funcgrad.errors import InputError
from funcgrad.ir import Graph

tree_util = jax.tree_util


# ------------------------------------------------------------------ arguments


def _argnums_tuple(argnums: int | Sequence[int], nargs: int, fun: Callable) -> tuple[int, ...]:
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    for n in nums:
        if not isinstance(n, int) or not -nargs <= n < nargs:
            fix = (
                f"pass argnums between 0 and {nargs - 1}, and pass differentiated values positionally"
                if nargs
                else "pass the value(s) to differentiate as positional arguments"
            )
            raise InputError(
                f"argnums={argnums!r} is out of range: {_fun_name(fun)} was called with {nargs} "
                f"positional argument(s).\n  fix: {fix} (keyword arguments are never differentiated)."
            )
    return tuple(n % nargs for n in nums)


def _fun_name(fun) -> str:
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


def _is_array(x) -> bool:
    return isinstance(x, (jax.Array, np.ndarray, np.generic)) or isinstance(x, jax.core.Tracer)


def _leaf_dtype(x):
    try:
        return jnp.result_type(x)
    except TypeError:
        return None


def _check_diff_leaf(path: str, leaf, allow_int: bool) -> bool:
    """Whether ``leaf`` gets a gradient; raises for leaves that cannot be differentiated."""
    dtype = _leaf_dtype(leaf) if (_is_array(leaf) or isinstance(leaf, (int, float, complex, bool))) else None
    if dtype is None:
        raise InputError(
            f"{path} is a {type(leaf).__name__}, which funcgrad cannot differentiate: every leaf of a "
            "differentiated argument must be an array or a Python number.\n"
            "  fix: move it to an argument that is not in argnums, or close over it."
        )
    if jnp.issubdtype(dtype, jnp.inexact):
        return True
    if allow_int:
        return False
    kind = "bool" if dtype == jnp.bool_ else np.dtype(dtype).name
    raise InputError(
        f"{path}: {kind} is an integer/boolean leaf of a differentiated argument; only floating-point "
        "values have gradients.\n  fix: pass allow_int=True (its gradient is a float0 zero, as in JAX), "
        "move it to an argument that is not in argnums, or convert it to a float."
    )


class _Call:
    """One call's arguments, split into traced leaves and static leaves."""

    def __init__(self, fun, args, kwargs, argnums, allow_int):
        self.fun, self.argnums = fun, argnums
        names = arg_names(fun, len(args))
        self.leaves, self.tree = tree_util.tree_flatten((tuple(args), kwargs))
        paths = [p for p, _ in tree_util.tree_flatten_with_path((tuple(args), kwargs))[0]]
        self.traced_idx, self.wrt, self.diff_leaf_idx, self.diff_leaf_argnum = [], [], [], []
        for i, (path, leaf) in enumerate(zip(paths, self.leaves)):
            top = path[0].idx  # 0: positional, 1: keyword
            argnum = path[1].idx if top == 0 else None
            if top == 0 and argnum in argnums:
                name = names[argnum] + tree_util.keystr(path[2:])
                self.diff_leaf_idx.append(i)
                self.diff_leaf_argnum.append(argnum)
                self.traced_idx.append(i)
                self.wrt.append(_check_diff_leaf(name, leaf, allow_int))
            elif _is_array(leaf):
                self.traced_idx.append(i)
                self.wrt.append(False)

    def traced_values(self) -> list:
        return [self.leaves[i] for i in self.traced_idx]

    def flat_fun(self, *traced):
        full = list(self.leaves)
        for i, v in zip(self.traced_idx, traced):
            full[i] = v
        args, kwargs = tree_util.tree_unflatten(self.tree, full)
        return self.fun(*args, **kwargs)


def _trace_call(call: _Call) -> tuple[Graph, Any]:
    key = signature_key(call.fun, call.tree, call.leaves, call.traced_idx)
    with gc_paused():
        traced = trace_cache.get_or_trace(
            key, lambda: _trace.trace_flat(call.flat_fun, call.traced_values()), lambda t: t.graph.consts
        )
    return traced.graph, traced.out_tree


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


# ------------------------------------------------------------------- vjp core


def _vjp(fun, args, kwargs, argnums, has_aux, allow_int):
    """(primal output pytree, aux, pullback) with pullback: output cotangent pytree -> grads per argnum."""
    call = _Call(fun, args, kwargs, argnums, allow_int)
    graph, out_tree = _trace_call(call)
    # hooks: None unless funcgrad.debug_nans() is on (then NaN/Inf cotangents stop the sweep)
    with gc_paused():
        outs, backward = vjp_graph(graph, call.traced_values(), call.wrt, hooks=backward_hooks())
    out = tree_util.tree_unflatten(out_tree, outs)
    aux = None
    if has_aux:
        if not (isinstance(out, (tuple, list)) and len(out) == 2):
            raise InputError(
                f"has_aux=True requires {_fun_name(fun)} to return a pair (output, aux); it returned "
                f"{tree_util.tree_structure(out)}.\n  fix: return (loss, aux), or drop has_aux."
            )
        out, aux = out
    out_leaves, main_tree = tree_util.tree_flatten(out)
    n_main = len(out_leaves)
    slot_of_traced = {leaf_i: k for k, leaf_i in enumerate(call.traced_idx)}

    def pullback(ct_tree):
        ct_leaves = _check_cotangent(ct_tree, main_tree, out_leaves)
        with gc_paused():
            in_cts = backward(list(ct_leaves) + [None] * (len(outs) - n_main))
        grads = []
        for leaf_i in call.diff_leaf_idx:
            leaf = call.leaves[leaf_i]
            ct = in_cts[slot_of_traced[leaf_i]]
            grads.append(_zero_grad(leaf) if ct is None else ct)
        return _regroup(grads, call)

    return out, aux, pullback


def _zero_grad(leaf):
    dtype = _leaf_dtype(leaf)
    shape = np.shape(leaf)
    if not jnp.issubdtype(dtype, jnp.inexact):
        return np.zeros(shape, jax.dtypes.float0)
    return jnp.zeros(shape, dtype)


def _regroup(grads: list, call: _Call):
    """Flat gradient leaves -> one pytree per differentiated argument, in ``argnums`` order."""
    args, _ = tree_util.tree_unflatten(call.tree, call.leaves)
    per_arg = []
    for n in call.argnums:
        leaves = [g for g, a in zip(grads, call.diff_leaf_argnum) if a == n]
        per_arg.append(tree_util.tree_unflatten(tree_util.tree_structure(args[n]), leaves))
    return per_arg


def _check_cotangent(ct_tree, main_tree, out_leaves) -> list:
    """The cotangent's leaves, after checking it matches the output in structure, shape and kind of dtype."""
    ct_leaves, ct_struct = tree_util.tree_flatten(ct_tree)
    if ct_struct != main_tree:
        raise InputError(
            f"the cotangent's structure {ct_struct} does not match the output's {main_tree}.\n"
            "  fix: pass a cotangent pytree shaped exactly like the function's output."
        )
    paths = [tree_util.keystr(p) for p, _ in tree_util.tree_flatten_with_path(ct_tree)[0]]
    for i, (ct, out) in enumerate(zip(ct_leaves, out_leaves)):
        where = f"cotangent leaf {i}" + (f" (ct{paths[i]})" if paths[i] else "")
        if np.shape(ct) != np.shape(out):
            raise InputError(
                f"{where} has shape {np.shape(ct)} but the output leaf has shape {np.shape(out)}.\n"
                "  fix: the cotangent must have the output's shape (e.g. jnp.ones_like(out))."
            )
        ct_dtype, out_dtype = _leaf_dtype(ct), _leaf_dtype(out)
        # another floating dtype is cast to the output's by the sweep (jax.vjp refuses it under x64:
        # being lenient keeps cotangents built from jax.vjp's outputs working where JAX's eager and
        # traced output dtypes differ); integer and boolean cotangents are errors
        if jnp.issubdtype(out_dtype, jnp.inexact) and not jnp.issubdtype(ct_dtype, jnp.inexact):
            raise InputError(
                f"{where} has dtype {ct_dtype} but the output leaf has dtype {out_dtype}.\n"
                f"  fix: the cotangent must be a floating-point array of the output's dtype (e.g. ct.astype({out_dtype}))."
            )
    return ct_leaves


def _scalar_seed(out, fun):
    leaves = tree_util.tree_leaves(out)
    if len(leaves) != 1 or np.shape(leaves[0]) != ():
        shapes = ", ".join(f"{_leaf_dtype(x)}{list(np.shape(x))}" for x in leaves) or "nothing"
        raise InputError(
            f"grad requires {_fun_name(fun)} to return a scalar, but it returned {shapes}.\n"
            "  fix: reduce it with .sum() or .mean(); use funcgrad.jacrev for the full Jacobian; "
            "or return (loss, extras) and pass has_aux=True."
        )
    dtype = _leaf_dtype(leaves[0])
    if not jnp.issubdtype(dtype, jnp.floating):
        fix = (
            "reduce it to a real loss (jnp.real(z), jnp.abs(z) ** 2), or use funcgrad.vjp with a "
            "complex cotangent (JAX's convention)"
            if jnp.issubdtype(dtype, jnp.complexfloating)
            else "compute the loss in a floating-point dtype (e.g. x.astype(jnp.float32))"
        )
        raise InputError(
            f"grad requires a real floating-point output, but {_fun_name(fun)} returned dtype {dtype}.\n  fix: {fix}."
        )
    return tree_util.tree_unflatten(tree_util.tree_structure(out), [jnp.ones((), dtype)])


# ---------------------------------------------------------------------- public


def trace(fun: Callable) -> Callable[..., Graph]:
    """Return a function that traces ``fun`` on example arguments into a ``Graph``.

    Example::

        print(funcgrad.trace(loss)(params, x, y))
    """

    @functools.wraps(fun)
    def traced(*args, **kwargs):
        call = _Call(fun, args, kwargs, argnums=(), allow_int=True)
        return _trace_call(call)[0]

    return traced


def value_and_grad(
    fun: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False, allow_int: bool = False
) -> Callable:
    """Like ``jax.value_and_grad``: returns ``(value, grad)``, or ``((value, aux), grad)`` with ``has_aux``.

    Args:
      fun: a function returning a scalar (or ``(scalar, aux)`` with ``has_aux``).
      argnums: which positional argument(s) to differentiate, an int or a tuple of ints.
      has_aux: ``fun`` returns a pair whose second element is returned unchanged.
      allow_int: allow integer/boolean leaves; their gradient is a ``float0`` zero.

    Returns:
      A function with ``fun``'s signature.
    """

    @functools.wraps(fun)
    def value_and_grad_fun(*args, **kwargs):
        nums = _argnums_tuple(argnums, len(args), fun)
        out, aux, pullback = _vjp(fun, args, kwargs, nums, has_aux, allow_int)
        grads = pullback(_scalar_seed(out, fun))
        g = grads[0] if isinstance(argnums, int) else tuple(grads)
        return ((out, aux), g) if has_aux else (out, g)

    return value_and_grad_fun


def grad(fun: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False, allow_int: bool = False) -> Callable:
    """Like ``jax.grad``: the gradient of a scalar function, same pytree as the differentiated argument(s).

    Args and behaviour are those of ``value_and_grad``; with ``has_aux`` it returns ``(grad, aux)``.
    """
    vg = value_and_grad(fun, argnums, has_aux, allow_int)

    @functools.wraps(fun)
    def grad_fun(*args, **kwargs):
        (value, g) = vg(*args, **kwargs)
        return (g, value[1]) if has_aux else g

    return grad_fun


def vjp(fun: Callable, *primals, has_aux: bool = False):
    """Like ``jax.vjp``: returns ``(out, vjp_fn)`` or ``(out, vjp_fn, aux)``.

    ``vjp_fn(ct)`` takes a cotangent shaped like ``out`` and returns a tuple with
    one cotangent per primal (``float0`` zeros for integer primals).
    """
    nums = tuple(range(len(primals)))
    out, aux, pullback = _vjp(fun, primals, {}, nums, has_aux, allow_int=True)

    def vjp_fn(ct):
        return tuple(pullback(ct))

    return (out, vjp_fn, aux) if has_aux else (out, vjp_fn)


def jacrev(fun: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False, allow_int: bool = False) -> Callable:
    """Like ``jax.jacrev``: the Jacobian by reverse mode, one backward pass per output entry (vmapped).

    The result is nested output-structure outside, argument-structure inside;
    each leaf has shape ``out.shape + arg.shape``.
    """

    @functools.wraps(fun)
    def jac_fun(*args, **kwargs):
        nums = _argnums_tuple(argnums, len(args), fun)
        out, aux, pullback = _vjp(fun, args, kwargs, nums, has_aux, allow_int)
        out_leaves, out_tree = tree_util.tree_flatten(out)
        sizes = [int(np.size(y)) for y in out_leaves]
        total = sum(sizes)
        basis, start = [], 0
        for y, n in zip(out_leaves, sizes):
            eye = jnp.eye(total, dtype=_leaf_dtype(y))[:, start : start + n]
            basis.append(jnp.reshape(eye, (total, *np.shape(y))))
            start += n
        cts = jax.vmap(pullback)(tree_util.tree_unflatten(out_tree, basis))
        per_out, start = [], 0
        for y, n in zip(out_leaves, sizes):
            s = slice(start, start + n)
            part = [
                tree_util.tree_map(lambda g, s=s, y=y: jnp.reshape(g[s], (*np.shape(y), *np.shape(g)[1:])), arg_ct)
                for arg_ct in cts
            ]
            per_out.append(part[0] if isinstance(argnums, int) else tuple(part))
            start += n
        jac = tree_util.tree_unflatten(out_tree, per_out)
        return (jac, aux) if has_aux else jac

    return jac_fun


jacobian = jacrev


def hessian(fun: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False) -> Callable:
    """Like ``jax.hessian``: the matrix of second derivatives, computed reverse-over-reverse."""
    if has_aux:
        inner = jacrev(fun, argnums, has_aux=True)

        def hess_aux(*args, **kwargs):
            return jacrev(lambda *a, **k: inner(*a, **k), argnums, has_aux=True)(*args, **kwargs)

        return hess_aux
    return jacrev(jacrev(fun, argnums), argnums)
