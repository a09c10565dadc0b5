"""The graph of a gradient computation: forward equations, then the backward ones, each marked.

``funcgrad.backward_graph(f)(*args)`` traces the whole gradient computation of
``f`` (funcgrad's own reverse sweep, run on tracers) into one ``Graph``:

* the forward equations come first, with the sources and scopes of
  ``funcgrad.trace(f)(*args)`` and their variables labelled with the names that
  printout gives them (``a, b, c, ...`` or the ``funcgrad.tag`` labels);
* every equation a VJP rule emits is in the name scope ``backward/ct[x,w]``,
  where ``x, w`` are the forward variables whose cotangents (dC/dx, dC/dw) that
  rule computes; the cotangent sums of fan-out and the seed dC/dC = 1 are in
  ``backward``;
* equations whose results are unused (e.g. the cotangent of a data input that
  is not differentiated) are dropped, as XLA would drop them.

The graph's outputs are the loss followed by the gradient leaves of the
differentiated arguments.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp

from funcgrad.core.call import Call, argnums_tuple, scalar_seed, trace_call
from funcgrad.core.graph_edit import prune, relabel
from funcgrad.core.hooks import SweepHooks
from funcgrad.core.ir import Eqn, Graph, var_names
from funcgrad.core.sweep import vjp_graph
from funcgrad.core.tracer import trace_flat

BACKWARD_SCOPE = "backward"


def is_backward(eqn: Eqn) -> bool:
    """Whether ``eqn`` belongs to the backward pass of a ``backward_graph``."""
    scope = eqn.source.scope
    return scope == BACKWARD_SCOPE or scope.startswith(BACKWARD_SCOPE + "/")


def cotangent_targets(eqn: Eqn) -> list[str]:
    """The forward variables whose cotangents a backward equation computes (``[]`` if unmarked)."""
    for part in eqn.source.scope.split("/"):
        if part.startswith("ct[") and part.endswith("]"):
            return part[3:-1].split(",")
    return []


class _MarkCotangents(SweepHooks):
    """Sweep hooks: run each VJP rule inside ``jax.named_scope("ct[<inputs it differentiates>]")``."""

    def __init__(self, names: dict[int, str]):
        self.names = names

    def rule_scope(self, eqn: Eqn, needed):
        targets = [self.names[id(a)] for a, n in zip(eqn.inputs, needed) if n]
        targets = list(dict.fromkeys(targets))  # x * x differentiates x once
        return jax.named_scope(f"ct[{','.join(t.replace('/', '_') for t in targets)}]")


def backward_graph(fun: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False) -> Callable[..., Graph]:
    """Trace the gradient computation of ``fun`` (forward and backward) into one marked ``Graph``.

    Args:
      fun: a function returning a scalar (or ``(scalar, aux)`` with ``has_aux``).
      argnums: the positional argument(s) differentiated, as in ``funcgrad.grad``.
      has_aux: ``fun`` returns ``(loss, aux)``; ``aux`` is ignored.

    Returns:
      A function of ``fun``'s arguments returning the ``Graph`` whose outputs are the loss and
      the gradient leaves; backward equations are in the scope ``backward/ct[x]`` (see the
      module docstring). Print it with ``.format(scopes=True)`` or draw it with ``funcgrad.draw``.
    """

    @functools.wraps(fun)
    def build(*args, **kwargs) -> Graph:
        nums = argnums_tuple(argnums, len(args), fun)
        call = Call(fun, args, kwargs, nums, allow_int=False)
        forward, out_tree = trace_call(call)
        names = var_names(forward)
        hooks = _MarkCotangents(names)
        diff_slots = [k for k, i in enumerate(call.traced_idx) if i in set(call.diff_leaf_idx)]

        def gradient_program(*traced):
            outs, backward = vjp_graph(forward, traced, call.wrt, hooks=hooks)
            out = jax.tree_util.tree_unflatten(out_tree, outs)
            loss = out[0] if has_aux else out
            n_main = len(jax.tree_util.tree_leaves(loss))
            with jax.named_scope(BACKWARD_SCOPE):
                seed = jax.tree_util.tree_leaves(scalar_seed(loss, fun))
                cts = backward(list(seed) + [None] * (len(outs) - n_main))
                grads = [jnp.zeros(traced[k].shape, traced[k].dtype) if cts[k] is None else cts[k] for k in diff_slots]
            return [jax.tree_util.tree_leaves(loss)[0], *grads]

        outer = trace_flat(gradient_program, call.traced_values()).graph
        return prune(_copy_forward_marks(outer, forward, names))

    return build


def _copy_forward_marks(outer: Graph, forward: Graph, names: dict[int, str]) -> Graph:
    """Give the re-traced forward equations the sources of ``forward`` and its variable names as labels."""
    labels = {id(o): names[id(f)] for o, f in zip(outer.inputs, forward.inputs)}
    sources = {}
    fwd_eqns = [e for e in outer.eqns if not is_backward(e)][: len(forward.eqns)]
    if [e.primitive for e in fwd_eqns] == [e.primitive for e in forward.eqns]:
        for o, f in zip(fwd_eqns, forward.eqns):
            sources[id(o)] = f.source
            for ov, fv in zip(o.outputs, f.outputs):
                labels[id(ov)] = names[id(fv)]
    return relabel(outer, labels, sources)
