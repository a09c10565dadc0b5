"""Gradient checks: funcgrad against ``jax.grad`` and central finite differences.

This is the one module of funcgrad that calls JAX's own AD (``jax.vjp``,
``jax.grad``): it is the referee, never used to compute funcgrad's gradients.

For each differentiated leaf, three methods give a number:

* funcgrad: ``funcgrad.vjp`` in the leaf's dtype, on the leaf's device;
* jax: ``jax.vjp`` of the same function, same dtype, same device;
* finite differences: central differences in float64 on the CPU, on upcast
  copies of the inputs, inside a scoped ``enable_x64`` (the user's program need
  not enable x64, and float16/bfloat16 steps no longer round to zero).

funcgrad is compared with JAX elementwise, and with finite differences along a
random direction (elementwise too for small leaves). Second order compares the
Hessian-vector product along a random direction. When funcgrad and JAX
disagree, the backward pass is replayed equation by equation to name the first
equation whose VJP rule differs from ``jax.vjp`` of the same primitive.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from funcgrad import api
from funcgrad.checking.finite_differences import (
    compiled_or_eager,
    finite_difference_hvp,
    finite_differences,
    scalarize,
)
from funcgrad.checking.report import (
    AD_RTOL,
    FD_RTOL,
    Comparison,
    EqnMismatch,
    GradCheckReport,
    LeafReport,
    compare,
    default_rtol,
    least_precise,
)
from funcgrad.core.call import arg_names as _arg_names
from funcgrad.core.hooks import SweepHooks
from funcgrad.core.interpret import read_all
from funcgrad.core.ir import Type, Var
from funcgrad.core.sweep import vjp_graph
from funcgrad.core.tracer import trace_flat
from funcgrad.errors import InputError

tree_util = jax.tree_util

# Leaves with at most this many elements also get an elementwise finite-difference gradient.
FD_ELEMENTWISE_MAX = 16


# -------------------------------------------------------------------- the problem


def _has_numpy_dtype(x) -> bool:
    try:
        np.dtype(x.dtype)
    except TypeError:  # PRNG keys and other extended dtypes
        return False
    return True


def is_float_leaf(x) -> bool:
    """Whether a leaf is differentiated by the checks: real floating arrays and Python floats."""
    if isinstance(x, bool):
        return False
    if isinstance(x, float):
        return True
    dtype = getattr(x, "dtype", None)
    if dtype is None or not _has_numpy_dtype(x):
        return False
    if jnp.issubdtype(dtype, jnp.complexfloating):
        raise InputError(
            "funcgrad's gradient checks support real floating-point leaves; got a complex leaf.\n"
            "  fix: check a real-valued function of the real and imaginary parts."
        )
    return bool(jnp.issubdtype(dtype, jnp.floating))


def leaf_dtype(x) -> np.dtype:
    return np.dtype(jnp.result_type(x))


class FlatProblem:
    """``fun(*args, **kwargs)`` seen as a function of its differentiated (floating) leaves."""

    def __init__(self, fun: Callable, args: Sequence[Any], kwargs: dict, argnums: Sequence[int]):
        self.fun = fun
        self.name = getattr(fun, "__name__", type(fun).__name__)
        flat, self.treedef = tree_util.tree_flatten_with_path((tuple(args), dict(kwargs)))
        self.values = [leaf for _, leaf in flat]
        names = _arg_names(fun, len(args))
        self.diff_idx: list[int] = []
        self.paths: list[str] = []
        self.fixed: list[str] = []  # leaves of differentiated arguments that are held fixed
        for i, (path, leaf) in enumerate(flat):
            positional = path[0].idx == 0
            if not (positional and path[1].idx in argnums):
                continue
            name = names[path[1].idx] + tree_util.keystr(path[2:])
            if is_float_leaf(leaf):
                self.diff_idx.append(i)
                self.paths.append(name)
            else:
                self.fixed.append(f"{name} ({type(leaf).__name__ if not hasattr(leaf, 'dtype') else leaf.dtype})")
        if not self.diff_idx:
            raise InputError(
                f"{self.name} has no floating-point leaf in the checked arguments (argnums={tuple(argnums)}).\n"
                "  fix: pass float arrays, or choose argnums that point at them."
            )

    def leaves(self) -> list:
        return [self.values[i] for i in self.diff_idx]

    def function(self, values: Sequence[Any] | None = None) -> Callable:
        """``(*diff_leaves) -> fun's output``, the other leaves taken from ``values`` (default: as given)."""
        base = list(self.values if values is None else values)

        def flat_fun(*diff):
            full = list(base)
            for i, d in zip(self.diff_idx, diff, strict=True):
                full[i] = d
            args, kwargs = tree_util.tree_unflatten(self.treedef, full)
            return self.fun(*args, **kwargs)

        flat_fun.__name__ = self.name
        return flat_fun


def output_cotangents(out, rng: np.random.Generator) -> list:
    """One cotangent per output leaf: 1 for a lone scalar, random normal otherwise; None if not floating."""
    leaves = tree_util.tree_leaves(out)
    lone_scalar = len(leaves) == 1 and np.shape(leaves[0]) == ()
    cts = []
    for y in leaves:
        dtype = leaf_dtype(y)
        if not jnp.issubdtype(dtype, jnp.floating):
            cts.append(None)
        elif lone_scalar:
            cts.append(jnp.ones((), dtype))
        else:
            cts.append(jnp.asarray(rng.standard_normal(np.shape(y)).astype(dtype)))
    return cts


def _cotangent_tree(out, cts):
    leaves, tree = tree_util.tree_flatten(out)
    full = [np.zeros(np.shape(y), jax.dtypes.float0) if c is None else c for y, c in zip(leaves, cts)]
    return tree_util.tree_unflatten(tree, full)


def _dot(gs, ds):
    # <g, d> summed over leaves, in the leaves' dtype
    return sum(jnp.sum(g * d) for g, d in zip(gs, ds))


def random_directions(xs, rng: np.random.Generator) -> tuple[list, list]:
    """Random directions scaled by max(|x|, 1) elementwise: (in each leaf's dtype, the same values in float64)."""
    in_dtype, in_f64 = [], []
    for x in xs:
        dtype = leaf_dtype(x)
        x64 = np.asarray(x).astype(np.float64)
        d = (rng.standard_normal(np.shape(x)) * np.maximum(np.abs(x64), 1.0)).astype(dtype)
        in_dtype.append(jnp.asarray(d))
        in_f64.append(np.asarray(d).astype(np.float64))
    return in_dtype, in_f64


# ------------------------------------------------------------ naming the culprit


class _Found(Exception):
    def __init__(self, mismatch: EqnMismatch):
        self.mismatch = mismatch


class _RuleReferee(SweepHooks):
    """Sweep hooks: compare each rule's input cotangents with ``jax.vjp`` of the same primitive."""

    def __init__(self, rtol: float | None, atol: float | None):
        self.rtol, self.atol = rtol, atol
        self.active: frozenset[int] = frozenset()
        self.checked = 0

    def after_rule(self, eqn, cts, cts_in, env):
        primals = read_all(env, eqn.inputs)
        idx = [i for i, a in enumerate(eqn.inputs) if isinstance(a, Var) and id(a) in self.active and a.type.is_float]
        if not idx:
            return
        self.checked += 1

        # only the outputs that received a cotangent: the others are symbolic zeros for JAX as for
        # funcgrad (zeros would form 0 * inf where an unused output's derivative is infinite)
        keep = [ct is not None for ct in cts]

        def primitive(*xs):
            full = list(primals)
            for i, x in zip(idx, xs):
                full[i] = x
            return [o for o, k in zip(eqn.impl(*full), keep) if k]

        _, pullback = jax.vjp(primitive, *[primals[i] for i in idx])
        reference = pullback([ct for ct in cts if ct is not None])
        for i, ref in zip(idx, reference):
            t = eqn.inputs[i].type
            mine = jnp.zeros(t.shape, t.dtype) if cts_in[i] is None else cts_in[i]
            rtol = self.rtol if self.rtol is not None else default_rtol(AD_RTOL, t.dtype)
            cmp = compare("funcgrad vs jax", "funcgrad", "jax", mine, ref, rtol=rtol, atol=self.atol)
            if not cmp.ok:
                raise _Found(EqnMismatch(eqn, i, cmp))


def find_first_mismatch(flat_fun: Callable, xs: Sequence[Any], out_cts: Sequence[Any], *, rtol=None, atol=None):
    """Replay funcgrad's backward pass of ``flat_fun`` at ``xs`` rule by rule against ``jax.vjp``.

    Args:
      flat_fun: a function of the arrays ``xs``.
      out_cts: one cotangent per output leaf (None where the output is not floating).
      rtol, atol: tolerances (default: ``AD_RTOL`` for each input's dtype).

    Returns:
      The first equation, in backward order, whose funcgrad cotangents differ from JAX's for the
      same output cotangents (an ``EqnMismatch``), or None if every rule agrees.
    """
    return _replay(flat_fun, xs, out_cts, rtol, atol)[0]


def _replay(flat_fun, xs, out_cts, rtol, atol) -> tuple[EqnMismatch | None, int]:
    """(first mismatching equation or None, number of rules replayed)."""
    graph = trace_flat(flat_fun, list(xs)).graph
    referee = _RuleReferee(rtol, atol)
    _, backward = vjp_graph(graph, list(xs), [True] * len(xs), hooks=referee)
    referee.active = backward.active
    try:
        backward(list(out_cts))
    except _Found as found:
        return found.mismatch, referee.checked
    return None, referee.checked


# --------------------------------------------------------------------- check_grads


def check_grads(
    fun: Callable,
    args: Sequence[Any],
    order: int = 1,
    *,
    argnums: int | Sequence[int] | None = None,
    kwargs: dict | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    ad_rtol: float | None = None,
    ad_atol: float | None = None,
    eps: float | None = None,
    seed: int = 0,
    fd: bool = True,
    fd_elementwise_max: int = FD_ELEMENTWISE_MAX,
    raise_on_failure: bool = True,
) -> GradCheckReport:
    """Check funcgrad's derivatives of ``fun`` against ``jax.grad`` and finite differences.

    Example::

        funcgrad.check_grads(loss, (params, x, y), order=2, argnums=0)

    Args:
      fun: a function of arrays/pytrees; any output pytree (a random output cotangent is used,
        1 for a lone scalar).
      args: the positional arguments, a tuple.
      order: 1 checks gradients (VJPs); 2 also checks Hessian-vector products along a random direction.
      argnums: which positional arguments to differentiate (default: all). Their non-floating
        leaves are held fixed.
      kwargs: keyword arguments for ``fun`` (never differentiated).
      rtol, atol: tolerances against finite differences (default per dtype, ``FD_RTOL``;
        ``atol`` defaults to ``rtol`` times the size of the terms compared).
      ad_rtol, ad_atol: tolerances of funcgrad against JAX (default per dtype, ``AD_RTOL``).
      eps: finite-difference step, relative to ``max(|x|, 1)`` (default: cbrt of the machine epsilon
        of the dtype the function computes in, float64 unless it casts down).
      seed: seed of the random directions and cotangents (a fixed seed makes the check deterministic).
      fd: compare with finite differences (turn off at kinks, where only JAX's convention applies).
      fd_elementwise_max: leaves with at most this many elements get an elementwise FD gradient too.
      raise_on_failure: raise ``AssertionError`` with the report when a check fails.

    Returns:
      A ``GradCheckReport`` (per-leaf comparisons; the first mismatching equation, if any).
    """
    if order not in (1, 2):
        raise InputError(f"check_grads supports order=1 or order=2, got {order!r}")
    args = tuple(args)
    if argnums is None:
        nums = tuple(range(len(args)))
    else:
        nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    prob = FlatProblem(fun, args, kwargs or {}, nums)
    tol = _Tolerances(rtol, atol, ad_rtol, ad_atol)
    rng = np.random.default_rng(seed)
    flat_fun = prob.function()
    xs = prob.leaves()

    _, pull_f = api.vjp(flat_fun, *xs)
    out, pull_j = jax.vjp(flat_fun, *xs)
    cts = output_cotangents(out, rng)
    ct_tree = _cotangent_tree(out, cts)
    dirs, dirs64 = random_directions(xs, rng)
    out_dtypes = [leaf_dtype(y) for y in tree_util.tree_leaves(out)]
    # a derivative is only as precise as the least precise of its leaf and the outputs
    tol_dtypes = [least_precise([leaf_dtype(x), *out_dtypes]) for x in xs]
    fd_values = finite_differences(prob, cts, dirs64, eps, fd_elementwise_max) if fd else None

    report = GradCheckReport(prob.name, order, [])
    report.leaves += _first_order_leaves(prob, pull_f(ct_tree), pull_j(ct_tree), fd_values, dirs64, tol, tol_dtypes)
    replayed = None
    if _disagrees_with_jax(report.leaves):
        report.culprit, replayed = _replay(flat_fun, xs, cts, tol.ad_rtol, tol.ad_atol)
    if order == 2:
        second = _second_order_leaves(prob, flat_fun, cts, dirs, dirs64, eps, fd, tol, tol_dtypes)
        report.leaves += second
        if report.culprit is None and _disagrees_with_jax(second):
            inner = _directional_grad(api.grad, scalarize(flat_fun, cts), dirs)
            seed_ct = jnp.ones((), jax.eval_shape(inner, *xs).dtype)
            report.culprit, replayed = _replay(inner, xs, [seed_ct], tol.ad_rtol, tol.ad_atol)
            if report.culprit is not None:
                report.culprit.order = 2
    _add_notes(report, prob, fd, replayed)
    if raise_on_failure:
        report.raise_if_failed()
    return report


@dataclasses.dataclass(frozen=True)
class _Tolerances:
    rtol: float | None
    atol: float | None
    ad_rtol: float | None
    ad_atol: float | None

    def fd_rtol_for(self, dtype) -> float:
        return self.rtol if self.rtol is not None else default_rtol(FD_RTOL, dtype)

    def ad_rtol_for(self, dtype) -> float:
        return self.ad_rtol if self.ad_rtol is not None else default_rtol(AD_RTOL, dtype)


def _disagrees_with_jax(leaves: list[LeafReport]) -> bool:
    return any(not c.ok for leaf in leaves for c in leaf.comparisons if c.reference == "jax")


def _leaf_report(path: str, x) -> LeafReport:
    return LeafReport(path, Type(tuple(np.shape(x)), leaf_dtype(x)).short())


def _first_order_leaves(prob, grads_f, grads_j, fd_values, dirs64, tol, tol_dtypes) -> list[LeafReport]:
    leaves = []
    for k, (path, x) in enumerate(zip(prob.paths, prob.leaves())):
        leaf = _leaf_report(path, x)
        leaf.values.update(funcgrad=np.asarray(grads_f[k]), jax=np.asarray(grads_j[k]))
        ad_rtol, fd_rtol = tol.ad_rtol_for(tol_dtypes[k]), tol.fd_rtol_for(tol_dtypes[k])
        leaf.comparisons.append(
            compare("funcgrad vs jax", "funcgrad", "jax", grads_f[k], grads_j[k], rtol=ad_rtol, atol=tol.ad_atol)
        )
        dtype_f, dtype_j = leaf_dtype(grads_f[k]), leaf_dtype(grads_j[k])
        if dtype_f != dtype_j:
            detail = f"funcgrad's gradient has dtype {dtype_f.name}, jax's {dtype_j.name}"
            leaf.comparisons.append(
                Comparison("funcgrad vs jax (dtype)", "funcgrad", "jax", "dtype", 0, 0, None, 0, 0, 0, 0, False, detail)
            )
        if fd_values is not None:
            directional, elementwise = fd_values[0][k], fd_values[1][k]
            leaf.values["finite differences (along the direction)"] = directional
            if elementwise is not None:
                leaf.values["finite differences (elementwise)"] = elementwise
            for name, g in (("funcgrad", grads_f[k]), ("jax", grads_j[k])):
                g = np.asarray(g).astype(np.float64)
                label = f"{name} vs finite differences"
                # the size of the terms of <g, d>: cancellation among them limits the attainable accuracy
                scale = float(np.sum(np.abs(g * dirs64[k])))
                leaf.comparisons.append(
                    compare(
                        label,
                        name,
                        "finite differences",
                        np.sum(g * dirs64[k]),
                        directional,
                        rtol=fd_rtol,
                        atol=tol.atol,
                        scale=scale,
                        kind="along a random direction",
                    )
                )
                if elementwise is not None:
                    leaf.comparisons.append(
                        compare(label, name, "finite differences", g, elementwise, rtol=fd_rtol, atol=tol.atol)
                    )
        leaves.append(leaf)
    return leaves


def _directional_grad(grad, loss, dirs):
    """``x -> <grad loss(x), d>``: its gradient is the Hessian-vector product H d."""
    nums = tuple(range(len(dirs)))
    return lambda *xs: _dot(grad(loss, argnums=nums)(*xs), dirs)


def _second_order_leaves(prob, flat_fun, cts, dirs, dirs64, eps, fd, tol, tol_dtypes) -> list[LeafReport]:
    """H d per leaf: funcgrad (reverse over reverse) vs JAX vs differences of funcgrad's float64 gradient."""
    xs = prob.leaves()
    nums = tuple(range(len(xs)))
    loss = scalarize(flat_fun, cts)
    # compiled (one compilation instead of one per primitive); eager for primitives without a lowering
    hvp_f = api.grad(_directional_grad(api.grad, loss, dirs), argnums=nums)
    hvp_j = jax.grad(_directional_grad(jax.grad, loss, dirs), argnums=nums)
    hvp_f = compiled_or_eager(jax.jit(hvp_f), hvp_f, *xs)
    hvp_j = compiled_or_eager(jax.jit(hvp_j), hvp_j, *xs)
    hvp_fd = finite_difference_hvp(prob, cts, dirs64, eps) if fd else None
    leaves = []
    for k, (path, x) in enumerate(zip(prob.paths, xs)):
        leaf = _leaf_report(path + "  (second order: H d)", x)
        leaf.values.update(funcgrad=np.asarray(hvp_f[k]), jax=np.asarray(hvp_j[k]))
        leaf.comparisons.append(
            compare(
                "funcgrad vs jax",
                "funcgrad",
                "jax",
                hvp_f[k],
                hvp_j[k],
                rtol=tol.ad_rtol_for(tol_dtypes[k]),
                atol=tol.ad_atol,
            )
        )
        if hvp_fd is not None:
            leaf.values["finite differences (elementwise)"] = hvp_fd[k]
            for name, hvp in (("funcgrad", hvp_f), ("jax", hvp_j)):
                leaf.comparisons.append(
                    compare(
                        f"{name} vs finite differences",
                        name,
                        "finite differences",
                        hvp[k],
                        hvp_fd[k],
                        rtol=tol.fd_rtol_for(tol_dtypes[k]),
                        atol=tol.atol,
                    )
                )
        leaves.append(leaf)
    return leaves


def _add_notes(report: GradCheckReport, prob: FlatProblem, fd: bool, replayed: int | None) -> None:
    if prob.fixed:
        report.notes.append("held fixed (not floating point): " + ", ".join(prob.fixed))
    if report.ok or report.culprit is not None:
        return
    if not _disagrees_with_jax(report.leaves):
        if fd:
            report.notes.append(
                "funcgrad agrees with jax.grad, but both differ from finite differences: the function is probably "
                "not differentiable at this point (a kink such as relu/abs/max at 0, or a jnp.where boundary inside "
                "the step), or the step is badly sized.\n  fix: check at another point, pass eps=..., or fd=False."
            )
    elif replayed == 0:
        report.notes.append(
            "funcgrad differs from jax.grad, and its reverse sweep ran no VJP rule at all: funcgrad found no "
            "differentiable path from these inputs to the output (an input or intermediate dtype it does not "
            "treat as floating point, or a stop_gradient?). Inspect funcgrad.trace(f)(*args)."
        )
    else:
        report.notes.append(
            f"funcgrad differs from jax.grad, but none of the {replayed} VJP rules replayed differs from jax.vjp "
            "of its primitive: the difference comes from the reverse sweep itself (fan-out accumulation, "
            "rank-0 broadcasting, dtype casts)."
        )
