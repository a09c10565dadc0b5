"""VJP rules for user-defined derivatives: ``custom_jvp`` and ``custom_vjp`` functions.

``custom_jvp``: JAX's answer comes from the user's JVP rule, not from the primal
body (``jax.nn.relu`` at 0 has derivative 0 because its rule says so). That
rule is linear in the tangents, so its transpose, the VJP we need, is the VJP
of a linear map: funcgrad traces the rule into a graph and runs its own reverse
sweep over it with respect to the tangent inputs, at tangent zero.

``custom_vjp``: in the sweep's forward pass the user's ``fwd`` computes the primal
outputs and the residuals (the rule's ``forward``, as JAX runs it), then the
user's ``bwd`` maps the output cotangents to input cotangents.
"""

from __future__ import annotations

import contextvars

import jax
import jax.numpy as jnp
import numpy as np

from funcgrad.core import jax_compat as jc
from funcgrad.core.interpret import eval_graph
from funcgrad.core.nested import graph_vjp
from funcgrad.core.registry import defvjp
from funcgrad.errors import CustomVJPError, InputError, TracingError

# Inside the transpose of a JVP rule, a custom_jvp function applied to tangents is transposed
# through its primal body, not its own rule: the rule's tangent computation is linear, and JAX's
# partial evaluation drops the custom rule of such a call the same way. (A rule that calls the
# function itself, ``f.defjvp(lambda p, t: (f(*p), f(*t)))``, would otherwise recurse forever.)
_in_rule_transpose = contextvars.ContextVar("funcgrad_in_custom_jvp_transpose", default=False)


# symbolic_zeros: an output nobody used keeps a None cotangent, and the transpose of the rule's
# graph skips the tangent equations only it reaches (JAX's transpose does the same);
# perturbed: an input no differentiated value flows into gets a symbolic zero tangent, as in JAX
# (a rule registered with symbolic_zeros=True sees a SymbolicZero for it)
def _tangent_is_zero(call, num_consts, perturbed, symbolic_zeros) -> list[bool]:
    arg_types = [v.type for v in call.inputs[num_consts:]]
    # a rule without symbolic_zeros gets zeros (not SymbolicZero) for every float input's tangent
    return [not (t.is_float and (p or not symbolic_zeros)) for t, p in zip(arg_types, perturbed[num_consts:])]


def custom_jvp_call_forward(*primals, bind, call, jvp, num_consts, perturbed, symbolic_zeros=False, **params):
    """The forward pass of an active custom_jvp equation: evaluated as usual, and its JVP rule traced
    now, in program order, as JAX runs it, so that a check in the rule raises where JAX raises it
    (Equinox's nondifferentiable arguments refuse a tangent there, before later rules see one)."""
    if not _in_rule_transpose.get():
        jvp.graph(_tangent_is_zero(call, num_consts, perturbed, symbolic_zeros))  # memoized for the rule
    return bind(*primals), None


@defvjp("custom_jvp_call", symbolic_zeros=True, perturbed=True, forward=custom_jvp_call_forward)
def custom_jvp_call_vjp(ct, *primals, out, call, jvp, num_consts, perturbed, saved, symbolic_zeros=False, **params):
    """ct_args = the transpose of the user's JVP rule at the primals, applied to ct"""
    if _in_rule_transpose.get():
        return graph_vjp(call, primals, perturbed, ct)
    args = primals[num_consts:]
    arg_types = [v.type for v in call.inputs[num_consts:]]
    arg_perturbed = perturbed[num_consts:]
    tangent_is_zero = _tangent_is_zero(call, num_consts, perturbed, symbolic_zeros)
    rule, out_zeros = jvp.graph(tangent_is_zero)
    _check_tangent_shapes(rule, call, out_zeros, params.get("name") or jvp.name)
    # zeros_like keeps each primal's placement (inside shard_map: the axes it varies over),
    # which the rule's graph was traced with
    tangents = [jnp.zeros_like(a, dtype=t.dtype) for a, t, z in zip(args, arg_types, tangent_is_zero) if not z]
    wrt = [False] * len(args) + [p for p, z in zip(arg_perturbed, tangent_is_zero) if not z]
    tangent_cts = [c for c, z in zip(ct, out_zeros) if not z]
    token = _in_rule_transpose.set(True)
    try:
        in_cts = graph_vjp(rule, [*args, *tangents], wrt, [None] * len(out_zeros) + tangent_cts)[len(args) :]
    finally:
        _in_rule_transpose.reset(token)
    it = iter(in_cts)
    return [None] * num_consts + [None if z else next(it) for z in tangent_is_zero]


def _check_tangent_shapes(rule, call, out_zeros, name: str) -> None:
    # jax.vmap of a custom_jvp function whose output ignores the batched input stages an unbatched
    # output with a batched tangent; its cotangent has been summed over the batch by then, so no
    # exact answer exists (JAX's own grad of jit of such a function fails too)
    n = len(out_zeros)
    tangent_types = iter(v.type for v in rule.outputs[n:])
    for t, z in zip(call.out_types, out_zeros):
        tt = None if z else next(tangent_types)
        if tt is not None and tt.shape != t.shape:
            raise TracingError(
                f"the JVP rule of the custom_jvp function {name!r} returns a tangent of shape "
                f"{tt.shape} for an output of shape {t.shape}: under jax.vmap its output does not depend "
                "on the batched input, but the rule's tangent does. funcgrad (like jax.grad of jax.jit) "
                "sees the function after vmap, where that output's cotangent is already summed over the "
                "batch.\n  fix: make the output depend on the input (e.g. jnp.zeros_like(x) instead of "
                "np.zeros(x.shape)), so that vmap batches it as well"
            )


# the fix for a custom_vjp differentiated through a value it (or its fwd) closes over
_CLOSED_OVER_FIX = (
    "  fix: pass that value to the function as an argument and give its cotangent in bwd, "
    "or use jax.closure_convert on the function"
)


def custom_vjp_call_forward(
    *primals, call, vjp, num_consts, perturbed, fwd_closure=(), fwd_closure_lost=False, **params
):
    """The forward pass of an active custom_vjp equation, as JAX runs it: the user's fwd computes the
    primal outputs and the residuals (so a second derivative differentiates fwd's computation of
    the outputs, and the custom bwd applies only to the cotangents of the first)."""
    if any(perturbed[:num_consts]):
        # JAX's sentence (its CustomVJPException is internal to JAX's AD, so the class is funcgrad's)
        raise CustomVJPError(
            "Detected differentiation of a custom_vjp function with respect to a closed-over value. That "
            "isn't supported because the custom VJP rule only specifies how to differentiate the custom_vjp "
            f"function with respect to explicit input parameters. (The function: {vjp.name!r}.)\n" + _CLOSED_OVER_FIX
        )
    if fwd_closure_lost:
        raise TracingError(
            f"The fwd rule of the custom_vjp function {vjp.name!r} closes over values that the traced "
            f"function computed, and with JAX {jax.__version__} funcgrad cannot find them in the traced "
            "program (older JAX releases rename the variables of a finished trace; JAX 0.10 keeps them).\n  fix: pass "
            "them to the function as arguments (nondiff_argnums for values that are not differentiated), "
            "use jax.closure_convert on fwd, or use a newer JAX"
        )
    closed = len(primals) - len(fwd_closure)  # the values fwd closes over come last
    if any(perturbed[closed:]):
        # jax.grad's fwd sees a JVP tracer there, and raises UnexpectedTracerError
        raise CustomVJPError(
            f"The fwd rule of the custom_vjp function {vjp.name!r} closes over a value that is being "
            "differentiated. Its derivative would go through the closure, which the custom VJP rule "
            "does not give.\n" + _CLOSED_OVER_FIX
        )
    args = primals[num_consts:closed]
    fwd = vjp.fwd_graph(list(perturbed[num_consts:closed]), fwd_closure)
    residuals, outs = vjp.residuals(eval_graph(fwd, *primals[closed:], *args), primals[:num_consts], args)
    return outs, residuals


# perturbed: the user's fwd is traced for the inputs a differentiated value flows into (JAX's
# ``CustomVJPPrimal.perturbed``); symbolic_zeros: an unused output's cotangent reaches the user's
# bwd as JAX's ``SymbolicZero`` when the function asked for them, else as zeros
@defvjp(
    "custom_vjp_call",
    symbolic_zeros=True,
    perturbed=True,
    forward=custom_vjp_call_forward,
    runs_without_cotangent=True,  # JAX runs the user's bwd whenever the equation is differentiated
)
def custom_vjp_call_vjp(ct, *primals, out, call, vjp, num_consts, perturbed, saved, fwd_closure=(), **params):
    """ct_args = bwd(residuals, ct), the user's own rule (fwd computed the residuals)"""
    if saved is None:  # the forward values came from a concrete trace: run fwd for the residuals
        _, saved = custom_vjp_call_forward(
            *primals, call=call, vjp=vjp, num_consts=num_consts, perturbed=perturbed, fwd_closure=fwd_closure, **params
        )
    args = primals[num_consts : len(primals) - len(fwd_closure)]
    arg_types = [v.type for v in call.inputs[num_consts:]]
    ct = [_output_cotangent(c, t, vjp.symbolic_zeros) for c, t in zip(ct, call.out_types)]
    cts_in = vjp.bwd(saved, ct)
    if len(cts_in) != len(args):
        raise InputError(
            f"the custom_vjp backward rule of {vjp.name!r} returned {len(cts_in)} cotangents for "
            f"{len(args)} primal inputs\n  fix: return a tuple with one entry per primal input (None for no gradient)"
        )
    cts_args = [c if t.is_float else None for c, t in zip(cts_in, arg_types)]
    return [None] * num_consts + cts_args + [None] * len(fwd_closure)


def _output_cotangent(ct, t, symbolic: bool):
    # an integer or boolean output's cotangent has dtype float0 (JAX's convention for the user's bwd)
    dtype = t.dtype if t.is_float else jax.dtypes.float0
    if ct is not None and t.is_float:
        return ct
    if symbolic:
        return jc.symbolic_zero(t.shape, dtype)
    return jnp.zeros(t.shape, dtype) if t.is_float else np.zeros(t.shape, dtype)


# JAX's "hijax" primitives (``jax._src.hijax.VJPHiPrimitive``): each carries its own reverse-mode
# interface, which funcgrad calls as JAX's linearization and transpose do: vjp_fwd in the forward
# pass (the primal outputs and residuals; the second-order convention of custom_vjp above), vjp_bwd
# in the backward one. ``jax.custom_vjp`` under ``jax_custom_vjp3=True`` (JAX's next custom_vjp)
# binds one.
def call_hi_primitive_forward(*primals, _prim, perturbed, **params):
    return jc.hi_primitive_forward(_prim, perturbed, primals)


@defvjp("call_hi_primitive", symbolic_zeros=True, perturbed=True, forward=call_hi_primitive_forward)
def call_hi_primitive_vjp(ct, *primals, out, _prim, perturbed, saved, **params):
    """ct_args = the primitive's own backward rule (JAX's hi-primitive bwd) applied to ct"""
    if saved is None:  # the forward values came from a concrete trace
        _, saved = jc.hi_primitive_forward(_prim, perturbed, primals)
    return jc.hi_primitive_backward(_prim, perturbed, saved, ct)
