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
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from funcgrad.core.call import Call, scalar_seed
from funcgrad.core.ir import Eqn, Graph, Var
from funcgrad.core.perturbation import perturb, refusal, threads_through
from funcgrad.core.sweep import vjp_graph
from funcgrad.inspect.explorer.stats import Summary, summarize
from funcgrad.inspect.sensitivities import _nested_tags


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
    holders: list[tuple[Var, Eqn]] = []
    with warnings.catch_warnings():
        # a tag a perturbation cannot reach (a while loop, a custom rule): the page shows it without numbers
        warnings.simplefilter("ignore")
        for eqn in graph.eqns:
            holders += [(v, eqn) for v in _nested_tags(eqn)]
    if not holders:
        return {}
    perturbed, _ = perturb(graph, [v for v, _ in holders])
    n = len(call.traced_idx)
    zeros = [jnp.zeros(p.type.shape, p.type.dtype) for p in perturbed.inputs[n:]]
    outs, backward = vjp_graph(perturbed, [*call.traced_values(), *zeros], [False] * n + [True] * len(zeros))
    out = jax.tree_util.tree_unflatten(out_tree, outs)
    loss = out[0] if has_aux else out
    seed = jax.tree_util.tree_leaves(scalar_seed(loss, fun))
    cts = backward([*seed, *[None] * (len(outs) - len(seed))])[n:]
    found = {}
    for (var, holder), ct, zero in zip(holders, cts, zeros):
        ct = np.asarray(zero if ct is None else ct)
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
    found: dict[int, str] = {}
    for eqn in graph.eqns:
        found.update(_unreached(eqn))
    return found


def _unreached(eqn: Eqn) -> dict[int, str]:
    if not threads_through(eqn):
        return {id(v): str(refusal(eqn, v)).splitlines()[0] for v in _tags_below(eqn)}
    found = {}
    for sub in eqn.subgraphs():
        for inner in sub.eqns:
            found.update(_unreached(inner))
    return found


def _tags_below(eqn: Eqn) -> list[Var]:
    tags = []
    for sub in eqn.subgraphs():
        for inner in sub.eqns:
            if inner.primitive == "tag":
                tags += [v for v in inner.outputs if v.type.is_float]
            tags += _tags_below(inner)
    return tags
