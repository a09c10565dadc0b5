"""``funcgrad.while_loop``: a ``lax.while_loop`` with a bound on its trip count, reverse-differentiable.

JAX refuses reverse mode through ``lax.while_loop``: the trip count is known only at run time, so the
iterations cannot be kept for the backward pass. With a bound ``max_steps`` they can. The forward pass
is an ordinary ``lax.while_loop`` that also writes some of the carries it passes through into buffers
sized by ``max_steps``; the backward pass walks the ``n`` iterations that ran backwards, applying
funcgrad's own VJP of the body (``funcgrad.vjp``) to each iteration's carry:

    ct_{t} = (d body / d carry)(carry_t)^T ct_{t+1},   ct_consts += (d body / d consts)(carry_t)^T ct_{t+1}

for t = n-1, ..., 0. Which carries are kept, and which are computed again from the nearest kept one,
is the memory ``strategy`` (``N = max_steps``; memory counted in carries, work in body evaluations):

* ``"all"``: every carry is kept; memory N, no recomputation.
* ``"sqrt"``: every c-th carry is kept (c = ceil(sqrt(N))); the backward pass recomputes each segment
  of c carries from its start before walking it backwards: memory about 2 sqrt(N), about one extra
  forward pass of work.
* ``"log"``: the same, nested (binary multilevel checkpointing): each level keeps 2 carries and
  halves the segment, so memory is about 2 log2(N) carries and the work about log2(N) extra forward
  passes.

All strategies give the same gradients (the same body VJPs on the same carries). The loop is a
``jax.custom_vjp``, so it composes with ``jax.jit``, ``jax.vmap`` (each batch element its own trip
count) and ``jax.grad`` as well as funcgrad's ``grad``. A loop that runs more than ``max_steps``
iterations still returns its exact value (the forward pass is not truncated), but the kept carries
do not cover it: every cotangent it returns is NaN, so the overflow is never a plausible wrong
gradient (``funcgrad.debug_nans`` stops at the loop's line). The backward pass is itself a
``lax.while_loop``, so the loop is differentiable once (a Hessian through it is refused, as for
``lax.while_loop``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from funcgrad.api.reverse import vjp
from funcgrad.core import jax_compat as jc
from funcgrad.core.interpret import eval_graph
from funcgrad.core.tracer import trace_flat

STRATEGIES = ("all", "sqrt", "log")

# the loop's equations are the user's: their source is the line that called funcgrad.while_loop
jc.exclude_from_user_frames(__file__)


@dataclasses.dataclass(frozen=True)
class _Plan:
    """How the carries of a loop of at most ``max_steps`` iterations are kept.

    The forward pass keeps the carry at every ``top``-th step (``slots`` of them). A segment of
    ``size`` steps is walked backwards by recomputing, from its first carry, the first carries of its
    ``chunk`` sub-segments (each ``size // chunk`` steps long), then walking those from last to first:
    segment sizes go ``top``, ``top / chunk``, ..., 1."""

    max_steps: int
    chunk: int
    levels: int

    @property
    def top(self) -> int:
        return self.chunk ** (self.levels - 1)

    @property
    def slots(self) -> int:
        return -(-self.max_steps // self.top)  # ceil(max_steps / top)


def _plan(max_steps: int, strategy: str) -> _Plan:
    if strategy == "all" or max_steps <= 1:
        return _Plan(max_steps, 1, 1)
    if strategy == "sqrt":
        return _Plan(max_steps, math.isqrt(max_steps - 1) + 1, 2)  # chunk = ceil(sqrt(max_steps))
    return _Plan(max_steps, 2, max(1, math.ceil(math.log2(max_steps))))  # "log"


def while_loop(
    cond_fun: Callable[[Any], Any],
    body_fun: Callable[[Any], Any],
    init_val: Any,
    *,
    max_steps: int,
    strategy: str = "all",
) -> Any:
    """``lax.while_loop(cond_fun, body_fun, init_val)``, reverse-differentiable for up to ``max_steps`` iterations.

    ``cond_fun`` and ``body_fun`` may close over differentiated values (a model's parameters): they are
    closure-converted, and their cotangents are returned like the carry's. ``strategy`` chooses what
    the forward pass keeps for the backward pass: ``"all"`` (every carry), ``"sqrt"`` or ``"log"``
    (checkpoints, recomputed from; see the module docstring). Beyond ``max_steps`` iterations the value
    is still exact but every gradient through the loop is NaN.

    Example (Newton's method for sqrt(a), differentiated in ``a``)::

        def newton_sqrt(a):
            return funcgrad.while_loop(lambda x: jnp.abs(x * x - a) > 1e-6,
                                       lambda x: 0.5 * (x + a / x), a, max_steps=50)

        funcgrad.grad(newton_sqrt)(2.0)  # ~ 1 / (2 sqrt(2))
    """
    if isinstance(max_steps, bool) or not isinstance(max_steps, int | np.integer) or max_steps < 0:
        raise TypeError(
            f"funcgrad.while_loop: max_steps must be a non-negative Python int, got {max_steps!r}\n"
            "  fix: give the largest trip count the loop may take, e.g. max_steps=100 (it sizes the "
            "buffers of the backward pass, so it must be known when the loop is traced)"
        )
    if strategy not in STRATEGIES:
        raise ValueError(f"funcgrad.while_loop: strategy must be one of {STRATEGIES}, got {strategy!r}")
    cond_c, cond_consts = _closure_convert(cond_fun, init_val)
    body_c, body_consts = _closure_convert(body_fun, init_val)
    loop = _Loop(cond_c, body_c, _plan(int(max_steps), strategy), jax.tree_util.tree_structure(init_val))
    return loop.run(tuple(cond_consts), tuple(body_consts), init_val)


def _closure_convert(fun, example):
    """``fun`` as a function of ``(x, *hoisted)``, and the traced values it closes over (``hoisted``).

    Every traced value is hoisted, integers included (``jax.closure_convert`` keeps those closed over):
    a ``custom_vjp``'s forward may be traced after the trace that made such a value has ended."""
    leaves, tree = jax.tree_util.tree_flatten(example)
    traced = trace_flat(lambda *xs: fun(jax.tree_util.tree_unflatten(tree, xs)), leaves)
    graph = traced.graph
    hoisted = [k for k, c in enumerate(graph.consts) if jc.is_tracer(c)]

    def converted(x, *values):
        consts = list(graph.consts)
        for k, value in zip(hoisted, values, strict=True):
            consts[k] = value
        with_values = dataclasses.replace(graph, consts=tuple(consts))
        return jax.tree_util.tree_unflatten(traced.out_tree, eval_graph(with_values, *jax.tree_util.tree_leaves(x)))

    return converted, [graph.consts[k] for k in hoisted]


def _is_float(x) -> bool:
    return jnp.issubdtype(jnp.result_type(x), jnp.inexact)


def _zero_cotangent(shape, dtype):
    """The cotangent of a primal that gets no gradient: zeros, or float0 zeros for an integer."""
    if jnp.issubdtype(dtype, jnp.inexact):
        return jnp.zeros(shape, dtype)
    return np.zeros(shape, dtype=jax.dtypes.float0)


def _where_float(flags, values, fill):
    """Rebuild a full list from the floating entries ``values`` and the others taken from ``fill``."""
    it = iter(values)
    return [next(it) if f else x for f, x in zip(flags, fill)]


class _Loop:
    """One bounded loop: its closure-converted functions, its plan, and its custom VJP."""

    def __init__(self, cond_c, body_c, plan: _Plan, tree):
        self.cond_c, self.body_c, self.plan = cond_c, body_c, plan
        self.tree = tree  # the carry's pytree structure
        self.run = jax.custom_vjp(self._primal)
        self.run.defvjp(self._forward, self._backward)

    # ------------------------------------------------------------------ forward

    def _primal(self, cond_consts, body_consts, init):
        return lax.while_loop(lambda c: self.cond_c(c, *cond_consts), lambda c: self.body_c(c, *body_consts), init)

    def _forward(self, cond_consts, body_consts, init):
        """The loop, writing the carry of every ``top``-th step into its slot; also its trip count."""
        plan = self.plan
        leaves = jax.tree_util.tree_leaves(init)
        buffers = [jnp.zeros((plan.slots, *jnp.shape(x)), jnp.result_type(x)) for x in leaves]

        def step(state):
            t, carry, buffers = state
            # steps that start no kept segment (and those beyond max_steps) write past the end: dropped
            slot = jnp.where(t % plan.top == 0, t // plan.top, plan.slots)
            kept = jax.tree_util.tree_leaves(carry)
            buffers = [b.at[slot].set(x, mode="drop") for b, x in zip(buffers, kept)]
            return t + 1, self.body_c(carry, *body_consts), buffers

        state = (jnp.int32(0), init, buffers)
        trips, final, buffers = lax.while_loop(lambda s: self.cond_c(s[1], *cond_consts), step, state)
        return final, (cond_consts, body_consts, buffers, trips)

    # ----------------------------------------------------------------- backward

    def _backward(self, residuals, ct):
        cond_consts, body_consts, buffers, trips = residuals
        plan, tree = self.plan, self.tree
        runs = jnp.minimum(trips, plan.max_steps)  # iterations the kept carries cover
        carry_float = [_is_float(b) for b in buffers]
        const_float = [_is_float(k) for k in body_consts]
        ct_carry = [c for c, f in zip(jax.tree_util.tree_leaves(ct), carry_float) if f]
        ct_consts = [jnp.zeros_like(k) for k, f in zip(body_consts, const_float) if f]

        def body_step(carry_leaves, t):
            """One iteration forward, as the identity at a step the loop did not take."""
            carry = jax.tree_util.tree_unflatten(tree, carry_leaves)
            new = lax.cond(t < runs, lambda c: self.body_c(c, *body_consts), lambda c: c, carry)
            return jax.tree_util.tree_leaves(new)

        def step_vjp(carry_leaves, cts):
            """One iteration's pullback: (d body)^T applied to the cotangent of its output."""

            def body_float(floats, consts):
                carry = _where_float(carry_float, floats, carry_leaves)
                full_consts = _where_float(const_float, consts, body_consts)
                out = self.body_c(jax.tree_util.tree_unflatten(tree, carry), *full_consts)
                return [x for x, f in zip(jax.tree_util.tree_leaves(out), carry_float) if f]

            floats = [x for x, f in zip(carry_leaves, carry_float) if f]
            consts = [k for k, f in zip(body_consts, const_float) if f]
            _, pullback = vjp(body_float, floats, consts)
            ct_floats, ct_k = pullback(cts[0])
            return [list(ct_floats), [a + b for a, b in zip(cts[1], ct_k)]]

        def segment_backward(size, carry_leaves, t0, cts):
            """Walk the ``size`` steps from step ``t0`` (carry ``carry_leaves``) backwards."""
            if size == 1:
                return lax.cond(t0 < runs, lambda c: step_vjp(carry_leaves, c), lambda c: c, cts)
            sub = size // plan.chunk

            def advance(carry, j):
                start = t0 + j * sub
                end = lax.fori_loop(0, sub, lambda i, c: body_step(c, start + i), carry)
                return end, end  # the carry the next sub-segment starts from

            def walk(cts):
                # the first carry of each sub-segment: the segment's own, then chunk - 1 advances
                _, later = lax.scan(advance, carry_leaves, jnp.arange(plan.chunk - 1))
                starts = [jnp.concatenate([x[None], r]) for x, r in zip(carry_leaves, later)]

                def back(cts, j_start):
                    j, start = j_start
                    return segment_backward(sub, start, t0 + j * sub, cts), None

                return lax.scan(back, cts, (jnp.arange(plan.chunk), starts), reverse=True)[0]

            return lax.cond(t0 < runs, walk, lambda c: c, cts)

        def top_segment(state):
            j, cts = state
            start = [b[j] for b in buffers]
            return j - 1, segment_backward(plan.top, start, j * plan.top, cts)

        if plan.slots:  # (max_steps=0: no step to walk back through)
            last = (runs + plan.top - 1) // plan.top - 1  # the last kept segment the loop entered
            state = (last, [ct_carry, ct_consts])
            _, (ct_carry, ct_consts) = lax.while_loop(lambda s: s[0] >= 0, top_segment, state)

        # more iterations than max_steps: the kept carries do not reach back to the start; NaN, not a guess
        overflow = trips > plan.max_steps
        mark = lambda g: jnp.where(overflow, jnp.full_like(g, jnp.nan), g)
        zeros = lambda xs: [_zero_cotangent(jnp.shape(x), jnp.result_type(x)) for x in xs]
        ct_init = _where_float(
            carry_float, [mark(g) for g in ct_carry], [_zero_cotangent(b.shape[1:], b.dtype) for b in buffers]
        )
        ct_body = _where_float(const_float, [mark(g) for g in ct_consts], zeros(body_consts))
        ct_cond = tuple(zeros(cond_consts))  # the condition has no derivative
        return ct_cond, tuple(ct_body), jax.tree_util.tree_unflatten(tree, ct_init)
