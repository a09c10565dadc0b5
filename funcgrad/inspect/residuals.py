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

from funcgrad.core.call import Call, argnums_tuple, trace_call
from funcgrad.core.graph_edit import prune, used_inputs
from funcgrad.core.ir import Graph, Type, Var, type_str, var_names
from funcgrad.core.sweep import Backward, checked_activity
from funcgrad.core.tracer import trace_flat


@dataclasses.dataclass(frozen=True)
class Residual:
    """One forward value the backward pass reads."""

    name: str  # as printed by funcgrad.trace(f)(*args)
    type: Type
    kind: str  # "argument", "constant" or "intermediate"
    primitive: str | None  # the equation that produced it (intermediates)
    where: str  # the user's file:line (intermediates)

    @property
    def nbytes(self) -> int:
        return self.type.size * np.dtype(self.type.dtype).itemsize


@dataclasses.dataclass(frozen=True)
class Residuals:
    """The residuals of one gradient computation, in program order."""

    items: tuple[Residual, ...]

    @property
    def total_bytes(self) -> int:
        return sum(r.nbytes for r in self.items)

    @property
    def intermediate_bytes(self) -> int:
        return sum(r.nbytes for r in self.items if r.kind == "intermediate")

    def __iter__(self):
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __str__(self) -> str:
        rows = [("name", "type", "bytes", "kind", "from", "where")]
        for r in self.items:
            rows.append((r.name, type_str(r.type), str(r.nbytes), r.kind, r.primitive or "", r.where))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
        lines.append(
            f"total {self.total_bytes} bytes in {len(self.items)} values "
            f"({self.intermediate_bytes} bytes computed by the forward pass)"
        )
        return "\n".join(lines)

    def _repr_pretty_(self, p, cycle):  # IPython
        p.text(str(self))


@dataclasses.dataclass(frozen=True)
class TracedBackward:
    """A forward graph and its backward pass traced as a function of (candidate residuals, output cotangents)."""

    forward: Graph
    names: dict  # id(var) -> name in the forward printout
    candidates: list  # forward Vars the rules could read, in program order
    backward: Graph  # inputs: candidates then output cotangents; outputs: the gradient leaves (pruned)


def trace_backward(fun: Callable, argnums: int | Sequence[int], has_aux: bool, args, kwargs) -> TracedBackward:
    """Trace ``fun``'s forward graph and its backward pass separately (shared by memory and cost reports)."""
    nums = argnums_tuple(argnums, len(args), fun)
    call = Call(fun, args, kwargs, nums, allow_int=False)
    forward, out_tree = trace_call(call)
    act = checked_activity(forward, call.wrt)
    out_types = forward.out_types
    main = jax.tree_util.tree_unflatten(out_tree, list(range(len(out_types))))
    main_slots = jax.tree_util.tree_leaves(main[0] if has_aux else main)
    readable = {id(a) for e in act.eqns for a in (*e.inputs, *e.outputs) if isinstance(a, Var)}
    order = [*forward.inputs, *forward.constvars, *(v for e in forward.eqns for v in e.outputs)]
    candidates = [v for v in order if id(v) in readable]
    wrt_slots = [k for k, w in enumerate(call.wrt) if w]

    def backward_program(*flat):
        env = dict(zip(candidates, flat[: len(candidates)]))
        cts = [None] * len(out_types)
        for slot, ct in zip(main_slots, flat[len(candidates) :]):
            cts[slot] = ct
        in_cts = Backward(forward, env, act)(cts)
        return [in_cts[k] for k in wrt_slots if in_cts[k] is not None]

    specs = [jax.ShapeDtypeStruct(v.type.shape, v.type.dtype) for v in candidates]
    specs += [jax.ShapeDtypeStruct(out_types[s].shape, out_types[s].dtype) for s in main_slots]
    backward = prune(trace_flat(backward_program, specs).graph)
    return TracedBackward(forward, var_names(forward), candidates, backward)


def saved_residuals(fun: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False) -> Callable[..., Residuals]:
    """List the forward values funcgrad's backward pass reads (see the module docstring for what is measured).

    Args:
      fun: the function to differentiate (any output; the cotangent is an input of the backward pass).
      argnums: the positional argument(s) differentiated, as in ``funcgrad.grad``.
      has_aux: ``fun`` returns ``(out, aux)``; only ``out`` is differentiated.

    Returns:
      A function of ``fun``'s arguments returning ``Residuals`` (iterable of ``Residual``; ``total_bytes``;
      ``str()`` is a table).
    """

    @functools.wraps(fun)
    def run(*args, **kwargs) -> Residuals:
        tb = trace_backward(fun, argnums, has_aux, args, kwargs)
        used = used_inputs(tb.backward)[: len(tb.candidates)]
        producer = {id(v): e for e in tb.forward.eqns for v in e.outputs}
        consts = {id(v) for v in tb.forward.constvars}
        items = []
        for v, u in zip(tb.candidates, used):
            if not u:
                continue
            eqn = producer.get(id(v))
            kind = "intermediate" if eqn is not None else "constant" if id(v) in consts else "argument"
            where = eqn.source.short_where() if eqn is not None else ""
            items.append(Residual(tb.names[id(v)], v.type, kind, eqn.primitive if eqn else None, where))
        return Residuals(tuple(items))

    return run
