"""Run funcgrad's reverse sweep once and record what the explorer steps through.

The sweep is ``funcgrad.core.sweep`` itself, the one ``funcgrad.grad`` runs, observed through
``SweepHooks.after_rule``: each rule that runs is one backward step, in the order the sweep runs
them, with the cotangents of its equation's outputs (complete at that point: every consumer's rule
ran before, and the sweep summed their contributions) and the contribution it makes to each input.
A value that fans out receives one contribution per use; its cotangent is their sum, the lecture's
weighted-sum rule dC/dz = sum_i w_i dC/ds_i, and the recording keeps each part's summary.

Arrays are summarised as they come (``stats.summarize``) and then dropped, except the parts of a
fan-out, which wait until their sum is complete.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from funcgrad.core.call import Call, gc_paused, scalar_seed
from funcgrad.core.hooks import SweepHooks
from funcgrad.core.ir import Eqn, Var
from funcgrad.core.sweep import Backward, vjp_graph
from funcgrad.core.tracer import Traced
from funcgrad.inspect.explorer.stats import Summary, summarize

SEED = -1  # the step number of the seed dC/dC = 1 among a value's contributions


@dataclasses.dataclass
class Step:
    """One VJP rule the sweep ran."""

    index: int
    eqn: Eqn
    outs: list[Var]  # the equation's outputs that had a cotangent (its rule's ``ct``)
    parts: list[tuple[int, Var]]  # (input position, input) for each contribution the rule made


@dataclasses.dataclass
class Recording:
    """Every forward value and every cotangent of one gradient computation, summarised."""

    traced: Traced
    backward: Backward
    loss: Any
    steps: list[Step]
    value: dict  # id(var) -> Summary of its forward value
    ct: dict  # id(var) -> Summary of its (complete) cotangent dC/dv
    ct_step: dict  # id(var) -> the backward step after which dC/dv is complete
    parts: dict  # id(var) -> [(step, Summary)], one per contribution (SEED for the output's seed)

    @property
    def graph(self):
        return self.traced.graph


class _Recorder(SweepHooks):
    """Sweep hooks that summarise each rule's cotangents in and out."""

    def __init__(self):
        self.is_active: Callable = lambda atom: True
        self.steps: list[Step] = []
        self.ct: dict[int, Summary | None] = {}
        self.ct_step: dict[int, int] = {}
        self.parts: dict[int, list] = {}
        self.pending: dict[int, list] = {}  # id(var) -> [(step, array)] until its cotangent is complete

    def after_rule(self, eqn, cts, cts_in, env) -> None:
        k = len(self.steps)
        outs = []
        for v, ct in zip(eqn.outputs, cts):
            if ct is not None:
                self.complete(v, ct, k)
                outs.append(v)
        parts = []
        for i, (a, ct) in enumerate(zip(eqn.inputs, cts_in)):
            if ct is not None and isinstance(a, Var) and self.is_active(a):  # what the sweep accumulates
                self.pending.setdefault(id(a), []).append((k, ct))
                parts.append((i, a))
        self.steps.append(Step(k, eqn, outs, parts))

    def complete(self, v: Var, total, step: int) -> None:
        """``v``'s cotangent is ``total``, the sum of its pending contributions."""
        summary = summarize(total)
        pending = self.pending.pop(id(v), [])
        self.ct[id(v)] = summary
        self.ct_step[id(v)] = max([step, *(s for s, _ in pending)])
        # one contribution is the total itself; several are summarised one by one (the fan-out's terms)
        self.parts[id(v)] = [(s, summary if len(pending) == 1 else summarize(x)) for s, x in pending]


def record(call: Call, traced: Traced, fun: Callable, has_aux: bool) -> Recording:
    """Run the forward pass and the reverse sweep of ``traced`` (``call``'s graph), recording both."""
    graph = traced.graph
    given = call.traced_values()
    values = [jnp.asarray(x) if isinstance(x, (bool, int, float, complex)) else x for x in given]
    computed = None  # a concrete trace computed every value already
    if traced.values is not None:
        computed = {**traced.values, **dict(zip(graph.inputs, values))}
    recorder = _Recorder()
    with gc_paused():
        outs, backward = vjp_graph(graph, values, call.wrt, hooks=recorder, values=computed)
    recorder.is_active = backward.activity.is_active
    out = jax.tree_util.tree_unflatten(traced.out_tree, outs)
    loss = out[0] if has_aux else out
    seed = jax.tree_util.tree_leaves(scalar_seed(loss, fun))
    first = graph.outputs[0] if graph.outputs else None
    if isinstance(first, Var) and backward.activity.is_active(first):
        recorder.pending[id(first)] = [(SEED, seed[0])]
    with gc_paused():
        in_cts = backward([*seed, *[None] * (len(outs) - len(seed))])
    for v, ct in zip(graph.inputs, in_cts):
        if ct is not None:  # an argument's cotangent is complete when the sweep ends
            recorder.complete(v, ct, SEED)  # complete after its last contribution's step
    env = backward.env
    value = {}
    for v in (*graph.constvars, *graph.inputs, *(v for e in graph.eqns for v in e.outputs)):
        if v in env:
            value[id(v)] = summarize(env[v])
    return Recording(traced, backward, loss, recorder.steps, value, recorder.ct, recorder.ct_step, recorder.parts)
