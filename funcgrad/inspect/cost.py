"""FLOPs and bytes of a gradient computation, per equation and in total.

Per-equation figures come from a simple model of each primitive (below);
totals for the forward pass and the backward pass are the sums over
``funcgrad.trace(f)`` and over funcgrad's traced backward pass (the same one
``funcgrad.saved_residuals`` reads, dead code dropped). For comparison, the
report also carries XLA's own cost analysis of the compiled forward function
and of the compiled ``funcgrad.value_and_grad``.

The model: ``dot_general`` costs 2*M*N*K (a multiply and an add per term),
convolutions 2 * output size * (kernel size / output features), reductions and
cumulative ops one FLOP per input element, other arithmetic (transcendentals
included) one FLOP per output element, and data movement (reshape, transpose,
broadcast, slicing, gathers, casts, tags) none. Bytes are the sizes of every
array read and written, with no fusion (tags: none). For dense layers the backward pass
costs about twice the forward pass: two products (dC/dW and dC/dz) per forward
product.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence

import jax

from funcgrad import api
from funcgrad.core.call import Call
from funcgrad.core.ir import var_names
from funcgrad.core.jax_compat import cost_analysis
from funcgrad.inspect.eqn_cost import eqn_bytes, eqn_flops
from funcgrad.inspect.residuals import recomputations, trace_backward


@dataclasses.dataclass(frozen=True)
class EqnCost:
    """One equation's estimated cost."""

    phase: str  # "forward" or "backward"
    name: str  # its first output's name (forward names as in funcgrad.trace's printout)
    primitive: str
    flops: int
    bytes: int
    where: str


@dataclasses.dataclass(frozen=True)
class CostReport:
    """Per-equation costs, forward/backward totals (model), and XLA's totals for comparison."""

    rows: tuple[EqnCost, ...]
    xla_forward: dict
    xla_forward_backward: dict
    # of the backward pass's FLOPs, those that evaluate jax.checkpoint bodies again (as its policy decided)
    recompute_flops: int = 0

    def total(self, phase: str, what: str = "flops") -> int:
        return sum(getattr(r, what) for r in self.rows if r.phase == phase)

    @property
    def forward_flops(self) -> int:
        return self.total("forward")

    @property
    def backward_flops(self) -> int:
        return self.total("backward")

    @property
    def forward_bytes(self) -> int:
        return self.total("forward", "bytes")

    @property
    def backward_bytes(self) -> int:
        return self.total("backward", "bytes")

    def __str__(self) -> str:
        rows = [("phase", "name", "primitive", "flops", "bytes", "where")]
        rows += [
            (r.phase, r.name, r.primitive, str(r.flops), str(r.bytes), r.where) for r in self.rows if r.flops or r.bytes
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
        ratio = self.backward_flops / self.forward_flops if self.forward_flops else float("nan")
        lines.append(f"forward:  {self.forward_flops} flops, {self.forward_bytes} bytes")
        lines.append(f"backward: {self.backward_flops} flops, {self.backward_bytes} bytes ({ratio:.2f}x forward)")
        if self.recompute_flops:
            lines.append(f"  of which {self.recompute_flops} flops recompute jax.checkpoint bodies")
        xf, xb = self.xla_forward.get("flops"), self.xla_forward_backward.get("flops")
        if xf is not None and xb is not None:
            lines.append(f"XLA (compiled): forward {xf:.0f} flops, forward+backward {xb:.0f} flops")
        return "\n".join(lines)

    def _repr_pretty_(self, p, cycle):  # IPython
        p.text(str(self))


def cost_report(
    fun: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False, xla: bool = True
) -> Callable[..., CostReport]:
    """FLOPs and bytes per equation of ``fun``'s gradient computation, with forward/backward totals.

    Args:
      fun: the function to differentiate (a scalar loss for the XLA comparison).
      argnums: the positional argument(s) differentiated, as in ``funcgrad.grad``.
      has_aux: ``fun`` returns ``(out, aux)``.
      xla: also compile ``fun`` and ``funcgrad.value_and_grad(fun)`` with ``jax.jit`` and keep XLA's
        ``cost_analysis()`` (needs concrete arguments; pass ``False`` inside a transformation).

    Returns:
      A function of ``fun``'s arguments returning a ``CostReport``.
    """

    @functools.wraps(fun)
    def run(*args, **kwargs) -> CostReport:
        tb = trace_backward(fun, argnums, has_aux, args, kwargs)
        rows = []
        for e in tb.forward.eqns:
            name = tb.names[id(e.outputs[0])] if e.outputs else ""
            rows.append(EqnCost("forward", name, e.primitive, eqn_flops(e), eqn_bytes(e), e.source.short_where()))
        bnames = var_names(tb.backward)
        for e in tb.backward.eqns:
            name = bnames[id(e.outputs[0])] if e.outputs else ""
            rows.append(EqnCost("backward", name, e.primitive, eqn_flops(e), eqn_bytes(e), e.source.short_where()))
        xf = xb = {}
        if xla:
            xf = _xla_cost(fun, args, kwargs)
            xb = _xla_cost(api.value_and_grad(fun, argnums, has_aux), args, kwargs)
        return CostReport(tuple(rows), xf, xb, sum(r.flops for r in recomputations(tb)))

    return run


def _xla_cost(f, args, kwargs) -> dict:
    call = Call(f, args, kwargs, argnums=(), allow_int=True)  # non-array leaves stay static
    return cost_analysis(jax.jit(call.flat_fun).lower(*call.traced_values()).compile())
