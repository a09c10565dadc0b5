"""The VJP rule of ``checkpoint`` (``jax.checkpoint`` / ``jax.remat``), with its ``policy`` honoured.

A checkpoint's body is evaluated in the forward pass, and the backward pass evaluates again what it
needs of it, instead of keeping the body's intermediates from the forward pass. The policy decides
what is kept after all, as JAX's partial evaluation decides it:

1. the body's backward pass is traced once (``funcgrad.core.backward_reads``) to find the body values
   funcgrad's rules read;
2. walking the body backwards from those values, an equation whose value is needed is either
   *saved* (the policy returns True / ``Saveable``: the forward pass keeps its output), *offloaded*
   (``Offloadable(src, dst)``: kept in memory kind ``dst`` and brought back to ``src``) or
   *recomputed* (False / ``Recompute``: its own inputs become needed in turn). The body's inputs are
   the checkpoint's inputs, which the outer sweep keeps anyway.

So a saveable value that no rule reads is not kept, and the residuals are the checkpoint's inputs
plus the saved values (``funcgrad.saved_residuals`` lists them). The policy is called as JAX calls
it, ``policy(primitive, *input avals, **params)``, on each equation of the body as funcgrad traced
it (jitted functions inlined; a nested scan, cond or custom rule is one equation). ``policy=None``
saves nothing.

``checkpoint_name(x, name)`` (the ``name`` primitive) is the identity; its output is what
``save_only_these_names`` and its kin save, and a saved name also stands for its input (a rule that
reads the unnamed value reads the saved one, so nothing is recomputed for it).

A scan whose body holds a checkpoint stores each iteration's reads (``funcgrad.rules.control``), so
the policy also decides what a scan over checkpointed layers keeps per iteration.
"""

from __future__ import annotations

import dataclasses
import weakref

from jax import lax

from funcgrad.core import jax_compat as jc
from funcgrad.core.activity import Activity, outputs_reached
from funcgrad.core.backward_reads import ReadValues, backward_program
from funcgrad.core.interpret import evaluate, read_all
from funcgrad.core.ir import Eqn, Graph, Var
from funcgrad.core.nested import float_only
from funcgrad.core.registry import defvjp
from funcgrad.core.sweep import Backward, checked_activity


@dataclasses.dataclass(frozen=True)
class RematPlan:
    """What one checkpoint's forward pass keeps and what its backward pass evaluates again."""

    wrt: tuple[bool, ...]  # which body inputs are differentiated
    activity: Activity
    saved: tuple[Var, ...]  # body values kept by the forward pass, in program order
    offload: tuple[tuple[str, str] | None, ...]  # per saved value: (src, dst) memory kinds, or None
    recomputed: tuple[Eqn, ...]  # body equations the backward pass evaluates again, in program order
    producers: dict  # id(var) -> the body equation that computes it
    # (x, y) for each saved y = checkpoint_name(x): x is the same value, so it is not recomputed either
    aliases: tuple[tuple[Var, Var], ...] = ()


_plans: weakref.WeakKeyDictionary[Graph, dict] = weakref.WeakKeyDictionary()


def remat_plan(body: Graph, perturbed, policy) -> RematPlan:
    """The plan for a checkpoint of ``body`` whose inputs ``perturbed[i]`` carry a gradient, under ``policy``
    (decided once per (body, flags, policy) and kept while the body lives)."""
    wrt = tuple(bool(p) and t.is_float for p, t in zip(perturbed, body.in_types))
    per_body = _plans.setdefault(body, {})
    key = (wrt, id(policy))
    found = per_body.get(key)
    if found is None or found[0] is not policy:
        found = per_body[key] = (policy, _plan(body, wrt, policy))  # the policy is kept: its id stays its own
    return found[1]


def _plan(body: Graph, wrt: tuple[bool, ...], policy) -> RematPlan:
    act = checked_activity(body, wrt)
    producers = {id(v): e for e in body.eqns for v in e.outputs}
    if not act.eqns:
        return RematPlan(wrt, act, (), (), (), producers)
    ct_slots = [k for k, t in enumerate(body.out_types) if t.is_float]
    program = backward_program(body, act, ct_slots, [k for k, w in enumerate(wrt) if w])
    needed = {id(v) for v in program.read_vars() if id(v) in producers}
    saved, offload, recomputed, aliases = [], [], [], []
    aliased = set()
    for eqn in reversed(body.eqns):
        outs = [v for v in eqn.outputs if id(v) in needed and id(v) not in aliased]
        if not outs:
            continue
        primitive = getattr(eqn.impl, "primitive", None)
        try:
            how, kinds = jc.remat_decision(policy, primitive, [a.type for a in eqn.inputs], dict(eqn.params))
        except Exception as err:
            err.add_note(
                f"(raised by the jax.checkpoint policy {policy!r}, asked about {eqn.primitive!r} "
                f"at {eqn.source.where()})"
            )
            raise
        if how == "recompute":
            recomputed.append(eqn)
            needed.update(id(a) for a in eqn.inputs if isinstance(a, Var) and id(a) in producers)
            continue
        saved += reversed(outs)
        offload += [kinds] * len(outs)
        (x,) = eqn.inputs if eqn.primitive == "name" else (None,)
        if isinstance(x, Var) and id(x) in needed:
            # checkpoint_name is the identity: a rule that reads its input (tanh's reads its own
            # output, the value named) reads the saved value, and nothing is recomputed for it
            aliases.append((x, outs[0]))
            aliased.add(id(x))
    return RematPlan(
        wrt, act, tuple(saved[::-1]), tuple(offload[::-1]), tuple(recomputed[::-1]), producers, tuple(aliases)
    )


def checkpoint_forward(*args, bind, perturbed, body, policy=None, **params):
    """The forward pass of an active checkpoint: the body's outputs, and the values its policy saves."""
    plan = remat_plan(body, perturbed, policy)
    if not plan.saved:
        return bind(*args), ()
    env = evaluate(body, args)
    kept = [env[v] if o is None else jc.to_memory_kind(env[v], o[1]) for v, o in zip(plan.saved, plan.offload)]
    return read_all(env, body.outputs), tuple(kept)


def checkpoint_outputs_perturbed(perturbed, *, body, **params):
    """The body's outputs that its perturbed inputs reach."""
    return outputs_reached(body, perturbed)


@defvjp(
    "checkpoint",
    symbolic_zeros=True,
    perturbed=True,
    forward=checkpoint_forward,
    outputs_perturbed=checkpoint_outputs_perturbed,
)
def checkpoint_vjp(ct, *args, out, body, perturbed, saved, policy=None, prevent_cse=True, **params):
    """ct_args = the sweep of ct back through the body, re-running the forward values the policy did not save"""
    # without ``saved`` (the forward values came from a concrete trace) nothing was kept: recompute it all
    plan = remat_plan(body, perturbed, policy if saved is not None else None)
    if not any(plan.wrt):
        return [None] * len(args)
    kept = [x if o is None else jc.to_memory_kind(x, o[0]) for x, o in zip(saved or (), plan.offload)]
    if prevent_cse:
        # keep XLA from merging the recomputation with the forward pass (JAX's remat does the same).
        # One barrier per value: a barrier joins its operands' varying axes inside shard_map.
        args = [lax.optimization_barrier(a) for a in args]
        kept = [lax.optimization_barrier(x) for x in kept]
    env = ReadValues()
    env.update(zip(body.constvars, body.consts))
    env.update(zip(body.inputs, args))
    env.update(zip(plan.saved, kept))
    env.update((x, env[y]) for x, y in plan.aliases)
    for eqn in plan.recomputed:
        env.update(zip(eqn.outputs, eqn.impl(*read_all(env, eqn.inputs))))
    in_cts = Backward(body, env, plan.activity)(float_only(ct, body.out_types))
    return [c if w else None for c, w in zip(in_cts, plan.wrt)]


@defvjp("name")
def name_vjp(ct, x, *, out, **params):
    """ct_x = ct (checkpoint_name is the identity)"""
    # checkpoint_name(x, name) is the identity; the name only tags a value for remat policies
    return (ct,)
