"""Sensitivities: dL/dz for named intermediates z, the lecture's "upstream gradient".

``funcgrad.sensitivities(loss)(*args)`` answers: if the value z were nudged by
dz, how much would the loss move? For every ``funcgrad.tag``-ged value z (or
every intermediate, with ``every=True``) it returns dL/dz, shaped like z.

Definition (and how it is computed): the graph of ``loss`` is rewritten so that
each chosen value z is replaced, for all its uses, by ``z + p_z`` where ``p_z``
is a new input; dL/dz is funcgrad's gradient with respect to ``p_z`` at
``p_z = 0``. It is therefore exactly ``jax.grad`` of the loss with respect to a
zero perturbation added at that point. Tags are identities, so a function with
tags costs nothing extra when this is not used.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp

from funcgrad.core.call import Call, fun_name, scalar_seed, trace_call
from funcgrad.core.graph_edit import perturb
from funcgrad.core.ir import var_names
from funcgrad.core.sweep import vjp_graph
from funcgrad.errors import InputError


def sensitivities(fun: Callable, *, every: bool = False, has_aux: bool = False) -> Callable[..., dict]:
    """dL/dz for each tagged intermediate z of a scalar function ``fun`` (or each intermediate).

    Args:
      fun: a function returning a scalar loss (or ``(loss, aux)`` with ``has_aux``).
      every: also include every untagged floating-point intermediate, keyed by the name
        ``funcgrad.trace(fun)(*args)`` prints for it (``"c"``, ``"d"``, ...).
      has_aux: ``fun`` returns ``(loss, aux)``; ``aux`` is ignored.

    Returns:
      A function of ``fun``'s arguments returning ``{label: dL/dz}`` in program order. A label
      used twice gets a suffix (``"h#2"``). Tags inside control flow (``scan``, ``cond``) or
      custom-derivative functions are not reached.
    """

    @functools.wraps(fun)
    def run(*args, **kwargs) -> dict:
        call = Call(fun, args, kwargs, argnums=(), allow_int=True)
        graph, out_tree = trace_call(call)
        names = var_names(graph)
        targets = [v for e in graph.eqns for v in e.outputs if v.type.is_float and (e.primitive == "tag" or every)]
        if not targets:
            raise InputError(
                f"{fun_name(fun)} has no tagged intermediate values.\n"
                "  fix: mark values with funcgrad.tag(z, 'name'), or pass every=True."
            )
        perturbed, _ = perturb(graph, targets)
        zeros = [jnp.zeros(v.type.shape, v.type.dtype) for v in targets]
        n = len(call.traced_idx)
        outs, backward = vjp_graph(perturbed, [*call.traced_values(), *zeros], [False] * n + [True] * len(targets))
        out = jax.tree_util.tree_unflatten(out_tree, outs)
        loss = out[0] if has_aux else out
        seed = jax.tree_util.tree_leaves(scalar_seed(loss, fun))
        cts = backward([*seed, *[None] * (len(outs) - len(seed))])[n:]
        return {
            names[id(v)]: jnp.zeros(v.type.shape, v.type.dtype) if ct is None else ct for v, ct in zip(targets, cts)
        }

    return run
