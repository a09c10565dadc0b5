"""Sensitivities: dL/dz for named intermediates z, the lecture's "upstream gradient".

``funcgrad.sensitivities(loss)(*args)`` answers: if the value z were nudged by
dz, how much would the loss move? For every ``funcgrad.tag``-ged value z (or
every intermediate, with ``every=True``) it returns dL/dz, shaped like z.

Definition (and how it is computed): the graph of ``loss`` is rewritten so that
each chosen value z is replaced, for all its uses, by ``z + p_z`` where ``p_z``
is a new input (``funcgrad.core.perturbation``); dL/dz is funcgrad's gradient
with respect to ``p_z`` at ``p_z = 0``. It is therefore exactly JAX's gradient of
the loss with respect to a zero perturbation added at that point. Tags are
identities, so a function with tags costs nothing extra when this is not used.

A tag inside a loop body (``lax.scan``, ``lax.fori_loop`` with static bounds)
is one value per iteration: its perturbation is scanned over, and dL/dz_t comes
back stacked over the iterations t, an RNN's vanishing-gradient picture.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable

import jax
import jax.numpy as jnp

from funcgrad.core.call import Call, fun_name, scalar_seed, trace_call
from funcgrad.core.ir import Eqn, Graph, Var, var_names
from funcgrad.core.perturbation import nested_tags, perturb, refusal
from funcgrad.core.sweep import vjp_graph
from funcgrad.errors import InputError


def sensitivities(fun: Callable, *, every: bool = False, has_aux: bool = False) -> Callable[..., dict]:
    """dL/dz for each tagged intermediate z of a scalar function ``fun`` (or each intermediate).

    Args:
      fun: a function returning a scalar loss (or ``(loss, aux)`` with ``has_aux``).
      every: also include every untagged floating-point intermediate of ``fun``'s own graph (not
        those inside loop bodies or branches), keyed by the name ``funcgrad.trace(fun)(*args)``
        prints for it (``"c"``, ``"d"``, ...).
      has_aux: ``fun`` returns ``(loss, aux)``; ``aux`` is ignored.

    Returns:
      A function of ``fun``'s arguments returning ``{label: dL/dz}`` in program order. A label
      used twice gets a suffix (``"h#2"``). Tags inside control flow are reached too:

      * in a ``lax.scan`` / ``lax.fori_loop`` (static bounds) body, dL/dz_t for every iteration,
        stacked: shape ``(length, *z.shape)``, indexed as the scan's ``xs`` (so also for
        ``reverse=True``); a scan in a scan gives ``(T_outer, T_inner, *z.shape)``;
      * in a ``lax.cond`` / ``lax.switch`` branch, dL/dz when that branch runs, zeros when it does not;
      * in a ``jax.checkpoint`` body, dL/dz.

      A tag inside a ``lax.while_loop`` (or ``fori_loop`` with traced bounds: not reverse-
      differentiable) or inside a ``custom_jvp`` / ``custom_vjp`` function (whose derivative is its
      rule) is left out, with a warning naming it and what to tag instead.
    """

    @functools.wraps(fun)
    def run(*args, **kwargs) -> dict:
        call = Call(fun, args, kwargs, argnums=(), allow_int=True)
        graph, out_tree = trace_call(call)
        chosen = _chosen(graph, every)
        if not chosen:
            raise InputError(
                f"{fun_name(fun)} has no tagged intermediate values.\n"
                "  fix: mark values with funcgrad.tag(z, 'name'), or pass every=True."
            )
        cts = perturbation_cotangents(call, graph, out_tree, [v for _, v in chosen], fun, has_aux)
        return {key: ct for (key, _), ct in zip(chosen, cts)}

    return run


def _chosen(graph: Graph, every: bool) -> list[tuple[str, Var]]:
    """(key, value) for each value whose sensitivity is asked for, in program order: the graph's own
    tagged (or, with ``every``, floating) values under their printed names, and the tagged values of the
    programs its equations hold (at any depth) under their labels, made unique."""
    names = var_names(graph)
    found: list[tuple[str | None, Var]] = []
    for e in graph.eqns:
        found += [(names[id(v)], v) for v in e.outputs if v.type.is_float and (e.primitive == "tag" or every)]
        found += [(None, v) for v in _nested_tags(e)]
    used = {key for key, _ in found if key is not None}
    chosen = []
    for key, v in found:
        if key is None:
            if not v.type.is_float:
                continue
            key, k = v.label, 2
            while key in used:
                key, k = f"{v.label}#{k}", k + 1
            used.add(key)
        chosen.append((key, v))
    return chosen


def _nested_tags(eqn: Eqn) -> list[Var]:
    """The tagged values inside ``eqn``'s programs that a perturbation can reach. Those it cannot (in a
    ``while`` loop, or a custom-derivative function, whose derivative is its rule) are left out, each
    with a warning that says why and what to tag instead."""
    reached, blocked = nested_tags(eqn)
    for v, holder in blocked:
        warnings.warn(f"funcgrad.sensitivities leaves it out: {refusal(holder, v)}", stacklevel=4)
    return reached


def perturbation_cotangents(call: Call, graph: Graph, out_tree, targets: list[Var], fun, has_aux: bool) -> list:
    """dL/dz for each value z of ``targets`` in ``graph`` (``call``'s graph, its outputs structured as
    ``out_tree``): funcgrad's gradient with respect to a zero perturbation added at z (zeros where no
    gradient reaches it), stacked over the iterations for a z inside a loop body. One forward and
    backward pass of the perturbed graph (``funcgrad.core.perturbation``)."""
    perturbed, _ = perturb(graph, targets)
    n = len(call.traced_idx)
    zeros = [jnp.zeros(p.type.shape, p.type.dtype) for p in perturbed.inputs[n:]]
    outs, backward = vjp_graph(perturbed, [*call.traced_values(), *zeros], [False] * n + [True] * len(zeros))
    out = jax.tree_util.tree_unflatten(out_tree, outs)
    loss = out[0] if has_aux else out
    seed = jax.tree_util.tree_leaves(scalar_seed(loss, fun))
    cts = backward([*seed, *[None] * (len(outs) - len(seed))])[n:]
    return [z if ct is None else ct for ct, z in zip(cts, zeros)]
