"""Forward mode from funcgrad's reverse sweep: ``jvp``, ``linearize``, ``jacfwd``, ``linear_transpose``, ``hessian``.

funcgrad has one set of rules, VJP rules. Forward mode comes from them by transposition:

    the pullback of one forward pass,   ct  |->  J^T ct,  is linear in ct;
    its own VJP (at any ct), applied to a tangent t, is the transpose of J^T, applied to t:  J t.

The pullback is a plain ``jax.lax`` program (every rule is written with lax), so funcgrad's reverse
sweep differentiates it like any other function: ``jvp(f, x, t)`` is ``vjp(ct |-> vjp_f(ct), 0)(t)``,
with no JVP rule and no call to JAX's AD. A custom_jvp function's tangent is the user's rule (funcgrad's
VJP of it is the rule transposed, and transposing again gives the rule back); a custom_vjp function
cannot be differentiated forward, as in JAX (``TypeError``). Cost (docs/forward_mode.md): eagerly one
forward pass, one backward pass (the pullback at the zero cotangent, whose values are discarded) and
the backward pass of that; under ``jax.jit`` XLA removes the discarded values, which leaves the forward
pass and the transposed backward pass.

``hessian`` is ``jacfwd(jacrev(f))``, forward over reverse, as JAX's.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from funcgrad.api.linearity import NonLinearError, check_linear
from funcgrad.api.reverse import (
    _PYTHON_SCALARS,
    _check_argnums,
    _check_callable,
    _check_holomorphic_inputs,
    _check_real_inputs,
    _check_reduce_axes,
    _Pullback,
    _vjp,
    jacrev,
    standard_basis,
)
from funcgrad.core.call import argnums_tuple, fun_name, is_array, leaf_dtype
from funcgrad.errors import ForwardModeError, InputError, TangentError

tree_util = jax.tree_util
float0 = jax.dtypes.float0


def _inexact(dtype) -> bool:
    return dtype is not None and dtype != float0 and jnp.issubdtype(dtype, jnp.inexact)


def _push(pullback: _Pullback, residuals, tangents: tuple):
    """``J t``: the tangent of the output of the forward pass whose pullback is ``pullback(residuals, .)``.

    ``tangents`` has one entry per differentiated argument, shaped like it (``float0`` for integer
    ones). The result is shaped like the output, with ``float0`` tangents for integer output leaves.
    """
    out_avals = pullback.out_avals
    inexact = [_inexact(dtype) for _, dtype in out_avals]

    def cotangents_of(float_cts):  # linear in float_cts: ct |-> J^T ct
        it = iter(float_cts)
        leaves = [next(it) if f else np.zeros(shape, float0) for (shape, _), f in zip(out_avals, inexact)]
        return pullback(residuals, tree_util.tree_unflatten(pullback.main_tree, leaves))

    # the cotangent's type is the output's, weak type included, so that J t is typed like JAX's tangent
    types = pullback.graph.out_types
    weak = [s is not None and types[s].weak_type for s in pullback.slots]
    zero_cts = [
        lax.convert_element_type_p.bind(jnp.zeros(shape, dtype), new_dtype=np.dtype(dtype), weak_type=w, sharding=None)
        for (shape, dtype), f, w in zip(out_avals, inexact, weak)
        if f
    ]
    transposed = _vjp(cotangents_of, (zero_cts,), {}, (0,), False, allow_int=True, name="jvp")
    (float_tangents,) = transposed(tuple(tangents))
    it = iter(float_tangents)
    leaves = [next(it) if f else np.zeros(shape, float0) for (shape, _), f in zip(out_avals, inexact)]
    return tree_util.tree_unflatten(pullback.main_tree, leaves)


# primitives whose derivative is a user's VJP only: jax.custom_vjp, and jax.custom_vjp3 (a hijax primitive)
_VJP_ONLY = frozenset({"custom_vjp_call", "call_hi_primitive"})


def _refuse_custom_vjp(pullback: _Pullback, name: str) -> None:
    """JAX cannot differentiate a custom_vjp function forward (its rule is a VJP only); funcgrad neither."""
    for eqn in pullback.act.eqns:
        found = eqn if eqn.primitive in _VJP_ONLY else None
        for sub in eqn.subgraphs():
            found = found or next((e for e, _ in sub.walk() if e.primitive in _VJP_ONLY), None)
        if found is not None:
            what = found.params.get("call")
            called = getattr(what, "name", None) or getattr(found.params.get("vjp"), "name", None) or "a function"
            raise ForwardModeError(
                f"can't apply forward-mode autodiff (jvp) to a custom_vjp function. ({name} reached {called!r} "
                f"at {found.source.where()}.)\n  fix: define the function with jax.custom_jvp (forward and "
                "reverse mode then both work), or differentiate it in reverse mode (funcgrad.grad, vjp, jacrev)."
            )


def _expected_tangent_dtype(primal):
    dtype = leaf_dtype(primal)
    return float0 if dtype is None or not _inexact(dtype) else dtype


def _check_tangents(primals, tangents, name: str) -> None:
    """JAX's checks of ``jvp``'s arguments, with its classes and sentences."""
    if not isinstance(primals, (tuple, list)) or not isinstance(tangents, (tuple, list)):
        raise InputError(
            f"primal and tangent arguments to jax.jvp must be tuples or lists; found {type(primals).__name__} and "
            f"{type(tangents).__name__}.\n  fix: {name}(f, (x,), (t,)): one tuple of primals, one of tangents."
        )
    p_leaves, p_tree = tree_util.tree_flatten(primals)
    t_leaves, t_tree = tree_util.tree_flatten(tangents)
    if p_tree != t_tree:
        raise InputError(
            "primal and tangent arguments to jax.jvp must have the same tree structure; primals have tree "
            f"structure {p_tree} whereas tangents have tree structure {t_tree}.\n  fix: give one tangent per "
            "primal leaf, in a container of the same structure."
        )
    for (path, p), t in zip(tree_util.tree_flatten_with_path(primals)[0], t_leaves):
        where = f"primals{tree_util.keystr(path)}"
        if np.shape(p) != np.shape(t):
            raise TangentError(
                f"jvp called with different primal and tangent shapes;Got primal shape {np.shape(p)} and tangent "
                f"shape as {np.shape(t)} (at {where}).\n  fix: each tangent has its primal's shape."
            )
        expected, got = _expected_tangent_dtype(p), leaf_dtype(t)
        if expected == float0 and got != float0 or expected != float0 and got != expected:
            raise InputError(
                "primal and tangent arguments to jax.jvp do not match; dtypes must be equal, or in case of int/bool "
                f"primal dtype the tangent dtype must be float0. Got primal dtype {leaf_dtype(p)} and so expected "
                f"tangent dtype {np.dtype(expected).name if expected != float0 else 'float0'}, but got tangent "
                f"dtype {got} instead (at {where}).\n  fix: t.astype(x.dtype), or "
                "np.zeros(x.shape, jax.dtypes.float0) for an integer primal."
            )


def jvp(fun: Callable, primals, tangents, has_aux: bool = False) -> tuple[Any, Any] | tuple[Any, Any, Any]:
    """Like ``jax.jvp``: ``(fun(*primals), J t)``, or ``(out, J t, aux)`` with ``has_aux``.

    Args:
      fun: the function; its arguments and output may be pytrees of arrays.
      primals: a tuple or list of the arguments to evaluate ``fun`` at.
      tangents: a tuple or list like ``primals``: one tangent per primal leaf, of its shape and dtype
        (``float0`` for integer and boolean primals).
      has_aux: ``fun`` returns a pair ``(out, aux)``; ``aux`` is returned unchanged.

    Returns:
      ``(out, tangent_out)``: ``tangent_out`` is shaped like ``out`` (``float0`` for integer leaves).
    """
    _check_callable(fun, "jvp")
    _check_tangents(primals, tangents, "jvp")
    primals, tangents = tuple(primals), tuple(tangents)
    res = _vjp(fun, primals, {}, tuple(range(len(primals))), has_aux, allow_int=True, name="jvp")
    _refuse_custom_vjp(res.pullback, "jvp")
    tangent_out = _push(res.pullback, res.residuals, tangents)
    return (res.out, tangent_out, res.aux) if has_aux else (res.out, tangent_out)


class _Linearized:
    """The static half of ``linearize``'s ``f_jvp``: ``f_jvp(residuals, *tangents)`` -> ``J t``."""

    def __init__(self, pullback: _Pullback, primal_avals, primal_tree):
        self.pullback, self.primal_avals, self.primal_tree = pullback, primal_avals, primal_tree

    def __eq__(self, other):
        return isinstance(other, _Linearized) and (self.pullback, self.primal_avals, self.primal_tree) == (
            other.pullback,
            other.primal_avals,
            other.primal_tree,
        )

    def __hash__(self):
        return hash((self.pullback, self.primal_avals, self.primal_tree))

    def __call__(self, residuals, *tangents):
        leaves, tree = tree_util.tree_flatten(tangents)
        if tree != self.primal_tree:
            raise InputError(
                f"linearized function called with tangents of structure {tree}, but the primals had {self.primal_tree}."
                "\n  fix: call f_jvp(*tangents) with one tangent per primal, shaped like it."
            )
        for t, (shape, dtype) in zip(leaves, self.primal_avals):
            if np.shape(t) != shape or leaf_dtype(t) != dtype:
                raise TangentError(
                    "linearized function called on tangent values inconsistent with the original primal values:\n"
                    f"Got tangent {leaf_dtype(t)}{list(np.shape(t))} for primal {dtype}{list(shape)}.\n"
                    "  fix: each tangent has its primal's shape and dtype."
                )
        return _push(self.pullback, residuals, tangents)


def linearize(fun: Callable, *primals, has_aux: bool = False):
    """Like ``jax.linearize``: ``(fun(*primals), f_jvp)``, where ``f_jvp(*tangents)`` is ``J t``.

    ``f_jvp`` is a ``jax.tree_util.Partial`` whose leaves are the forward values (it can be passed to a
    ``jax.jit`` function); each call runs only the transposed backward pass, not ``fun`` again.
    """
    _check_callable(fun, "linearize")
    res = _vjp(fun, primals, {}, tuple(range(len(primals))), has_aux, allow_int=True, name="linearize")
    _refuse_custom_vjp(res.pullback, "linearize")
    avals = tuple((np.shape(p), _expected_tangent_dtype(p)) for p in tree_util.tree_leaves(primals))
    f_jvp = tree_util.Partial(_Linearized(res.pullback, avals, tree_util.tree_structure(primals)), res.residuals)
    return (res.out, f_jvp, res.aux) if has_aux else (res.out, f_jvp)


def _check_jacfwd_inputs(fun, args, argnums, holomorphic: bool) -> None:
    if holomorphic:
        _check_holomorphic_inputs("jacfwd", fun, args, argnums)
        return
    for n in argnums:
        for path, leaf in tree_util.tree_flatten_with_path(args[n])[0]:
            dtype = leaf_dtype(leaf) if (is_array(leaf) or isinstance(leaf, _PYTHON_SCALARS)) else None
            if dtype is not None and not jnp.issubdtype(dtype, jnp.floating):
                raise InputError(
                    "jacfwd requires real-valued inputs (input dtype that is a sub-dtype of np.floating), but got "
                    f"{np.dtype(dtype).name} (argument {n}{tree_util.keystr(path)} of {fun_name(fun)}). For "
                    "holomorphic differentiation, pass holomorphic=True. For differentiation of non-holomorphic "
                    "functions involving complex inputs or integer inputs, use jax.jvp directly.\n  fix: pass "
                    "floating-point inputs, or funcgrad.jvp with float0 tangents for the integer ones."
                )


def jacfwd(
    fun: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False, holomorphic: bool = False
) -> Callable:
    """Like ``jax.jacfwd``: the Jacobian by forward mode, one tangent per input entry (vmapped).

    Args:
      fun: the function; its output may be any pytree of arrays.
      argnums: which positional argument(s) to differentiate, an int or a sequence of ints.
      has_aux: ``fun`` returns a pair ``(out, aux)``; ``aux`` is returned unchanged.
      holomorphic: ``fun`` is holomorphic; its differentiated inputs and its outputs must be complex.

    Returns:
      A function with ``fun``'s signature returning the Jacobian (``(jacobian, aux)`` with ``has_aux``),
      structured as ``jax.jacfwd``'s: output structure outside, argument structure inside, each leaf of
      shape ``out.shape + arg.shape``. The forward pass runs once; the vmapped part is the transposed
      backward pass.
    """
    _check_callable(fun, "jacfwd")
    _check_argnums(argnums, "jacfwd")

    @functools.wraps(fun)
    def jac_fun(*args, **kwargs):
        nums = argnums_tuple(argnums, len(args), fun)
        _check_jacfwd_inputs(fun, args, nums, holomorphic)
        res = _vjp(fun, args, kwargs, nums, has_aux, False, holomorphic, "jacfwd")
        _refuse_custom_vjp(res.pullback, "jacfwd")
        if holomorphic:
            for y, where in zip(res.main_values, res.main_paths):
                if not jnp.issubdtype(leaf_dtype(y), jnp.complexfloating):
                    raise InputError(
                        f"jacfwd with holomorphic=True requires outputs with complex dtype, but got "
                        f"{np.dtype(leaf_dtype(y)).name} ({fun_name(fun)}'s output{where}).\n  fix: return a "
                        "complex value, or drop holomorphic=True."
                    )
        dyn = tuple(args[n] for n in nums)
        in_leaves, in_tree = tree_util.tree_flatten(dyn)
        sizes, basis = standard_basis(in_leaves)
        tangents = tree_util.tree_unflatten(in_tree, basis)
        columns = jax.vmap(lambda t: _push(res.pullback, res.residuals, t))(tangents)  # leaf: (total, *out.shape)

        def per_output(col, y):
            out_shape = np.shape(y)
            if leaf_dtype(col) == float0 or not _inexact(leaf_dtype(y)):
                parts = [np.zeros((*out_shape, *np.shape(x)), float0) for x in in_leaves]
            else:
                parts, start = [], 0
                for x, n in zip(in_leaves, sizes):
                    block = jnp.moveaxis(col[start : start + n], 0, -1)  # (*out.shape, n)
                    parts.append(jnp.reshape(block, (*out_shape, *np.shape(x))))
                    start += n
            per_arg = tree_util.tree_unflatten(in_tree, parts)
            return per_arg[0] if isinstance(argnums, int) else per_arg

        col_leaves = tree_util.tree_leaves(columns)
        jac = tree_util.tree_unflatten(res.main_tree, [per_output(c, y) for c, y in zip(col_leaves, res.main_values)])
        return (jac, res.aux) if has_aux else jac

    return jac_fun


def hessian(
    fun: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False, holomorphic: bool = False
) -> Callable:
    """Like ``jax.hessian``: ``jacfwd(jacrev(fun))``, forward over reverse, as JAX computes it.

    Args:
      fun: the function; its output may be any pytree of arrays.
      argnums: which positional argument(s) to differentiate, an int or a sequence of ints.
      has_aux: ``fun`` returns a pair ``(out, aux)``; ``aux`` is returned unchanged.
      holomorphic: ``fun`` is holomorphic; its differentiated inputs and its outputs must be complex.

    Returns:
      A function with ``fun``'s signature returning the Hessian (``(hessian, aux)`` with ``has_aux``),
      structured as ``jax.hessian``'s: output structure, then argument structure twice.
    """
    _check_callable(fun, "hessian")
    _check_argnums(argnums, "hessian")
    inner = jacrev(fun, argnums, has_aux=has_aux, holomorphic=holomorphic)
    outer = jacfwd(inner, argnums, has_aux=has_aux, holomorphic=holomorphic)

    @functools.wraps(fun)
    def hessian_fun(*args, **kwargs):
        if not holomorphic:
            _check_real_inputs("hessian", fun, args, argnums_tuple(argnums, len(args), fun))
        return outer(*args, **kwargs)

    return hessian_fun


def _zeros_like_primal(p):
    """Zeros of ``p``'s shape, dtype and weak type (``p`` an array, a Python number or a ShapeDtypeStruct)."""
    if isinstance(p, _PYTHON_SCALARS):
        return jnp.asarray(type(p)(0))  # weakly typed, as JAX types a Python number
    weak = bool(getattr(p, "weak_type", False))
    zeros = jnp.zeros(np.shape(p), leaf_dtype(p))
    return lax.convert_element_type_p.bind(zeros, new_dtype=np.dtype(zeros.dtype), weak_type=weak, sharding=None)


def linear_transpose(fun: Callable, *primals, reduce_axes=()) -> Callable:
    """Like ``jax.linear_transpose``: the transpose of the linear function ``fun``, as a function of a cotangent.

    Args:
      fun: a linear function (an affine one's constant part is ignored, as in JAX).
      *primals: arrays or ``jax.ShapeDtypeStruct`` giving the arguments' shapes and dtypes (only those
        are used).
      reduce_axes: deprecated in JAX; anything but ``()`` raises ``NotImplementedError``, as in JAX.

    Returns:
      ``transpose_fun(out_cotangent)`` returning a tuple with one cotangent per primal, a
      ``jax.tree_util.Partial``. ``fun`` must be linear in its arguments: an equation that is not (a
      ``sin``, a product of two arguments) raises ``NotImplementedError`` naming it, as JAX's does.
    """
    _check_reduce_axes(reduce_axes, "linear_transpose")
    _check_callable(fun, "linear_transpose")
    zeros = tree_util.tree_map(_zeros_like_primal, primals)
    in_dtypes = [leaf_dtype(p) for p in tree_util.tree_leaves(primals)]
    res = _vjp(fun, zeros, {}, tuple(range(len(primals))), False, allow_int=True, name="linear_transpose")
    out_dtypes = [dtype for _, dtype in res.pullback.out_avals]
    floats = all(_inexact(d) for d in in_dtypes + out_dtypes)
    integers = all(d is not None and jnp.issubdtype(d, jnp.integer) for d in in_dtypes + out_dtypes)
    if not (floats or integers):
        raise InputError(
            "linear_transpose only supports [float or complex] -> [float or complex], and integer -> integer "
            f"functions, but got {[np.dtype(d) for d in in_dtypes]} -> {[np.dtype(d) for d in out_dtypes]}.\n"
            "  fix: compute the linear function in a floating-point dtype throughout."
        )
    if integers:
        # JAX transposes integer-linear functions (its transpose rules run on ints); funcgrad's sweep
        # carries no cotangents through integers, so it would return float0 zeros: refused instead
        raise NonLinearError(
            f"linear_transpose of {fun_name(fun)}: an integer -> integer linear function, which funcgrad does not "
            "transpose (its reverse sweep carries cotangents through floating-point values only).\n  fix: compute "
            "the linear function in floating point (x.astype(jnp.float32)) and round the result."
        )
    try:
        check_linear(res.pullback.graph, res.pullback.act, fun_name(fun))
        problem = None
    except NonLinearError as e:
        problem = e  # raised when the transpose is called, as JAX's is (it transposes then)
    return tree_util.Partial(_Transpose(res.pullback, problem), res.residuals)


class _Transpose:
    """``linear_transpose``'s function: the pullback, or the reason ``fun`` has no transpose."""

    def __init__(self, pullback: _Pullback, problem: Exception | None):
        self.pullback, self.problem = pullback, problem

    def __eq__(self, other):
        return isinstance(other, _Transpose) and self.pullback == other.pullback and self.problem is other.problem

    def __hash__(self):
        return hash(self.pullback)

    def __call__(self, residuals, out_cotangent):
        if self.problem is not None:
            raise self.problem
        return self.pullback(residuals, out_cotangent)
