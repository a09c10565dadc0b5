"""What can go wrong in a network's backward pass, found where it happens.

* **Dead units**: a relu unit (an entry of the last axis of its output) that is never positive over
  the batch (every other axis) passes no gradient at all: relu'(s) = 0 wherever s <= 0. Flagged
  when more than ``DEAD_SHARE`` of a layer's units are dead over at least ``MIN_EXAMPLES``
  examples, or when all of them are (then nothing flows back through the layer whatever the batch).
* **Saturation**: tanh(s) with |tanh(s)| > ``SATURATED_TANH`` (derivative 1 - tanh² < 0.02) and
  sigmoid(s) outside [1 - ``SATURATED_SIGMOID``, ``SATURATED_SIGMOID``] (derivative σ(1-σ) < 0.01).
  Flagged when more than ``SATURATED_SHARE`` of the entries are saturated.
* **Gradient norm across depth**: the norm of dC/d(output) of each block of the top-level view, in
  program order (the depth of the network; single equations, such as the loss's mean, are left out).
  Flagged as vanishing where it is below ``DEPTH_RATIO`` times the norm at the last block (the one
  nearest the cost), exploding where above 1 / ``DEPTH_RATIO`` times.
* **Across a loop's iterations**: the same, for dC/dz_t of a tag inside a scan or fori_loop body
  (one norm per iteration t): flagged where the smallest is below ``DEPTH_RATIO`` times the largest
  (vanishing when the small one comes first: the early steps get almost no gradient).
* **First NaN/Inf**: the first equation, in program order, whose outputs hold NaN or Inf while its
  inputs are finite (forward), and the first rule, in the sweep's order, that makes a non-finite
  cotangent from finite ones (backward).
* **Memory**: the bytes of the forward values the backward pass keeps, per block (measured as
  ``funcgrad.saved_residuals`` measures them: the backward pass traced, dead code dropped).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from funcgrad.core.ir import Eqn, Literal, Var

DEAD_SHARE = 0.1
MIN_EXAMPLES = 4
SATURATED_TANH = 0.99
SATURATED_SIGMOID = 0.99
SATURATED_SHARE = 0.2
DEPTH_RATIO = 1e-3


@dataclasses.dataclass(frozen=True)
class Diagnostic:
    """One finding: what, how bad, where (an equation, its value, or a block)."""

    kind: str  # "dead units", "saturated", "vanishing gradient", "exploding gradient", "non-finite"
    severity: str  # "warning" or "error"
    message: str
    eqn: Eqn | None = None
    var: Var | None = None
    block: object = None  # a grouping.Block
    amount: float = 0.0  # the share, ratio or count the message states


def activation(eqn: Eqn) -> str | None:
    """ "relu", "tanh" or "sigmoid" for an equation computing that nonlinearity, else None."""
    if eqn.primitive in ("custom_jvp_call", "custom_vjp_call") and eqn.params.get("name") == "relu":
        return "relu"
    if eqn.primitive == "max" and any(_is_zero(a) for a in eqn.inputs):
        return "relu"  # jnp.maximum(s, 0)
    if eqn.primitive == "tanh":
        return "tanh"
    if eqn.primitive == "logistic":
        return "sigmoid"
    return None


def _is_zero(a) -> bool:
    return isinstance(a, Literal) and np.ndim(a.value) == 0 and float(np.asarray(a.value)) == 0.0


def dead_units(value) -> tuple[int, int, int]:
    """(dead units, units, examples) of a relu output: units along the last axis, examples the rest."""
    arr = np.asarray(value)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    grid = arr.reshape(-1, arr.shape[-1])
    dead = int(np.count_nonzero(np.all(grid <= 0, axis=0)))
    return dead, grid.shape[1], grid.shape[0]


def saturated_share(kind: str, value) -> float:
    """The share of entries of a tanh or sigmoid output whose derivative has all but vanished."""
    arr = np.asarray(value)
    if arr.size == 0:
        return 0.0
    if kind == "tanh":
        hit = np.abs(arr) > SATURATED_TANH
    else:
        hit = (arr > SATURATED_SIGMOID) | (arr < 1 - SATURATED_SIGMOID)
    return float(np.count_nonzero(hit)) / arr.size


def activations(graph, env, names) -> tuple[list[Diagnostic], dict]:
    """Dead and saturated units of the graph's nonlinearities: (flagged findings, id(eqn) -> a note for
    every nonlinearity, flagged or not)."""
    found, notes = [], {}
    for eqn in graph.eqns:
        kind = activation(eqn)
        if kind is None or not eqn.outputs or eqn.outputs[0] not in env:
            continue
        out = eqn.outputs[0]
        name = names.get(id(out), "?")
        value = env[out]
        if kind == "relu":
            dead, units, examples = dead_units(value)
            share = dead / units if units else 0.0
            notes[id(eqn)] = f"{dead} of {units} units never positive over {examples} example(s)"
            if units and (dead == units or (share > DEAD_SHARE and examples >= MIN_EXAMPLES)):
                message = (
                    f"dead relu units: {dead} of {units} ({share:.0%}) are never positive over the "
                    f"{examples} example(s) in {name}, so no gradient flows back through them"
                )
                found.append(Diagnostic("dead units", "warning", message, eqn, out, amount=share))
        else:
            share = saturated_share(kind, value)
            notes[id(eqn)] = f"{share:.1%} of the entries saturated"
            if share > SATURATED_SHARE:
                message = (
                    f"saturated {kind}: {share:.0%} of the entries of {name} sit where its derivative is "
                    f"below {0.02 if kind == 'tanh' else 0.01}, so little gradient flows back through them"
                )
                found.append(Diagnostic("saturated", "warning", message, eqn, out, amount=share))
    return found, notes


def depth(items: list, norms: list[float | None], labels: list[str]) -> list[Diagnostic]:
    """Vanishing or exploding gradients across the top-level blocks (``items``, in program order)."""
    known = [(item, n, label) for item, n, label in zip(items, norms, labels) if n is not None and n > 0]
    if len(known) < 2:
        return []
    _, last, last_label = known[-1]
    found = []
    for item, n, label in known[:-1]:
        ratio = n / last
        if ratio < DEPTH_RATIO or ratio > 1 / DEPTH_RATIO:
            kind = "vanishing gradient" if ratio < 1 else "exploding gradient"
            message = (
                f"{kind}: |dC/d(output of {label})| = {n:.3g} is {ratio:.2g} times its value at {last_label} "
                f"({last:.3g}), the block nearest the cost"
            )
            found.append(Diagnostic(kind, "warning", message, block=item, amount=ratio))
    return found


def iterations(inner: list) -> list[Diagnostic]:
    """Vanishing or exploding gradients across a loop's iterations: dC/dz_t of a tag inside a scan or
    fori_loop body (``loops.InnerCotangent``) whose norm at some t is below ``DEPTH_RATIO`` (or above
    its inverse) times the largest (smallest) over the iterations."""
    found = []
    for c in inner:
        norms = [n for n in (c.per_iteration or ()) if n > 0]
        if len(norms) < 2:
            continue
        lo, hi = min(norms), max(norms)
        if lo / hi >= DEPTH_RATIO:
            continue
        t_lo, t_hi = c.per_iteration.index(lo), c.per_iteration.index(hi)
        kind = "vanishing gradient" if t_lo < t_hi else "exploding gradient"
        message = (
            f"{kind} over the iterations of a loop: |dC/d{c.var.label}_t| is {hi:.3g} at t = {t_hi} and "
            f"{lo:.3g} at t = {t_lo} (a ratio of {lo / hi:.2g})"
        )
        found.append(Diagnostic(kind, "warning", message, eqn=c.holder, var=c.var, amount=lo / hi))
    return found


def non_finite(graph, names, recording) -> list[Diagnostic]:
    """The first equation that makes NaN/Inf from finite inputs, forward and backward."""
    found = []

    def finite(summary) -> bool:
        return summary is None or summary.finite

    for eqn in graph.eqns:
        outs = [recording.value.get(id(v)) for v in eqn.outputs]
        ins = [recording.value.get(id(a)) for a in eqn.inputs if isinstance(a, Var)]
        if not all(finite(s) for s in outs) and all(finite(s) for s in ins):
            bad = next(v for v, s in zip(eqn.outputs, outs) if not finite(s))
            s = recording.value[id(bad)]
            message = (
                f"first NaN/Inf of the forward pass: {eqn.primitive} makes {names.get(id(bad), '?')} with "
                f"{s.nan} NaN and {s.inf} Inf from finite inputs (at {eqn.source.short_where()})"
            )
            found.append(Diagnostic("non-finite", "error", message, eqn, bad, amount=s.nan + s.inf))
            break
    parts = {}
    for var_id, items in recording.parts.items():
        for step, summary in items:
            parts.setdefault(step, []).append((var_id, summary))
    for step in recording.steps:
        cts_in = [recording.ct.get(id(v)) for v in step.outs]
        made = [(var_id, s) for var_id, s in parts.get(step.index, []) if not finite(s)]
        if made and all(finite(s) for s in cts_in):
            var_id, s = made[0]
            var = next(a for _, a in step.parts if id(a) == var_id)
            message = (
                f"first NaN/Inf of the backward pass: the rule of {step.eqn.primitive} (backward step "
                f"{step.index + 1}) turns finite cotangents into dC/d{names.get(var_id, '?')} with {s.nan} NaN "
                f"and {s.inf} Inf (at {step.eqn.source.short_where()})"
            )
            found.append(Diagnostic("non-finite", "error", message, step.eqn, var, amount=s.nan + s.inf))
            break
    return found


def norm_of(vars_, ct: dict) -> float | None:
    """sqrt(sum of |dC/dv|^2) over the variables that have a cotangent, or None if none does."""
    known = [ct[id(v)].l2 for v in vars_ if ct.get(id(v)) is not None]
    if not known:
        return None
    return math.sqrt(sum(x * x for x in known if math.isfinite(x))) if all(map(math.isfinite, known)) else math.nan
