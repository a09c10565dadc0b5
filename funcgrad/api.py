"""The public differentiation API, with JAX's signatures and semantics.

``grad``, ``value_and_grad``, ``vjp``, ``jacrev``/``jacobian`` and ``hessian``
trace the function into a ``funcgrad.ir.Graph`` (abstractly, like ``jax.jit``)
and run funcgrad's reverse sweep (``funcgrad.core.sweep``) over it. Pytrees go
in and come out as in JAX. Which arguments are traced is decided by
``funcgrad.core.call.Call``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from funcgrad import rules as _rules  # noqa: F401  (importing the rule families fills the registry)
from funcgrad.core import hooks
from funcgrad.core.call import Call, argnums_tuple, fun_name, gc_paused, leaf_dtype, scalar_seed, trace_call
from funcgrad.core.ir import Graph
from funcgrad.core.sweep import vjp_graph
from funcgrad.errors import InputError

tree_util = jax.tree_util


# ------------------------------------------------------------------- vjp core


def _vjp(fun, args, kwargs, argnums, has_aux, allow_int):
    """(primal output pytree, aux, pullback) with pullback: output cotangent pytree -> grads per argnum."""
    call = Call(fun, args, kwargs, argnums, allow_int)
    graph, out_tree = trace_call(call)
    # hooks: None unless a tool installed some (funcgrad.debug_nans: NaN/Inf cotangents stop the sweep)
    with gc_paused():
        outs, backward = vjp_graph(graph, call.traced_values(), call.wrt, hooks=hooks.current())
    out = tree_util.tree_unflatten(out_tree, outs)
    aux = None
    if has_aux:
        if not (isinstance(out, (tuple, list)) and len(out) == 2):
            raise InputError(
                f"has_aux=True requires {fun_name(fun)} to return a pair (output, aux); it returned "
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
    dtype = leaf_dtype(leaf)
    shape = np.shape(leaf)
    if not jnp.issubdtype(dtype, jnp.inexact):
        return np.zeros(shape, jax.dtypes.float0)
    return jnp.zeros(shape, dtype)


def _regroup(grads: list, call: Call):
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
        ct_dtype, out_dtype = leaf_dtype(ct), leaf_dtype(out)
        # another floating dtype is cast to the output's by the sweep (jax.vjp refuses it under x64:
        # being lenient keeps cotangents built from jax.vjp's outputs working where JAX's eager and
        # traced output dtypes differ); integer and boolean cotangents are errors
        if jnp.issubdtype(out_dtype, jnp.inexact) and not jnp.issubdtype(ct_dtype, jnp.inexact):
            raise InputError(
                f"{where} has dtype {ct_dtype} but the output leaf has dtype {out_dtype}.\n"
                f"  fix: the cotangent must be a floating-point array of the output's dtype (e.g. ct.astype({out_dtype}))."
            )
    return ct_leaves


# ---------------------------------------------------------------------- public


def trace(fun: Callable) -> Callable[..., Graph]:
    """Return a function that traces ``fun`` on example arguments into a ``Graph``.

    Example::

        print(funcgrad.trace(loss)(params, x, y))
    """

    @functools.wraps(fun)
    def traced(*args, **kwargs):
        call = Call(fun, args, kwargs, argnums=(), allow_int=True)
        return trace_call(call)[0]

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
        nums = argnums_tuple(argnums, len(args), fun)
        out, aux, pullback = _vjp(fun, args, kwargs, nums, has_aux, allow_int)
        grads = pullback(scalar_seed(out, fun))
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
        nums = argnums_tuple(argnums, len(args), fun)
        out, aux, pullback = _vjp(fun, args, kwargs, nums, has_aux, allow_int)
        out_leaves, out_tree = tree_util.tree_flatten(out)
        sizes = [int(np.size(y)) for y in out_leaves]
        total = sum(sizes)
        basis, start = [], 0
        for y, n in zip(out_leaves, sizes):
            eye = jnp.eye(total, dtype=leaf_dtype(y))[:, start : start + n]
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
