"""Which forward values a graph's backward pass reads: the sweep traced as a function of them.

funcgrad's reverse sweep (``funcgrad.core.sweep.Backward``) hands every rule all the primals and
outputs of its equation, but most rules read only some of them (``add`` reads none, ``mul`` reads
the other operand, ``exp`` its output). To know which, the sweep is traced by funcgrad's tracer as
a function of *every* value it could read (each input and output of each active equation, and
what rules with their own ``forward`` saved) and of the output cotangents; after dead code is
dropped, a value is read when the traced gradients still depend on it.

``saved_residuals`` reports the answer; ``jax.checkpoint``'s rule uses it to decide what a policy
saves (a saveable value nothing reads is not kept, as in JAX's partial evaluation).
"""

from __future__ import annotations

import dataclasses
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from funcgrad.core.activity import Activity
from funcgrad.core.graph_edit import prune, used_inputs
from funcgrad.core.ir import Eqn, Graph, Literal, Type, Var
from funcgrad.core.sweep import Backward, forwards
from funcgrad.core.tracer import trace_flat


@dataclasses.dataclass(frozen=True)
class SavedLeaf:
    """One array a rule's ``forward`` saved for its equation (leaf ``index`` of its pytree)."""

    eqn: Eqn
    index: int
    type: Type


@dataclasses.dataclass(frozen=True)
class BackwardProgram:
    """A graph's backward pass traced as a function of (candidates, saved leaves, output cotangents)."""

    candidates: tuple[Var, ...]  # forward values the rules could read, in program order
    saved: tuple[SavedLeaf, ...]  # what rules' forwards saved, per active equation in order
    graph: Graph  # outputs: the cotangents of the differentiated inputs that receive one (pruned)

    def reads(self) -> list[bool]:
        """For each candidate, then each saved leaf: whether the backward pass reads it."""
        return used_inputs(self.graph)[: len(self.candidates) + len(self.saved)]

    def read_vars(self) -> list[Var]:
        return [v for v, r in zip(self.candidates, self.reads()) if r]


def backward_program(
    forward: Graph,
    act: Activity,
    ct_slots: Sequence[int],
    wrt_slots: Sequence[int],
    saved_specs: Mapping[int, Any] | None = None,
) -> BackwardProgram:
    """Trace ``forward``'s backward pass given cotangents for its outputs ``ct_slots``, returning the
    cotangents of its inputs ``wrt_slots``.

    ``saved_specs`` (``id(eqn)`` -> a pytree of ``jax.ShapeDtypeStruct``): what the rules with their own
    forward saved, so that their reads are measured too; without it those rules get ``saved=None`` and
    recompute what they need from their primals, as they do after a concrete trace.
    """
    readable = {id(a) for e in act.eqns for a in (*e.inputs, *e.outputs) if isinstance(a, Var)}
    order = [*forward.inputs, *forward.constvars, *(v for e in forward.eqns for v in e.outputs)]
    candidates = tuple(v for v in order if id(v) in readable)
    saved_specs = saved_specs or {}
    by_id = {id(e): e for e in act.eqns}
    trees, saved = {}, []
    for k, spec in saved_specs.items():
        leaves, trees[k] = jax.tree_util.tree_flatten(spec)
        saved += [SavedLeaf(by_id[k], i, Type(tuple(s.shape), s.dtype)) for i, s in enumerate(leaves)]
    out_types = forward.out_types

    def run(*flat):
        env = dict(zip(candidates, flat[: len(candidates)]))
        rest = list(flat[len(candidates) :])
        saved_values = {}
        for k, tree in trees.items():
            n = tree.num_leaves
            saved_values[k], rest = jax.tree_util.tree_unflatten(tree, rest[:n]), rest[n:]
        cts = [None] * len(out_types)
        for slot, ct in zip(ct_slots, rest):
            cts[slot] = ct
        in_cts = Backward(forward, env, act, saved=saved_values)(cts)
        return [in_cts[k] for k in wrt_slots if in_cts[k] is not None]

    specs = [jax.ShapeDtypeStruct(v.type.shape, v.type.dtype) for v in candidates]
    specs += [jax.ShapeDtypeStruct(s.type.shape, s.type.dtype) for s in saved]
    specs += [jax.ShapeDtypeStruct(out_types[s].shape, out_types[s].dtype) for s in ct_slots]
    return BackwardProgram(candidates, tuple(saved), prune(trace_flat(run, specs).graph))


def saved_shapes(act: Activity) -> dict:
    """id(eqn) -> the shapes of what its rule's forward saves (``jax.checkpoint``'s policy, a
    ``custom_vjp``'s residuals), for the active equations whose rule brings a forward and saves arrays."""
    specs = {}
    by_id = {id(e): e for e in act.eqns}
    for k, run in forwards(act).items():
        eqn = by_id[k]
        literal = {i: a.value for i, a in enumerate(eqn.inputs) if isinstance(a, Literal)}
        var_specs = [jax.ShapeDtypeStruct(a.type.shape, a.type.dtype) for a in eqn.inputs if isinstance(a, Var)]
        n_inputs = len(eqn.inputs)

        def saved_of(*xs, run=run, literal=literal, n=n_inputs):
            it = iter(xs)
            return run(*[literal[i] if i in literal else next(it) for i in range(n)])[1]

        try:
            specs[k] = jax.eval_shape(saved_of, *var_specs)
        except TypeError:  # it saves something that is not an array: its rule recomputes from its primals
            continue
    return specs


_reads_of_graph: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # Graph -> {key: frozenset | None}


def read_by_backward(
    forward: Graph, act: Activity, ct_slots: Sequence[int], wrt_slots: Sequence[int], saved: Mapping[int, Any]
) -> frozenset[int] | None:
    """The ids of the forward values ``forward``'s backward pass reads (``backward_program``), decided
    once per graph and activity: what ``funcgrad.vjp`` keeps for its pullback.

    None (keep everything) when the reads cannot be measured (a rule's forward saved something that is
    not an array). Tracing the backward pass costs about what building it does (a few ms for a small
    model, about 1% of an eager first call), once per graph."""
    key = (act.active, tuple(ct_slots), tuple(wrt_slots), tuple(saved))
    per_graph = _reads_of_graph.setdefault(forward, {})
    if key not in per_graph:
        try:
            specs = {k: jax.tree_util.tree_map(_spec_of, v) for k, v in saved.items()}
            program = backward_program(forward, act, ct_slots, wrt_slots, specs)
            per_graph[key] = frozenset(id(v) for v in program.read_vars())
        except (TypeError, ValueError):  # a saved value that is not an array, or no type to trace it with
            per_graph[key] = None
    return per_graph[key]


def _spec_of(x):
    if not hasattr(x, "shape") or not hasattr(x, "dtype"):
        raise TypeError(f"{type(x).__name__} is not an array")
    return jax.ShapeDtypeStruct(x.shape, x.dtype)


class ReadValues(dict):
    """A graph's values for its backward pass, holding only what the rules read (``BackwardProgram.reads``).
    The sweep still hands every value of an equation to its rule; one that no rule reads is an array
    of NaN (were it ever read, the result would be loud, never a plausible number)."""

    def __missing__(self, v: Var):
        # one stand-in per type, shared (arrays are immutable): eager backward passes allocate each once
        fills = self.__dict__.setdefault("_fills", {})
        if v.type not in fills:
            fills[v.type] = _placeholder(v.type)
        return fills[v.type]


def _placeholder(t: Type):
    try:
        return lax.full(t.shape, jnp.nan if t.is_float else 0, t.dtype)
    except (TypeError, ValueError):  # an extended dtype (PRNG keys, ...): no array can stand in
        return None
