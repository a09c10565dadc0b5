"""Cotangents of the tagged values inside nested programs: one per iteration of a loop body.

The recorded sweep gives a cotangent for every value of the top-level graph; a value inside a
``lax.scan`` / ``fori_loop`` body is one value per iteration, which the scan's rule never hands
out. As ``funcgrad.sensitivities`` does, each reachable tag z inside a body (scan and static
``fori_loop`` bodies, ``cond``/``switch`` branches, ``checkpoint`` bodies) is replaced by z + p_z
(``funcgrad.core.perturbation``) and dC/dz is funcgrad's gradient with respect to p_z at 0: stacked
over the iterations, ``(T, *z.shape)``, for a loop (dC/dz_t for every t, the vanishing-gradient
picture of an RNN); for a branch, dC/dz when it runs and zeros when it does not.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from funcgrad.core.call import Call
from funcgrad.core.ir import Eqn, Graph, Var
from funcgrad.core.perturbation import nested_tags, refusal
from funcgrad.inspect.explorer.stats import Summary, summarize
from funcgrad.inspect.sensitivities import perturbation_cotangents


@dataclasses.dataclass(frozen=True)
class InnerCotangent:
    """dC/dz of a tag z inside the program of the top-level equation ``holder``."""

    var: Var
    holder: Eqn
    summary: Summary
    # |dC/dz_t|_2 for each iteration t (the leading axis), or None outside a loop (one value: a branch)
    per_iteration: tuple[float, ...] | None


def inner_cotangents(graph: Graph, out_tree, call: Call, fun, has_aux: bool) -> dict[int, InnerCotangent]:
    """``id(var) -> InnerCotangent`` for every reachable tag inside the programs of ``graph``'s equations
    (``call``'s graph, whose outputs have the pytree structure ``out_tree``): one more forward and
    backward pass, of the perturbed graph; nothing when there are no such tags."""
    # the tags a perturbation cannot reach (a while loop, a custom rule): ``unreached_tags`` says why
    holders = [(v, eqn) for eqn in graph.eqns for v in nested_tags(eqn)[0]]
    if not holders:
        return {}
    cts = perturbation_cotangents(call, graph, out_tree, [v for v, _ in holders], fun, has_aux)
    found = {}
    for (var, holder), ct in zip(holders, cts):
        ct = np.asarray(ct)
        summary = summarize(ct)
        if summary is None:
            continue
        stacked = ct.ndim > len(var.type.shape)
        per_iteration = None
        if stacked:
            flat = ct.reshape(ct.shape[0], -1).astype(np.float64)
            per_iteration = tuple(float(x) for x in np.sqrt(np.sum(flat * flat, axis=1)))
        found[id(var)] = InnerCotangent(var, holder, summary, per_iteration)
    return found


def unreached_tags(graph: Graph) -> dict[int, str]:
    """``id(var) -> why`` for the tags inside nested programs that a perturbation cannot reach (in a
    ``while`` loop, or a custom-derivative function, whose derivative is its rule): the page says why
    they have no numbers, as ``funcgrad.sensitivities`` warns."""
    return {id(v): str(refusal(holder, v)).splitlines()[0] for eqn in graph.eqns for v, holder in nested_tags(eqn)[1]}
