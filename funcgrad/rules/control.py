"""VJP rules for control flow: ``cond``, ``scan``, ``while``, and calls with no derivative.

The nested programs of these primitives are funcgrad ``Graph`` values in
``params``. Every rule differentiates them with funcgrad's own reverse sweep
(``funcgrad.core.nested``), run *inside* a ``lax`` control-flow construct so
that the backward pass stays one traceable program:

Outputs that received no cotangent arrive as ``None`` (``symbolic_zeros=True``)
and stay symbolic zeros inside the nested backward passes, so terms such as
0 * d sqrt(x)/dx at x = 0 for an unused output are never formed (JAX's
transpose and dead-code elimination skip them too, and give finite answers).

* ``cond``: a ``lax.switch`` on the same index over the branches' backward
  passes; each branch recomputes its own forward values first. The index gets
  no gradient.
* ``scan``: a scan in the same direction re-runs the body and stacks the carry
  each iteration started from (the residuals), then a scan in the opposite
  direction runs the body's backward pass on (consts, carry_i, x_i) and sums
  the consts' cotangents in its carry. ``fori_loop`` with static bounds is a
  scan with an integer counter, which gets no gradient.
* ``while``: refused where a perturbation reaches a floating carry (its trip count is
  dynamic, so the iterations cannot be stored), as JAX refuses it; the driver raises at the
  loop's source line. A loop only non-differentiated values flow through is not differentiated.

Each of the three says which of its outputs a perturbation reaches (``outputs_perturbed``: through
the branches, or at the carries' fixpoint), so an unperturbed carry or operand carries no gradient
and is a constant to the nested backward passes (a primitive that refuses differentiation, such
as Equinox's ``nondifferentiable``, is then not reached by it, as in JAX).

``checkpoint`` (``jax.checkpoint`` / ``jax.remat``) and its policies: ``funcgrad.rules.checkpoint``.
"""

from __future__ import annotations

import dataclasses
import weakref
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from funcgrad.core import jax_compat as jc
from funcgrad.core.accumulation import add_cotangents
from funcgrad.core.activity import Activity, loop_perturbed, outputs_reached
from funcgrad.core.backward_reads import ReadValues, backward_program, saved_shapes
from funcgrad.core.graph_edit import inputs_reached
from funcgrad.core.interpret import eval_graph, evaluate_saving, read_all
from funcgrad.core.ir import Graph, Var
from funcgrad.core.nested import differentiated, float_only, graph_backward, like, scatter_back, strong
from funcgrad.core.registry import defnovjp, defvjp, lookup
from funcgrad.core.sweep import Backward, checked_activity, forwards
from funcgrad.errors import NonDifferentiableError, UnsupportedPrimitiveError

# ------------------------------------------------------------------------ cond


def cond_outputs_perturbed(perturbed, *, branches, **params):
    """An output is perturbed if a perturbed operand reaches it in some branch (the index is an integer)."""
    per_branch = [outputs_reached(g, perturbed[1:]) for g in branches]
    return [any(flags) for flags in zip(*per_branch, strict=True)]


@defvjp("cond", symbolic_zeros=True, perturbed=True, outputs_perturbed=cond_outputs_perturbed)
def cond_vjp(ct, index, *operands, out, branches, perturbed, branches_platforms=None, **params):
    """ct_operands = the backward sweep of the branch that ran (index), over its operands"""
    # only the branch that ran contributes: switch over the branches' backward passes (a
    # lax.platform_dependent cond keeps its platforms: only the compiled-for platform's branch is built);
    # operands no perturbation reaches are constants to the branches' backward passes
    cts = float_only(ct, branches[0].out_types)
    wrt = [w and p for w, p in zip(differentiated(branches[0].in_types), perturbed[1:], strict=True)]

    def branch_backward(k, graph):
        if branches_platforms is not None and k != jc.platform_branch(branches_platforms):
            if not _has_rules(graph, wrt):
                # another platform's branch, which lowering for this one drops; its primitives may
                # have no rule (JAX differentiates only the branch it lowers). Were it ever compiled,
                # its cotangents are NaN: loud, never a plausible zero.
                nan = [jnp.full(t.shape, jnp.nan, t.dtype) for t, w in zip(graph.in_types, wrt) if w]
                return lambda ops, cts: nan
        return lambda ops, cts: graph_backward(graph, ops, cts, wrt)

    if not any(wrt):
        return [None] * (1 + len(operands))
    backward = [branch_backward(k, g) for k, g in enumerate(branches)]
    ct_ops = jc.switch(index, backward, [list(operands), cts], branches_platforms)
    return [None, *scatter_back(ct_ops, wrt)]


def _has_rules(graph: Graph, wrt) -> bool:
    try:
        checked_activity(graph, wrt)
    except (UnsupportedPrimitiveError, NonDifferentiableError):
        return False
    return True


# ------------------------------------------------------------------------ scan


def _stops_gradient(primitive: str) -> bool:
    record = lookup(primitive)
    return record is not None and record.stops_gradient


def _live_carries(body: Graph, num_consts: int, num_carry: int, ct_carry: list, ct_ys: list) -> list[bool]:
    """Which carries' cotangents can be nonzero: those whose final value received one, and those some
    live carry or received ``ys`` cotangent depends on in the body (a fixpoint, as JAX's scan DCE)."""
    live = [c is not None for c in ct_carry]
    ys_live = [c is not None for c in ct_ys]
    while True:
        reached = inputs_reached(body, live + ys_live, cut=_stops_gradient)
        new = [a or b for a, b in zip(live, reached[num_consts : num_consts + num_carry])]
        if new == live:
            return live
        live = new


def _scan_perturbed(body: Graph, num_consts: int, num_carry: int, perturbed) -> list[bool]:
    """The body's input flags: consts and xs as given, carries at their fixpoint."""
    carry = slice(num_consts, num_consts + num_carry)
    return loop_perturbed(body, perturbed, carry, slice(0, num_carry))


def scan_outputs_perturbed(perturbed, *, jaxpr, num_consts, num_carry, **params):
    """Final carries: perturbed at the fixpoint (the initial value, for a zero-length scan, included);
    stacked ys: those the body perturbs from its perturbed inputs."""
    flags = _scan_perturbed(jaxpr, num_consts, num_carry, perturbed)
    return [*flags[num_consts : num_consts + num_carry], *outputs_reached(jaxpr, flags)[num_carry:]]


@dataclasses.dataclass(frozen=True)
class _StoredScan:
    """A scan whose body holds a ``jax.checkpoint``: its forward pass stores, per iteration, what the
    body's backward pass reads (as JAX's scan stores its residuals), so the checkpoint's policy decides."""

    activity: Activity
    stacked: tuple[Var, ...]  # body values stored per iteration (carries in and intermediates)
    saved_trees: tuple[tuple[int, Any], ...]  # (id(eqn), structure) of what inner forwards saved


_stored_plans: weakref.WeakKeyDictionary[Graph, dict] = weakref.WeakKeyDictionary()


def _stored_scan(body: Graph, num_consts: int, num_carry: int, perturbed) -> _StoredScan | None:
    """The plan of a scan whose body the user checkpointed (``jax.remat`` on the body); None for any other
    scan, whose backward pass evaluates each iteration again from the carry it started from."""
    per_body = _stored_plans.setdefault(body, {})
    wrt = tuple(_scan_perturbed(body, num_consts, num_carry, perturbed))
    key = (num_consts, num_carry, wrt)
    if key in per_body:
        return per_body[key]
    plan = None
    if any(e.primitive == "checkpoint" for e in body.eqns):
        act = checked_activity(body, wrt)
        specs = saved_shapes(act)
        ct_slots = [k for k, t in enumerate(body.out_types) if t.is_float]
        program = backward_program(body, act, ct_slots, [k for k, w in enumerate(wrt) if w], specs)
        xs_and_consts = {id(v) for k, v in enumerate(body.inputs) if k < num_consts or k >= num_consts + num_carry}
        stacked = tuple(v for v in program.read_vars() if id(v) not in xs_and_consts)
        trees = tuple((k, jax.tree_util.tree_structure(spec)) for k, spec in specs.items())
        plan = _StoredScan(act, stacked, trees)
    per_body[key] = plan
    return plan


def scan_forward(*args, bind, jaxpr, num_consts, num_carry, length, reverse, perturbed, unroll=1, **params):
    """The forward pass of an active scan: for a checkpointed body, the outputs and, stacked over the
    iterations, what the body's backward pass reads (the checkpoint's inputs and the values its policy
    saves); for any other body, the outputs alone."""
    body = jaxpr
    plan = _stored_scan(body, num_consts, num_carry, perturbed)
    if plan is None:
        return bind(*args), None
    consts = list(args[:num_consts])
    carry_t = body.in_types[num_consts : num_consts + num_carry]
    runs = forwards(plan.activity)

    def step(carry, x):
        env, saved = evaluate_saving(body, [*consts, *carry, *x], runs)
        outs = read_all(env, body.outputs)
        leaves = [jax.tree_util.tree_leaves(saved.get(k)) for k, _ in plan.saved_trees]
        new_carry = [strong(c, t) for c, t in zip(outs[:num_carry], carry_t)]
        return new_carry, (outs[num_carry:], [env[v] for v in plan.stacked], leaves)

    init = [strong(c, t) for c, t in zip(args[num_consts : num_consts + num_carry], carry_t)]
    xs = list(args[num_consts + num_carry :])
    final, (ys, stacked, leaves) = lax.scan(step, init, xs, length=length, reverse=reverse, unroll=unroll)
    return [*final, *ys], (stacked, leaves)


def _stored_backward(plan: _StoredScan, body: Graph, consts, num_carry: int, wrt, saved):
    """One iteration's backward pass from what the forward pass stored for it (and what it scans over)."""
    n_consts = len(consts)

    def backward(x, cts, step_stacked, step_leaves):
        env = ReadValues()
        env.update(zip(body.constvars, body.consts))
        env.update(zip(body.inputs[:n_consts], consts))
        env.update(zip(body.inputs[n_consts + num_carry :], x))
        env.update(zip(plan.stacked, step_stacked))
        rules_saved = {k: jax.tree_util.tree_unflatten(t, ls) for (k, t), ls in zip(plan.saved_trees, step_leaves)}
        in_cts = Backward(body, env, plan.activity, saved=rules_saved)(cts)
        carry_in = [env[v] for v in body.inputs[n_consts : n_consts + num_carry]]
        args = [*consts, *carry_in, *x]
        return [like(c, a, t) for a, t, c, w in zip(args, body.in_types, in_cts, wrt) if w]

    return backward, saved


@defvjp("scan", symbolic_zeros=True, perturbed=True, forward=scan_forward, outputs_perturbed=scan_outputs_perturbed)
def scan_vjp(ct, *args, out, jaxpr, num_consts, num_carry, length, reverse, perturbed, saved=None, unroll=1, **params):
    """ct_consts, ct_init, ct_xs = a reversed scan of the body's backward sweep; consts' cotangents summed over the steps"""
    body = jaxpr
    consts = list(args[:num_consts])
    init = list(args[num_consts : num_consts + num_carry])
    xs = list(args[num_consts + num_carry :])
    types = body.in_types
    const_t, carry_t = types[:num_consts], types[num_consts : num_consts + num_carry]
    # an input no perturbation reaches (a carry: at the fixpoint) is a constant to the body's backward pass
    reach = _scan_perturbed(body, num_consts, num_carry, perturbed)
    wrt = [w and p for w, p in zip(differentiated(types), reach, strict=True)]
    wrt_const, wrt_carry, wrt_x = (
        wrt[:num_consts],
        wrt[num_consts : num_consts + num_carry],
        wrt[num_consts + num_carry :],
    )
    cts = float_only(ct, body.out_types)
    ct_carry, ct_ys = cts[:num_carry], cts[num_carry:]
    # a carry no received cotangent depends on keeps a symbolic zero throughout: it is left out of the
    # backward loop and treated as a constant by the body's backward pass (exact: it reaches no live output)
    live = _live_carries(body, num_consts, num_carry, ct_carry, ct_ys)
    wrt_carry = [w and k for w, k in zip(wrt_carry, live)]
    wrt = [*wrt_const, *wrt_carry, *wrt_x]

    plan = _stored_scan(body, num_consts, num_carry, perturbed) if saved is not None else None
    if plan is not None:
        # a checkpointed body: the forward pass stored what each iteration's backward pass reads
        iteration_backward, stored = _stored_backward(plan, body, consts, num_carry, wrt, saved)
    else:
        # 1. run the loop again, stacking the carry each iteration starts from (the residuals)
        def forward(carry, x):
            outs = eval_graph(body, *consts, *carry, *x)
            return [strong(c, t) for c, t in zip(outs[:num_carry], carry_t)], carry

        init = [strong(c, t) for c, t in zip(init, carry_t)]
        _, stored = lax.scan(forward, init, xs, length=length, reverse=reverse, unroll=unroll)

        def iteration_backward(x, cts, carry, _):
            return graph_backward(body, [*consts, *carry, *x], cts, wrt)

    # 2. walk the iterations backwards; the consts' cotangents add up in the carry
    def backward(acc, step):
        ct_consts, ct_carry = acc
        stored_step, x, ct_y = step
        full_ct_carry = scatter_back(ct_carry, wrt_carry)
        step_a, step_b = stored_step if plan is not None else (stored_step, None)
        in_cts = iteration_backward(x, [*full_ct_carry, *ct_y], step_a, step_b)
        n_c, n_k = sum(wrt_const), sum(wrt_carry)
        step_consts, step_carry, step_x = in_cts[:n_c], in_cts[n_c : n_c + n_k], in_cts[n_c + n_k :]
        ct_consts = [add_cotangents(a, b) for a, b in zip(ct_consts, step_consts)]
        return (ct_consts, step_carry), step_x

    acc0 = (
        [like(None, c, t) for c, t, w in zip(consts, const_t, wrt_const) if w],
        [like(c, x, t) for c, x, t, w in zip(ct_carry, init, carry_t, wrt_carry) if w],
    )
    (ct_consts, ct_init), ct_xs = lax.scan(
        backward, acc0, (stored, xs, ct_ys), length=length, reverse=not reverse, unroll=unroll
    )
    return [*scatter_back(ct_consts, wrt_const), *scatter_back(ct_init, wrt_carry), *scatter_back(ct_xs, wrt_x)]


# ----------------------------------------------------------------------- while


def while_outputs_perturbed(perturbed, *, body_jaxpr, cond_nconsts, body_nconsts, **params):
    """The carries at the fixpoint of the body (the condition's consts perturb nothing: it returns a bool)."""
    body_in = list(perturbed[cond_nconsts:])
    n = len(body_in) - body_nconsts
    flags = loop_perturbed(body_jaxpr, body_in, slice(body_nconsts, body_nconsts + n), slice(0, n))
    return flags[body_nconsts:]


# JAX's own message starts every refusal (ValueError there; funcgrad's NonDifferentiableError is one too),
# so code that matches JAX's text (assertRaisesRegex) matches funcgrad's
defnovjp(
    "while",
    "Reverse-mode differentiation does not work for lax.while_loop or lax.fori_loop with dynamic "
    "start/stop values (JAX refuses it too): the number of iterations is only known at run time, so "
    "the values of every iteration cannot be kept for the backward pass.\n  fix: use lax.scan, or "
    "lax.fori_loop with static (Python int) bounds, which becomes a scan; or wrap the loop in "
    "jax.custom_vjp (e.g. implicit differentiation of a fixed point). Loops through which only "
    "non-differentiated values flow (a differentiated value that only decides when to stop, an "
    "integer counter) are fine.",
    outputs_perturbed=while_outputs_perturbed,
)


# ----------------------------------------------------------------- other calls


defnovjp(
    "custom_vmap_call",
    "Linearization failed to produce known values for all output primals (JAX's error): "
    "jax.custom_batching.custom_vmap functions cannot be reverse-differentiated, in JAX either.\n  "
    "fix: wrap the function in jax.custom_vjp as well, or differentiate the function without its "
    "custom_vmap wrapper.",
)
defnovjp(
    "composite",
    "JVP rule for composite not implemented. You can use `jax.custom_jvp` to add support. See "
    "https://docs.jax.dev/en/latest/_autosummary/jax.custom_jvp.html (JAX's words: lax.composite has no "
    "derivative rule there either).\n  fix: wrap the composite in jax.custom_jvp or jax.custom_vjp, or call "
    "its decomposition directly when differentiating.",
)


# ------------------------------------------------------------------- callbacks

_CALLBACK_FIX = (
    "JAX cannot differentiate through a host callback either.\n  fix: wrap the function that calls "
    "the callback in jax.custom_jvp or jax.custom_vjp and give its derivative, or stop the gradient "
    "(lax.stop_gradient) on its inputs if none is needed."
)
defnovjp("pure_callback", "Pure callbacks do not support JVP: pure_callback has no derivative. " + _CALLBACK_FIX)
defnovjp("io_callback", "IO callbacks do not support JVP: io_callback has no derivative. " + _CALLBACK_FIX)
defnovjp(
    "ffi_call",
    "Differentiation rule for 'ffi_call' not implemented: a foreign function (jax.ffi.ffi_call) has no "
    "derivative (JAX cannot differentiate it either).\n  fix: wrap the call in jax.custom_jvp or "
    "jax.custom_vjp and give its derivative.",
)
