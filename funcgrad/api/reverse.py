"""Reverse mode, with JAX's signatures and semantics.

``grad``, ``value_and_grad``, ``vjp`` and ``jacrev``/``jacobian`` take exactly the
parameters of the installed JAX's functions (``tests/test_api_parity.py`` compares them), trace the
function into a ``funcgrad.Graph`` (abstractly, like ``jax.jit``) and run funcgrad's reverse sweep
(``funcgrad.core.sweep``) over it. Which arguments are traced is decided by
``funcgrad.core.call.Call``. What comes back is what JAX gives back:

* pytrees in, pytrees out; output leaves that do not depend on the inputs (a string or an object in
  ``aux``, a constant ``3.0``) come back as the function returned them;
* each gradient has its primal's dtype and weak type (``grad(f)(2.0)`` is a weakly typed float32,
  as in JAX), ``float0`` zeros for integer leaves under ``allow_int``;
* ``vjp``'s ``vjp_fn`` is a pytree (a ``jax.tree_util.Partial`` whose leaves are the forward values
  the backward pass reads), so it can be passed to a ``jax.jit`` function and called there;
* ``holomorphic=True`` differentiates complex functions with JAX's convention (the VJP with
  cotangent ``1 + 0j``); the dtype checks raise ``TypeError`` (``funcgrad.InputError``) where JAX's do.
"""

from __future__ import annotations

import dataclasses
import functools
import operator
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from funcgrad import rules as _rules  # noqa: F401  (importing the rule families fills the registry)
from funcgrad.api import hot
from funcgrad.core import hooks, where_traps
from funcgrad.core import jax_compat as jc
from funcgrad.core.accumulation import zero_cotangent
from funcgrad.core.backward_reads import ReadValues, read_by_backward
from funcgrad.core.call import (
    Call,
    arg_names,
    argnums_tuple,
    fun_name,
    gc_paused,
    is_array,
    is_static_leaf,
    leaf_dtype,
    trace_call,
    trace_call_values,
)
from funcgrad.core.ir import Graph, Literal, Type, Var
from funcgrad.core.sweep import Backward, vjp_graph
from funcgrad.errors import CotangentError, InputError

tree_util = jax.tree_util

_PYTHON_SCALARS = (bool, int, float, complex)


# ---------------------------------------------------------------- the pullback


@dataclasses.dataclass(frozen=True)
class _VJP:
    """One forward pass: the output (main part and aux), and its pullback with the residuals it reads."""

    out: Any  # the main output pytree, as the function returned it
    aux: Any
    main_tree: Any  # its structure
    main_values: list  # its leaves
    main_paths: list  # their key paths (for messages)
    pullback: _Pullback
    residuals: tuple

    def __call__(self, ct) -> tuple:
        return self.pullback.backward(self.residuals, ct)


class _Pullback:
    """The static half of a ``vjp`` function: ``pullback(residuals, ct)`` -> one cotangent per argnum.

    Everything here is fixed by the trace (the graph, which equations are active, the output and
    argument structures); the forward values the rules read are the ``residuals`` argument, so that
    ``jax.tree_util.Partial(pullback, residuals)`` is a pytree whose leaves are arrays. Two pullbacks
    of the same cached graph and structures compare equal, so ``jax.jit`` does not retrace a function
    that takes a new ``vjp_fn`` of the same program.
    """

    def __init__(
        self,
        graph,
        act,
        sweep_hooks,
        res_vars,
        all_kept,
        saved_ids,
        main_tree,
        slots,
        out_avals,
        in_specs,
        leaf_argnums,
        arg_trees,
    ):
        self.graph, self.act, self.hooks = graph, act, sweep_hooks
        self.res_vars = res_vars  # the Vars whose values are the residuals, in program order
        self.all_kept = all_kept  # every value of the active equations is among them (else only those read)
        self.saved_ids = saved_ids  # the equations (by id) whose rule's forward saved the rest
        self.main_tree = main_tree
        self.slots = slots  # per main output leaf: its graph output, or None for a leaf that depends on no input
        self.out_avals = out_avals  # per main output leaf: (shape, dtype)
        self.in_specs = in_specs  # per differentiated leaf: (graph input, its Type, its explicit sharding or None)
        self.leaf_argnums = leaf_argnums  # per differentiated leaf: its argnum
        self.arg_trees = arg_trees  # per argnum (in order): (argnum, structure)
        key = (id(graph), id(act), id(sweep_hooks), saved_ids, main_tree, slots, out_avals, in_specs, leaf_argnums)
        key += (len(res_vars), all_kept)
        key += (arg_trees,)
        try:
            hash(key)
        except TypeError:  # a custom pytree node with unhashable data: compared by identity
            key = None
        self._key = key

    def __eq__(self, other):
        if self is other:
            return True
        return isinstance(other, _Pullback) and self._key is not None and self._key == other._key

    def __hash__(self):
        return id(self) if self._key is None else hash(self._key)

    def __repr__(self) -> str:
        return f"funcgrad pullback of {len(self.graph.eqns)} equations, {len(self.res_vars)} residuals"

    def __call__(self, residuals, ct, *extra) -> tuple:
        if extra:
            return self.backward(residuals, ct, *extra)  # the error, with its message
        return hot.dispatch(("pullback",), self, (residuals, ct), {}, self.backward, identity=self)

    def backward(self, residuals, ct, *extra) -> tuple:
        """The backward sweep itself, op by op."""
        if extra:
            raise InputError(
                f"the function returned by funcgrad.vjp was called with {1 + len(extra)} arguments, but it takes "
                "exactly one: the cotangent of the function's output (even if that output is a tuple or another "
                "container).\n  fix: pass the cotangents as one pytree shaped like the output, e.g. vjp_fn((ct_a, ct_b))."
            )
        ct_leaves = _check_cotangent(ct, self.main_tree, self.out_avals)
        graph_cts = [None] * len(self.graph.outputs)
        for slot, c in zip(self.slots, ct_leaves):
            if slot is not None:
                graph_cts[slot] = c
        values, saved = residuals
        # a value no rule reads was not kept: a NaN stands in for it (ReadValues), were it ever read
        env = (dict if self.all_kept else ReadValues)(zip(self.res_vars, values, strict=True))
        backward = Backward(self.graph, env, self.act, self.hooks, dict(zip(self.saved_ids, saved, strict=True)))
        with gc_paused():
            in_cts = backward(graph_cts)
        grads = [_as_cotangent_of(in_cts[slot], t, sharding) for slot, t, sharding in self.in_specs]
        per_arg = []
        for n, tree in self.arg_trees:
            per_arg.append(tree_util.tree_unflatten(tree, [g for g, a in zip(grads, self.leaf_argnums) if a == n]))
        return tuple(per_arg)


def _vjp(fun, args, kwargs, argnums, has_aux, allow_int, holomorphic=False, name="grad") -> _VJP:
    """Trace and run ``fun`` forward; the output, the aux and the pullback to the ``argnums`` arguments."""
    if holomorphic:
        _check_holomorphic_inputs(name, fun, args, argnums)
    call = Call(fun, args, kwargs, argnums, allow_int, static_outputs=True)
    traced = trace_call_values(call)
    graph, out_tree = traced.graph, traced.out_tree
    if name != "jvp":  # forward mode's transposed pullback is funcgrad's own program, not the user's
        # the opt-in NaN-trap lint (FUNCGRAD_WHERE_LINT=1), once per graph; a flag test when it is off
        where_traps.note_differentiated(graph, call.wrt, fun_name(fun))
    given = call.traced_values()
    values = [jnp.asarray(x) if type(x) in _PYTHON_SCALARS else x for x in given]  # rules get arrays
    computed = None  # a concrete trace computed every value already: the function runs once
    if traced.values is not None:
        computed = {**traced.values, **dict(zip(graph.inputs, values))}
    # hooks: None unless a tool installed some (funcgrad.debug_nans: NaN/Inf cotangents stop the sweep)
    with gc_paused():
        outs, backward = vjp_graph(graph, values, call.wrt, hooks=hooks.current(), values=computed)
    # an input passed straight through comes back as the caller gave it (a Python scalar stays one);
    # a constant the trace folded into a literal (jnp.float32(3.0)) comes back as the array JAX gives
    passed = {id(v): x for v, x, y in zip(graph.inputs, given, values) if x is not y}
    outs = [jnp.asarray(o) if isinstance(a, Literal) else passed.get(id(a), o) for a, o in zip(graph.outputs, outs)]

    slots_tree = tree_util.tree_unflatten(out_tree, list(range(len(outs))))  # graph outputs and StaticLeaf boxes
    if has_aux:
        if not (isinstance(slots_tree, (tuple, list)) and len(slots_tree) == 2):
            shown = tree_util.tree_structure(slots_tree, is_leaf=is_static_leaf)
            raise InputError(
                f"has_aux=True requires {fun_name(fun)} to return a pair (output, aux), as JAX's: it returned "
                f"{type(slots_tree).__name__} {shown}.\n  fix: return (loss, aux), or drop has_aux."
            )
        main, aux_slots = slots_tree
        aux = tree_util.tree_map(lambda s: s.value if is_static_leaf(s) else outs[s], aux_slots, is_leaf=is_static_leaf)
    else:
        main, aux = slots_tree, None
    with_paths, main_tree = tree_util.tree_flatten_with_path(main, is_leaf=is_static_leaf)
    slots, main_values, main_paths, out_avals = [], [], [], []
    for path, s in with_paths:
        where = tree_util.keystr(path)
        if is_static_leaf(s):
            _check_static_output(s.value, where, fun)
            slots.append(None)
            main_values.append(s.value)
            out_avals.append((tuple(np.shape(s.value)), leaf_dtype(s.value)))
        else:
            slots.append(s)
            main_values.append(outs[s])
            t = graph.out_types[s]
            out_avals.append((t.shape, t.dtype))
        main_paths.append(where)

    act = backward.activity
    readable = {id(a) for e in act.eqns for a in (*e.inputs, *e.outputs) if isinstance(a, Var)}
    program = (*graph.constvars, *graph.inputs, *(v for e in graph.eqns for v in e.outputs))
    res_vars = tuple(v for v in program if id(v) in readable)
    read = None
    # held until the pullback runs: only what the rules read, decided once per cached graph (a graph
    # traced concretely, or holding an enclosing transformation's tracers, is traced anew for each call)
    cached = traced.values is None and not any(isinstance(c, jax.core.Tracer) for c in graph.consts)
    if name == "vjp" and cached:
        ct_slots = [s for s in slots if s is not None]
        wrt_slots = [slot_of for slot_of, w in enumerate(call.wrt) if w]
        read = read_by_backward(graph, act, ct_slots, wrt_slots, backward.saved)
        if read is not None:
            res_vars = tuple(v for v in res_vars if id(v) in read)
    # and what rules with their own forward saved (a custom_vjp's residuals), per equation
    saved_ids = tuple(k for k in (id(e) for e in act.eqns) if k in backward.saved)
    residuals = (tuple(backward.env[v] for v in res_vars), tuple(backward.saved[k] for k in saved_ids))

    slot_of_leaf = {leaf_i: k for k, leaf_i in enumerate(call.traced_idx)}
    # a leaf no gradient reaches gets zeros with its sharding type under explicit mesh axes, as in JAX
    in_specs = tuple(
        (slot_of_leaf[i], graph.inputs[slot_of_leaf[i]].type, jc.explicit_sharding(values[slot_of_leaf[i]]))
        for i in call.diff_leaf_idx
    )
    arg_trees = tuple((n, tree_util.tree_structure(args[n])) for n in argnums)
    pullback = _Pullback(
        graph,
        act,
        backward.hooks,
        res_vars,
        read is None,
        saved_ids,
        main_tree,
        tuple(slots),
        tuple(out_avals),
        in_specs,
        tuple(call.diff_leaf_argnum),
        arg_trees,
    )
    out = tree_util.tree_unflatten(main_tree, main_values)
    return _VJP(out, aux, main_tree, main_values, main_paths, pullback, residuals)


def _as_cotangent_of(ct, t: Type, sharding=None):
    """``ct`` (``None``: no gradient flowed) as the cotangent of a primal of type ``t``: its dtype and weak
    type (and, for zeros, the primal's ``sharding`` type under explicit mesh axes)."""
    if not t.is_float:
        return np.zeros(t.shape, jax.dtypes.float0)
    if ct is None:
        ct = jnp.zeros(t.shape, t.dtype) if sharding is None else zero_cotangent(t.shape, t.dtype, sharding)
    elif isinstance(ct, (np.ndarray, np.generic, *_PYTHON_SCALARS)):
        ct = jnp.asarray(ct)  # a rule computed it from constants alone: returned as the jax Array JAX returns
    if _dtype_of(ct) != t.dtype or _is_weak(ct) != t.weak_type:
        # lax.convert_element_type always gives a strongly typed result; the primitive takes the flag
        ct = lax.convert_element_type_p.bind(
            ct, new_dtype=np.dtype(t.dtype), weak_type=bool(t.weak_type), sharding=None
        )
    return ct


def _dtype_of(x):
    dtype = getattr(x, "dtype", None)
    return jnp.result_type(x) if dtype is None else dtype


def _is_weak(x) -> bool:
    aval = getattr(x, "aval", None)
    return bool(getattr(aval, "weak_type", getattr(x, "weak_type", False)))


def _check_cotangent(ct_tree, main_tree, out_avals) -> list:
    """The cotangent's leaves, after checking it matches the output in structure, shape and kind of dtype."""
    ct_leaves, ct_struct = tree_util.tree_flatten(ct_tree)
    if ct_struct != main_tree:
        raise CotangentError(
            f"the cotangent's structure {ct_struct} does not match the output's {main_tree}.\n"
            "  fix: pass a cotangent pytree shaped exactly like the function's output."
        )
    paths = [tree_util.keystr(p) for p, _ in tree_util.tree_flatten_with_path(ct_tree)[0]]
    for i, (ct, (shape, out_dtype)) in enumerate(zip(ct_leaves, out_avals)):
        where = f"cotangent leaf {i}" + (f" (ct{paths[i]})" if paths[i] else "")
        if np.shape(ct) != shape:
            raise CotangentError(
                f"{where} has shape {np.shape(ct)} but the output leaf has shape {shape}.\n"
                "  fix: the cotangent must have the output's shape (e.g. jnp.ones_like(out))."
            )
        ct_dtype = leaf_dtype(ct)
        # another floating dtype is cast to the output's by the sweep (jax.vjp refuses it under x64:
        # being lenient keeps cotangents built from jax.vjp's outputs working where JAX's eager and
        # traced output dtypes differ); integer and boolean cotangents are errors
        if jnp.issubdtype(out_dtype, jnp.inexact) and not (
            ct_dtype is not None and jnp.issubdtype(ct_dtype, jnp.inexact)
        ):
            raise CotangentError(
                f"{where} has dtype {ct_dtype} but the output leaf has dtype {out_dtype}.\n"
                f"  fix: the cotangent must be a floating-point array of the output's dtype (e.g. ct.astype({out_dtype}))."
            )
    return ct_leaves


# ---------------------------------------------------------------- checks (JAX's, with funcgrad's messages)


def _check_callable(fun, name: str) -> None:
    if not callable(fun):
        raise InputError(
            f"Expected a callable value, got {fun!r}: funcgrad.{name} differentiates a function.\n"
            f"  fix: pass the function itself, funcgrad.{name}(f), not its value f(x)."
        )


def _check_argnums(argnums, name: str) -> None:
    """``argnums`` is an int or a sequence of ints (checked when the transformation is made, as in JAX)."""
    try:
        nums = [argnums] if isinstance(argnums, int) else list(argnums)
        for n in nums:
            operator.index(n)
    except TypeError:
        raise InputError(
            f"argnums={argnums!r} given to funcgrad.{name} is neither an int nor a sequence of ints.\n"
            "  fix: pass the position of the argument to differentiate (argnums=0) or a tuple of positions."
        ) from None


def _check_reduce_axes(reduce_axes, name: str) -> None:
    if reduce_axes:
        raise NotImplementedError(
            f"reduce_axes argument to {name} is deprecated (JAX no longer supports it, and funcgrad does neither).\n"
            f"  fix: drop reduce_axes={reduce_axes!r}; to sum a gradient over named axes, apply jax.lax.psum to it."
        )


def _check_holomorphic_inputs(name: str, fun, args, argnums) -> None:
    names = arg_names(fun, len(args))
    for n in argnums:
        for path, leaf in tree_util.tree_flatten_with_path(args[n])[0]:
            if not (is_array(leaf) or isinstance(leaf, _PYTHON_SCALARS)):
                continue  # not a JAX value: Call names it
            dtype = leaf_dtype(leaf)
            if dtype is not None and not jnp.issubdtype(dtype, jnp.complexfloating):
                raise InputError(
                    f"{name} with holomorphic=True requires inputs with complex dtype, but got {np.dtype(dtype).name} "
                    f"for {names[n]}{tree_util.keystr(path)}.\n  fix: pass complex inputs (e.g. x.astype(jnp.complex64)), "
                    "or drop holomorphic=True to differentiate a function of real inputs."
                )


def _check_static_output(value, where: str, fun) -> None:
    """An output leaf that depends on no input must still be a JAX value (a number or an array)."""
    if (isinstance(value, _PYTHON_SCALARS) or is_array(value)) and leaf_dtype(value) is not None:
        return
    raise InputError(
        f"output{where} of {fun_name(fun)} is a {type(value).__name__}, which is not a valid JAX type: only arrays "
        "and numbers can be differentiated.\n  fix: return it as aux, (out, aux) with has_aux=True (aux comes "
        "back unchanged), or leave it out of the output."
    )


def _check_output_dtype(name: str, holomorphic: bool, dtype, fun, where: str = "") -> None:
    """JAX's dtype checks of a differentiated output (``_check_output_dtype_revderiv``), with a fix."""
    culprit = f"{fun_name(fun)}'s output{where}"
    if jax.dtypes.issubdtype(dtype, jax.dtypes.extended):
        raise InputError(
            f"{name} with output element type {dtype} ({culprit}) is not supported: it has no cotangent space.\n"
            "  fix: return it as aux (has_aux=True), or differentiate a floating-point function of it."
        )
    if holomorphic:
        if not jnp.issubdtype(dtype, jnp.complexfloating):
            raise InputError(
                f"{name} with holomorphic=True requires outputs with complex dtype, but got {np.dtype(dtype).name} "
                f"({culprit}).\n  fix: return a complex value (e.g. y.astype(jnp.complex64)), or drop holomorphic=True."
            )
    elif jnp.issubdtype(dtype, jnp.complexfloating):
        raise InputError(
            f"{name} requires real-valued outputs (output dtype that is a sub-dtype of np.floating), but got "
            f"{np.dtype(dtype).name} ({culprit}).\n  fix: pass holomorphic=True if the function is holomorphic; "
            "otherwise reduce it to a real loss (jnp.real(z), jnp.abs(z) ** 2), or use funcgrad.vjp with a "
            "complex cotangent (JAX's convention)."
        )
    elif not jnp.issubdtype(dtype, jnp.floating):
        raise InputError(
            f"{name} requires real-valued outputs (output dtype that is a sub-dtype of np.floating), but got "
            f"{np.dtype(dtype).name} ({culprit}).\n  fix: compute the loss in a floating-point dtype "
            "(e.g. x.astype(jnp.float32)); for integer outputs use funcgrad.vjp."
        )


def _grad_seed(res: _VJP, holomorphic: bool, fun):
    """The cotangent 1 of a scalar output (``1 + 0j`` if holomorphic), after JAX's checks of the output."""
    leaves = res.main_values
    if not (tree_util.treedef_is_leaf(res.main_tree) and len(leaves) == 1 and np.shape(leaves[0]) == ()):
        shapes = ", ".join(f"{leaf_dtype(x)}{list(np.shape(x))}" for x in leaves) or "nothing"
        held = "" if tree_util.treedef_is_leaf(res.main_tree) else f" in {res.main_tree}"
        raise InputError(
            f"Gradient only defined for scalar-output functions: grad requires {fun_name(fun)} to return a scalar, "
            f"but it returned {shapes}{held}.\n  fix: reduce it with .sum() or .mean(); use funcgrad.jacrev for the "
            "full Jacobian; or return (loss, extras) and pass has_aux=True."
        )
    dtype = leaf_dtype(leaves[0])
    _check_output_dtype("grad", holomorphic, dtype, fun)
    return jnp.ones((), dtype)


# ---------------------------------------------------------------------- public


def trace(fun: Callable) -> Callable[..., Graph]:
    """Return a function that traces ``fun`` on example arguments into a ``Graph``.

    Example::

        print(funcgrad.trace(loss)(params, x, y))

    Args:
      fun: the function to trace.

    Returns:
      A function with ``fun``'s signature that returns the ``Graph`` of the call.
    """

    @functools.wraps(fun)
    def traced(*args, **kwargs):
        call = Call(fun, args, kwargs, argnums=(), allow_int=True)
        return trace_call(call)[0]

    return traced


def value_and_grad(
    fun: Callable,
    argnums: int | Sequence[int] = 0,
    has_aux: bool = False,
    holomorphic: bool = False,
    allow_int: bool = False,
    reduce_axes: Sequence[Any] = (),
) -> Callable[..., tuple[Any, Any]]:
    """Like ``jax.value_and_grad``: returns ``(value, grad)``, or ``((value, aux), grad)`` with ``has_aux``.

    Args:
      fun: a function returning a scalar (or ``(scalar, aux)`` with ``has_aux``).
      argnums: which positional argument(s) to differentiate, an int or a sequence of ints.
      has_aux: ``fun`` returns a pair whose second element is returned unchanged (any Python values).
      holomorphic: ``fun`` is holomorphic; its differentiated inputs and its output must be complex.
      allow_int: allow integer/boolean leaves; their gradient is a ``float0`` zero.
      reduce_axes: deprecated in JAX; anything but ``()`` raises ``NotImplementedError``, as in JAX.

    Returns:
      A function with ``fun``'s signature. The gradient has the structure, dtype and weak type of
      the differentiated argument (a tuple of them if ``argnums`` is a sequence).
    """
    _check_reduce_axes(reduce_axes, "grad")
    _check_callable(fun, "value_and_grad")
    _check_argnums(argnums, "value_and_grad")

    def eager(*args, **kwargs):
        nums = argnums_tuple(argnums, len(args), fun)
        res = _vjp(fun, args, kwargs, nums, has_aux, allow_int, holomorphic, "grad")
        grads = res(_grad_seed(res, holomorphic, fun))
        g = grads[0] if isinstance(argnums, int) else grads
        return ((res.out, res.aux), g) if has_aux else (res.out, g)

    kind = ("value_and_grad", argnums if isinstance(argnums, int) else tuple(argnums), has_aux, holomorphic, allow_int)

    @functools.wraps(fun)
    def value_and_grad_fun(*args, **kwargs):
        # a repeated signature outside any transformation runs as one compiled program (funcgrad.api.hot)
        return hot.dispatch(kind, fun, args, kwargs, eager)

    return value_and_grad_fun


def grad(
    fun: Callable,
    argnums: int | Sequence[int] = 0,
    has_aux: bool = False,
    holomorphic: bool = False,
    allow_int: bool = False,
    reduce_axes: Sequence[Any] = (),
) -> Callable:
    """Like ``jax.grad``: the gradient of a scalar function, same pytree as the differentiated argument(s).

    Args:
      fun: a function returning a scalar (or ``(scalar, aux)`` with ``has_aux``).
      argnums: which positional argument(s) to differentiate, an int or a sequence of ints.
      has_aux: ``fun`` returns a pair whose second element is returned unchanged (any Python values).
      holomorphic: ``fun`` is holomorphic; its differentiated inputs and its output must be complex.
      allow_int: allow integer/boolean leaves; their gradient is a ``float0`` zero.
      reduce_axes: deprecated in JAX; anything but ``()`` raises ``NotImplementedError``, as in JAX.

    Returns:
      A function with ``fun``'s signature returning the gradient, or ``(grad, aux)`` with ``has_aux``.
    """
    _check_reduce_axes(reduce_axes, "grad")
    _check_callable(fun, "grad")
    _check_argnums(argnums, "grad")
    vg = value_and_grad(fun, argnums, has_aux=has_aux, holomorphic=holomorphic, allow_int=allow_int)

    @functools.wraps(fun)
    def grad_fun(*args, **kwargs):
        value, g = vg(*args, **kwargs)
        return (g, value[1]) if has_aux else g

    return grad_fun


def vjp(
    fun: Callable, *primals, has_aux: bool = False, reduce_axes=()
) -> tuple[Any, Callable] | tuple[Any, Callable, Any]:
    """Like ``jax.vjp``: returns ``(out, vjp_fn)`` or ``(out, vjp_fn, aux)``.

    Args:
      fun: the function to differentiate; its output may be any pytree of arrays.
      *primals: the arguments to evaluate ``fun`` at; every one is differentiated.
      has_aux: ``fun`` returns a pair ``(out, aux)``; ``aux`` is returned unchanged.
      reduce_axes: deprecated in JAX; anything but ``()`` raises ``NotImplementedError``, as in JAX.

    Returns:
      ``(out, vjp_fn)`` (``(out, vjp_fn, aux)`` with ``has_aux``). ``vjp_fn(ct)`` takes a cotangent
      shaped like ``out`` and returns a tuple with one cotangent per primal (``float0`` zeros for
      integer primals). ``vjp_fn`` is a ``jax.tree_util.Partial``: a pytree whose leaves are the
      forward values the backward pass reads, so it can be an argument of a ``jax.jit`` function.
    """
    _check_reduce_axes(reduce_axes, "vjp")
    _check_callable(fun, "vjp")
    # the forward pass of a repeated signature runs compiled; so does vjp_fn's (_Pullback.__call__)
    return hot.dispatch(("vjp", has_aux), fun, primals, {}, functools.partial(_eager_vjp, fun, has_aux), forwards=True)


def _eager_vjp(fun, has_aux, *primals):
    nums = tuple(range(len(primals)))
    res = _vjp(fun, primals, {}, nums, has_aux, allow_int=True, name="vjp")
    vjp_fn = tree_util.Partial(res.pullback, res.residuals)
    return (res.out, vjp_fn, res.aux) if has_aux else (res.out, vjp_fn)


def standard_basis(leaves) -> tuple[list[int], list]:
    """``(sizes, basis)``: each leaf's size, and per leaf the ``(total, *leaf.shape)`` slice of the identity
    of order ``total = sum(sizes)`` in its dtype; row ``i`` of all slices together is the ``i``-th unit
    vector of the leaves flattened and concatenated (what ``jacrev`` and ``jacfwd`` vmap over)."""
    sizes = [int(np.size(x)) for x in leaves]
    total = sum(sizes)
    basis, start = [], 0
    for x, n in zip(leaves, sizes):
        eye = jnp.eye(total, dtype=leaf_dtype(x))[:, start : start + n]
        basis.append(jnp.reshape(eye, (total, *np.shape(x))))
        start += n
    return sizes, basis


def jacrev(
    fun: Callable,
    argnums: int | Sequence[int] = 0,
    has_aux: bool = False,
    holomorphic: bool = False,
    allow_int: bool = False,
) -> Callable:
    """Like ``jax.jacrev``: the Jacobian by reverse mode, one backward pass per output entry (vmapped).

    Args:
      fun: the function; its output may be any pytree of arrays.
      argnums: which positional argument(s) to differentiate, an int or a sequence of ints.
      has_aux: ``fun`` returns a pair ``(out, aux)``; ``aux`` is returned unchanged.
      holomorphic: ``fun`` is holomorphic; its differentiated inputs and its outputs must be complex.
      allow_int: allow integer/boolean leaves; their derivative is a ``float0`` zero.

    Returns:
      A function with ``fun``'s signature returning the Jacobian (``(jacobian, aux)`` with ``has_aux``):
      nested output-structure outside, argument-structure inside; each leaf has shape
      ``out.shape + arg.shape``.
    """
    _check_callable(fun, "jacrev")
    _check_argnums(argnums, "jacrev")

    @functools.wraps(fun)
    def jac_fun(*args, **kwargs):
        nums = argnums_tuple(argnums, len(args), fun)
        res = _vjp(fun, args, kwargs, nums, has_aux, allow_int, holomorphic, "jacrev")
        out_leaves = res.main_values
        for y, where in zip(out_leaves, res.main_paths):
            _check_output_dtype("jacrev", holomorphic, leaf_dtype(y), fun, where)
        sizes, basis = standard_basis(out_leaves)
        cts = jax.vmap(res)(tree_util.tree_unflatten(res.main_tree, basis))
        per_out, start = [], 0
        for y, n in zip(out_leaves, sizes):
            s = slice(start, start + n)
            part = [
                tree_util.tree_map(lambda g, s=s, y=y: jnp.reshape(g[s], (*np.shape(y), *np.shape(g)[1:])), arg_ct)
                for arg_ct in cts
            ]
            per_out.append(part[0] if isinstance(argnums, int) else tuple(part))
            start += n
        jac = tree_util.tree_unflatten(res.main_tree, per_out)
        return (jac, res.aux) if has_aux else jac

    return jac_fun


jacobian = jacrev


def _check_real_inputs(name: str, fun, args, argnums) -> None:
    """JAX's ``hessian`` (forward over reverse) refuses complex inputs unless holomorphic; so does funcgrad's."""
    names = arg_names(fun, len(args))
    for n in argnums:
        for path, leaf in tree_util.tree_flatten_with_path(args[n])[0]:
            dtype = leaf_dtype(leaf) if (is_array(leaf) or isinstance(leaf, _PYTHON_SCALARS)) else None
            if dtype is not None and jnp.issubdtype(dtype, jnp.complexfloating):
                raise InputError(
                    f"{name} requires real-valued inputs (input dtype that is a sub-dtype of np.floating), but got "
                    f"{np.dtype(dtype).name} for {names[n]}{tree_util.keystr(path)}.\n  fix: pass holomorphic=True "
                    "if the function is holomorphic; otherwise split z into its real and imaginary parts."
                )
