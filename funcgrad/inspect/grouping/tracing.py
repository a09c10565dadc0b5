"""A call traced with every equation's user call stack kept, which the grouping reads."""

from __future__ import annotations

import jax

from funcgrad.core.call import Call, gc_paused
from funcgrad.core.concrete import can_trace_concretely, trace_concrete
from funcgrad.core.tracer import Traced, keeping_tracebacks, trace_flat
from funcgrad.errors import TracingError


def trace_with_stacks(call: Call) -> Traced:
    """``call`` traced under ``keeping_tracebacks`` (not through the trace cache, whose graphs keep no
    stacks): abstractly, or concretely where Python control flow needs the values, as ``funcgrad.grad``."""
    values = call.traced_values()
    with keeping_tracebacks(), gc_paused():
        try:
            return trace_flat(call.flat_fun, values)
        except TracingError:
            if not can_trace_concretely(values):
                raise
            return trace_concrete(call.flat_fun, values)
        except jax.errors.UnexpectedTracerError as err:
            if "nondiff_argnums" not in str(err):
                raise
            call.bake_undifferentiated_arrays()  # a custom_vjp's nondiff_argnums want the arrays themselves
            return trace_flat(call.flat_fun, call.traced_values())
