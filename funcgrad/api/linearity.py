"""Is a traced function linear in its inputs? ``linear_transpose``'s check, equation by equation.

``linear_transpose(f)`` is funcgrad's VJP of ``f``, which is the transpose of ``f`` exactly when ``f`` is
linear (an affine ``f``'s constant part drops out, as in JAX). JAX refuses a non-linear ``f`` because it
has no transpose rule for ``sin`` or for a product of two unknowns; funcgrad has VJP rules for both, so
it checks instead: every equation that an input reaches (the active ones) must be linear in the
operands the inputs reach. Integer operands (indices, predicates) are never reached: only floats are.
"""

from __future__ import annotations

from funcgrad.core.activity import Activity, activity
from funcgrad.core.ir import Eqn, Graph
from funcgrad.errors import FuncgradError

# linear in all of its floating-point operands together (a gather's or a select's integer operands are
# indices and predicates, which no input reaches)
JOINTLY_LINEAR = frozenset(
    {
        "add", "add_any", "sub", "neg", "reduce_sum", "reshape", "broadcast_in_dim", "transpose", "squeeze",
        "expand_dims", "rev", "concatenate", "pad", "copy", "copy_p", "real", "imag", "complex", "conj",
        "convert_element_type", "cumsum", "fft", "reduce_precision", "slice", "dynamic_slice",
        "dynamic_update_slice", "gather", "scatter-add", "scatter_add", "select_n", "reduce_window_sum", "psum",
        "all_gather", "pbroadcast", "ppermute", "all_to_all", "name", "optimization_barrier", "sharding_constraint",
        "mesh_cast", "pvary", "device_put", "symbolic_zeros", "zeros_like", "copy_start", "squeeze_p",
    }
)  # fmt: skip
# linear in each operand separately: at most one operand may depend on the inputs
BILINEAR = frozenset({"mul", "dot_general", "conv_general_dilated", "ragged_dot", "ragged_dot_general"})
# linear in one operand (by position) if the others do not depend on the inputs
LINEAR_IN = {"div": 0, "triangular_solve": 1}


class NonLinearError(FuncgradError, NotImplementedError, AssertionError):
    """``linear_transpose`` of a function that is not linear. JAX raises ``NotImplementedError`` for a
    non-linear primitive (no transpose rule for ``sin``) and ``AssertionError`` for a product of two
    linear values; this is both."""


def check_linear(graph: Graph, act: Activity, name: str) -> None:
    """Raises ``NonLinearError`` naming the first active equation of ``graph`` that is not linear."""
    for eqn in act.eqns:
        _check_eqn(eqn, act, name)


def _check_eqn(eqn: Eqn, act: Activity, name: str) -> None:
    reached = [act.is_active(a) for a in eqn.inputs]
    p = eqn.primitive
    if p in JOINTLY_LINEAR:
        return
    if p in BILINEAR and sum(reached) <= 1:
        return
    if p in LINEAR_IN and not any(r for k, r in enumerate(reached) if k != LINEAR_IN[p]):
        return
    subgraphs = eqn.subgraphs()
    if p == "cond" and not reached[0]:
        for branch in eqn.params["branches"]:
            _check_body(branch, reached[1:], name)
        return
    if p == "scan":
        _check_scan(eqn, reached, name)
        return
    if p == "custom_jvp_call" or (len(subgraphs) == 1 and len(subgraphs[0].inputs) == len(eqn.inputs)):
        body = eqn.params["call"] if p == "custom_jvp_call" else subgraphs[0]
        _check_body(body, reached, name)
        return
    raise NonLinearError(
        f"linear_transpose of {name}: the function is not linear in its arguments: {p!r} at "
        f'{eqn.source.where()} is not linear in {_which(reached)} (JAX: "Transpose rule (for reverse-mode '
        f"differentiation) for '{p}' not implemented\").\n  fix: linear_transpose needs a linear function; for "
        "the transpose of a non-linear function's Jacobian at a point, use funcgrad.vjp(f, x)."
    )


def _which(reached) -> str:
    k = [i for i, r in enumerate(reached) if r]
    return f"operand {k[0]}" if len(k) == 1 else f"operands {k} together"


def _check_body(body: Graph, reached, name: str) -> None:
    check_linear(body, activity(body, reached), name)


def _check_scan(eqn: Eqn, reached, name: str) -> None:
    """A scan is linear if its body is, with the carry reached once any iteration's carry is."""
    body, nc, ncarry = eqn.params["jaxpr"], eqn.params["num_consts"], eqn.params["num_carry"]
    reached = list(reached)
    while True:
        act = activity(body, reached)
        carry_out = [act.is_active(v) for v in body.outputs[:ncarry]]
        merged = [a or b for a, b in zip(reached[nc : nc + ncarry], carry_out)]
        if merged == reached[nc : nc + ncarry]:
            break
        reached[nc : nc + ncarry] = merged
    check_linear(body, act, name)
