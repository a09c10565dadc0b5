"""NaN/Inf hunting in the backward pass: ``funcgrad.debug_nans()``.

With the switch on, every VJP rule's cotangents are checked as the reverse
sweep produces them, and funcgrad stops at the first equation (in backward
order) whose cotangents contain NaN or Inf: the error names the primitive, the
user's line that created the equation, and summarises the values involved
(shape, NaN/Inf counts, range of the finite part of the primal inputs, the
outputs, the incoming cotangents and the produced ones). Off (the default),
nothing is checked and results are funcgrad's usual ones (JAX's), NaN included.

* Concrete values (no ``jax.jit`` around the call) are checked eagerly and
  raise ``NonFiniteGradientError`` from the rule that produced the NaN.
* Under ``jax.jit``, ``jax.vmap`` or another trace, values exist only when the
  compiled program runs: each rule gets an ordered ``jax.debug.callback`` that
  raises the same report at run time. JAX wraps it in a ``JaxRuntimeError``
  whose message contains the report. The switch is read when funcgrad builds
  the backward pass, i.e. when ``jax.jit`` traces: turn it on before the first
  call of a jitted function (jit caches the trace made without it).

Entering or leaving the switch clears funcgrad's trace cache, so that graphs
holding an inner backward pass (``grad`` of ``grad``) are traced again with
the right setting.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools

import jax
import jax.numpy as jnp
import numpy as np

from funcgrad.core import hooks, where_traps
from funcgrad.core.cache import trace_cache
from funcgrad.core.interpret import read_all
from funcgrad.core.ir import Eqn, Type
from funcgrad.errors import FuncgradError

_enabled: contextvars.ContextVar[bool] = contextvars.ContextVar("funcgrad_debug_nans", default=False)


class NonFiniteGradientError(FuncgradError, FloatingPointError):
    """A VJP rule produced NaN or Inf cotangents while ``funcgrad.debug_nans()`` was on."""


@contextlib.contextmanager
def debug_nans(enabled: bool = True):
    """Stop at the first backward equation producing NaN/Inf (a context manager, or a decorator).

    Example::

        with funcgrad.debug_nans():
            funcgrad.grad(loss)(params)   # raises NonFiniteGradientError naming the primitive and line

    Args:
      enabled: False turns the check off inside an enclosing ``debug_nans()`` block.
    """
    changed = _enabled.get() != enabled
    if changed:
        # graphs traced with the other setting may hold (or lack) the checks of an inner
        # backward pass (grad of grad): trace again
        trace_cache.clear()
    token = _enabled.set(enabled)
    try:
        # every top-level backward pass in the block gets a NanHunter as its sweep hooks; the graphs
        # differentiated are searched for NaN traps, so that a report can name the masking where
        with hooks.installed(NanHunter if enabled else None), _remembering_traps(enabled):
            yield
    finally:
        _enabled.reset(token)
        if changed:
            trace_cache.clear()


def _remembering_traps(enabled: bool):
    return where_traps.remembering() if enabled else contextlib.nullcontext()


_GROUPS = ("primal inputs", "primal outputs", "incoming cotangents", "produced cotangents")


class NanHunter(hooks.SweepHooks):
    """Sweep hooks that raise at the first rule whose produced cotangents are not all finite."""

    def after_rule(self, eqn: Eqn, cts, cts_in, env) -> None:
        if all(c is None for c in cts_in):
            return
        groups = [read_all(env, eqn.inputs), [env[v] for v in eqn.outputs], list(cts), list(cts_in)]
        types = [[None if v is None else _type_str(v) for v in vals] for vals in groups]
        if not any(isinstance(v, jax.core.Tracer) for v in jax.tree_util.tree_leaves(groups)):
            if not all(_finite_np(c) for c in cts_in if c is not None):
                stats = [[None if v is None else _stats(v) for v in vals] for vals in groups]
                raise NonFiniteGradientError(nan_report(eqn, types, stats))
            return
        # traced: decide at run time; ordered, so the first failing rule is the one that raises
        bad = jnp.logical_not(jnp.all(jnp.stack([jnp.all(jnp.isfinite(c)) for c in cts_in if c is not None])))
        stats = [[None if v is None else _stats(v) for v in vals] for vals in groups]
        jax.debug.callback(functools.partial(_raise_if_bad, eqn, types), bad, stats, ordered=True)


def _raise_if_bad(eqn, types, bad, stats) -> None:
    if bool(bad):
        raise NonFiniteGradientError(nan_report(eqn, types, stats))


def _type_str(v) -> str:
    return Type(tuple(np.shape(v)), np.dtype(jnp.result_type(v))).short()


def _finite_np(c) -> bool:
    return bool(np.isfinite(np.asarray(c).astype(np.float64)).all())


def _stats(v) -> dict:
    """NaN count, Inf count, and min/max of the finite part (jnp: works on concrete values and tracers)."""
    x = jnp.asarray(v)
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        x = x.astype(jnp.float32)
    finite = jnp.isfinite(x)
    return {
        "nan": jnp.sum(jnp.isnan(x)),
        "inf": jnp.sum(jnp.isinf(x)),
        "finite": jnp.sum(finite),
        "min": jnp.min(jnp.where(finite, x, jnp.inf), initial=jnp.inf),
        "max": jnp.max(jnp.where(finite, x, -jnp.inf), initial=-jnp.inf),
    }


def _summary(type_str: str, s: dict) -> str:
    parts = []
    if int(s["nan"]):
        parts.append(f"{int(s['nan'])} NaN")
    if int(s["inf"]):
        parts.append(f"{int(s['inf'])} Inf")
    if int(s["finite"]):
        parts.append(f"finite part in [{float(s['min']):.6g}, {float(s['max']):.6g}]")
    elif not parts:
        parts.append("empty")
    return f"{type_str}  " + ", ".join(parts)


def _has_nonfinite(stats_group) -> bool:
    return any(s is not None and (int(s["nan"]) or int(s["inf"])) for s in stats_group)


def nan_report(eqn: Eqn, types, stats) -> str:
    """The error message: the equation, where it came from, the values, and the likely fix."""
    src = eqn.source
    fn = f" (in {src.function})" if src.function else ""
    scope = f"\n  scope: {src.scope}" if src.scope else ""
    lines = [
        f"funcgrad.debug_nans: the VJP rule of {eqn.primitive!r} produced NaN/Inf cotangents.",
        f"  forward equation: {eqn.primitive} at {src.where()}{fn}{scope}",
    ]
    for name, group_types, group_stats in zip(_GROUPS, types, stats):
        lines.append(f"  {name}:")
        for i, (t, s) in enumerate(zip(group_types, group_stats)):
            lines.append(f"    {i}: " + ("(none)" if s is None else _summary(t, s)))
    primals_bad = _has_nonfinite(stats[0])
    incoming_bad = _has_nonfinite(stats[2])
    if incoming_bad:
        lines.append(
            "  why: the cotangent arriving at this equation is already NaN/Inf: the output cotangent you passed "
            "(to a vjp function) contains NaN/Inf.\n  fix: pass a finite cotangent."
        )
    elif primals_bad:
        lines.append(
            "  why: the forward pass already produced NaN/Inf in this equation's inputs.\n"
            "  fix: find the first NaN of the forward pass (jax.config.update('jax_debug_nans', True)) and fix it."
        )
    elif traps := where_traps.traps_at(eqn):
        lines += _trap_lines(eqn, traps)
    else:
        lines.append(
            f"  why: the inputs and the incoming cotangent are finite, so the local derivative of {eqn.primitive!r} "
            "is infinite or undefined at these inputs (sqrt/log/rsqrt/pow/div at 0, arcsin at 1, ...); "
            "multiplying it by a cotangent, even a zero one, gives NaN/Inf.\n"
            "  fix: if the value is masked by jnp.where (jnp.where(x > 0, jnp.sqrt(x), 0.)), the masked branch "
            "still gets a zero cotangent and 0 * inf = NaN: use the double-where trick, "
            "jnp.where(x > 0, jnp.sqrt(jnp.where(x > 0, x, 1.)), 0.), so that the unselected branch is "
            "evaluated at a safe point (docs/debugging.md)."
        )
    return "\n".join(lines)


def _trap_lines(eqn: Eqn, traps) -> list[str]:
    """The why and the fix when the where-lint knows the where (or clip) that masked this equation's
    unsafe operation (``funcgrad.core.where_traps``)."""
    lines = [
        f"  why: the inputs and the incoming cotangent are finite, so the local derivative of {eqn.primitive!r} "
        "is infinite or undefined at these inputs, and this value is masked:"
    ]
    for trap in traps:
        masker = "where (select_n)" if trap.kind == "where" else f"clip ({trap.mask_primitive})"
        lines.append(f"  masked by: the {masker} at {trap.mask_where}, over {trap.primitive!r} at {trap.op_where}")
        lines.append(f"    {trap.message}.")
    lines.append(f"  fix: {traps[0].fix} (docs/debugging.md).")
    return lines
