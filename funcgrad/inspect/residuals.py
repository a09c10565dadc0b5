"""What the backward pass keeps: the forward values funcgrad's VJP rules actually read.

``funcgrad.saved_residuals(f)(*args)`` lists them with shape, dtype, bytes, the
primitive that produced each one and the user's source line, and the total.

How it is measured: funcgrad's backward pass (the same ``funcgrad.core.sweep.Backward``
that ``funcgrad.grad`` runs) is traced as a function of *every* forward value it
could read (each input and output of each differentiated equation) and of the
output cotangent. A forward value is a residual when the traced gradients
depend on it, after dropping dead code. So a rule that receives ``x`` but never
uses it (``add``), or computes a cotangent nobody needs (the cotangent of a
data input that is not differentiated), does not make ``x`` a residual.

``jax.checkpoint``: a checkpoint's body values are not residuals unless its ``policy`` saves
them (``kind`` "saved by checkpoint", named ``<checkpoint output>/<body value>``, with the
primitive or ``checkpoint_name`` that made each); ``recomputed`` lists the body equations the
backward pass evaluates again, with their FLOPs. Rules that keep values of their own (a
``custom_vjp``'s fwd residuals) are listed as "saved by <primitive>".

What it does not measure: XLA's own choices under ``jax.jit`` (fusion,
rematerialisation, buffer reuse), the cotangent buffers the backward pass
allocates, or peak memory. Arguments and closed-over constants are listed
(``kind``) because the backward pass reads them, but they exist anyway;
``intermediate_bytes`` counts only values the forward pass computed.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence

import jax
import numpy as np

from funcgrad.core.activity import Activity
from funcgrad.core.backward_reads import BackwardProgram, backward_program, saved_shapes
from funcgrad.core.call import Call, argnums_tuple, trace_call
from funcgrad.core.ir import Eqn, Graph, Type, Var, type_str, var_names
from funcgrad.core.sweep import checked_activity
from funcgrad.inspect.eqn_cost import eqn_flops
from funcgrad.rules.checkpoint import remat_plan


@dataclasses.dataclass(frozen=True)
class Residual:
    """One forward value the backward pass reads."""

    name: str  # as printed by funcgrad.trace(f)(*args)
    type: Type
    kind: str  # "argument", "constant", "intermediate", "saved by checkpoint", "saved by <primitive>", ...
    primitive: str | None  # the equation that produced it (intermediates)
    where: str  # the user's file:line (intermediates)

    @property
    def nbytes(self) -> int:
        return self.type.size * np.dtype(self.type.dtype).itemsize


@dataclasses.dataclass(frozen=True)
class Recomputation:
    """One equation of a ``jax.checkpoint`` body that the backward pass evaluates again."""

    primitive: str
    type: Type  # of its first output
    flops: int  # the cost model of funcgrad.cost_report
    where: str


@dataclasses.dataclass(frozen=True)
class Residuals:
    """The residuals of one gradient computation, in program order, and what checkpoints recompute."""

    items: tuple[Residual, ...]
    recomputed: tuple[Recomputation, ...] = ()  # the jax.checkpoint bodies' equations the backward pass runs again

    @property
    def total_bytes(self) -> int:
        return sum(r.nbytes for r in self.items)

    @property
    def intermediate_bytes(self) -> int:
        """Bytes of the values the forward pass computed (not arguments or constants)."""
        return sum(r.nbytes for r in self.items if r.kind not in ("argument", "constant"))

    @property
    def recomputed_flops(self) -> int:
        return sum(r.flops for r in self.recomputed)

    def __iter__(self):
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __str__(self) -> str:
        rows = [("name", "type", "bytes", "kind", "from", "where")]
        for r in self.items:
            rows.append((r.name, type_str(r.type), str(r.nbytes), r.kind, r.primitive or "", r.where))
        lines = _table(rows)
        lines.append(
            f"total {self.total_bytes} bytes in {len(self.items)} values "
            f"({self.intermediate_bytes} bytes computed by the forward pass)"
        )
        if self.recomputed:
            lines.append("recomputed by the backward pass (jax.checkpoint):")
            rows = [("primitive", "type", "flops", "where")]
            rows += [(r.primitive, type_str(r.type), str(r.flops), r.where) for r in self.recomputed]
            lines += ["  " + line for line in _table(rows)]
            lines.append(f"  {len(self.recomputed)} equations, {self.recomputed_flops} flops")
        return "\n".join(lines)

    def _repr_pretty_(self, p, cycle):  # IPython
        p.text(str(self))


def _table(rows) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]


@dataclasses.dataclass(frozen=True)
class TracedBackward:
    """A forward graph and its backward pass traced as a function of (candidate residuals, output cotangents)."""

    forward: Graph
    act: Activity
    names: dict  # id(var) -> name in the forward printout
    program: BackwardProgram  # inputs: candidates, saved leaves, output cotangents

    @property
    def candidates(self) -> tuple[Var, ...]:
        return self.program.candidates

    @property
    def backward(self) -> Graph:
        return self.program.graph


def trace_backward(fun: Callable, argnums: int | Sequence[int], has_aux: bool, args, kwargs) -> TracedBackward:
    """Trace ``fun``'s forward graph and its backward pass separately (shared by memory and cost reports)."""
    nums = argnums_tuple(argnums, len(args), fun)
    call = Call(fun, args, kwargs, nums, allow_int=False)
    forward, out_tree = trace_call(call)
    act = checked_activity(forward, call.wrt)
    main = jax.tree_util.tree_unflatten(out_tree, list(range(len(forward.outputs))))
    main_slots = jax.tree_util.tree_leaves(main[0] if has_aux else main)
    wrt_slots = [k for k, w in enumerate(call.wrt) if w]
    program = backward_program(forward, act, main_slots, wrt_slots, saved_shapes(act))
    return TracedBackward(forward, act, var_names(forward), program)


def saved_residuals(fun: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False) -> Callable[..., Residuals]:
    """List the forward values funcgrad's backward pass reads (see the module docstring for what is measured).

    Args:
      fun: the function to differentiate (any output; the cotangent is an input of the backward pass).
      argnums: the positional argument(s) differentiated, as in ``funcgrad.grad``.
      has_aux: ``fun`` returns ``(out, aux)``; only ``out`` is differentiated.

    Returns:
      A function of ``fun``'s arguments returning ``Residuals`` (iterable of ``Residual``; ``total_bytes``;
      ``recomputed``: what ``jax.checkpoint`` bodies evaluate again; ``str()`` is a table).
    """

    @functools.wraps(fun)
    def run(*args, **kwargs) -> Residuals:
        tb = trace_backward(fun, argnums, has_aux, args, kwargs)
        reads = tb.program.reads()
        producer = {id(v): e for e in tb.forward.eqns for v in e.outputs}
        consts = {id(v) for v in tb.forward.constvars}
        items = []
        for v, u in zip(tb.candidates, reads):
            if not u:
                continue
            eqn = producer.get(id(v))
            kind = "intermediate" if eqn is not None else "constant" if id(v) in consts else "argument"
            where = eqn.source.short_where() if eqn is not None else ""
            items.append(Residual(tb.names[id(v)], v.type, kind, eqn.primitive if eqn else None, where))
        read_leaves = {(id(s.eqn), s.index) for s, u in zip(tb.program.saved, reads[len(tb.candidates) :]) if u}
        for eqn in tb.act.eqns:
            if eqn.primitive == "checkpoint":
                items += _checkpoint_saves(tb, eqn, read_leaves)
            else:
                items += _rule_saves(tb, eqn, read_leaves)
        return Residuals(tuple(items), recomputations(tb))

    return run


def _checkpoint_plan(tb: TracedBackward, eqn: Eqn):
    perturbed = [tb.act.is_active(a) for a in eqn.inputs]
    return remat_plan(eqn.params["body"], perturbed, eqn.params.get("policy"))


def _checkpoint_saves(tb: TracedBackward, eqn: Eqn, read_leaves) -> list[Residual]:
    plan = _checkpoint_plan(tb, eqn)
    body_names = var_names(eqn.params["body"])
    at = tb.names[id(eqn.outputs[0])] if eqn.outputs else "checkpoint"
    found = []
    for i, (v, off) in enumerate(zip(plan.saved, plan.offload)):
        if (id(eqn), i) not in read_leaves:
            continue
        made_by = plan.producers[id(v)]
        what = f"name {made_by.params['name']!r}" if made_by.primitive == "name" else made_by.primitive
        kind = "saved by checkpoint" if off is None else f"offloaded to {off[1]} by checkpoint"
        found.append(Residual(f"{at}/{body_names[id(v)]}", v.type, kind, what, made_by.source.short_where()))
    return found


def recomputations(tb: TracedBackward) -> tuple[Recomputation, ...]:
    """The equations of the (top-level) ``jax.checkpoint`` bodies that the backward pass evaluates again."""
    return tuple(
        Recomputation(e.primitive, e.outputs[0].type, eqn_flops(e), e.source.short_where())
        for eqn in tb.act.eqns
        if eqn.primitive == "checkpoint"
        for e in _checkpoint_plan(tb, eqn).recomputed
        if e.outputs
    )


def _rule_saves(tb: TracedBackward, eqn: Eqn, read_leaves) -> list[Residual]:
    at = tb.names[id(eqn.outputs[0])] if eqn.outputs else eqn.primitive
    return [
        Residual(f"{at}/saved{s.index}", s.type, f"saved by {eqn.primitive}", eqn.primitive, eqn.source.short_where())
        for s in tb.program.saved
        if s.eqn is eqn and (id(eqn), s.index) in read_leaves
    ]
