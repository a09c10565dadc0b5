"""The reverse sweep over a ``Graph``.

Forward: evaluate every equation, keeping each value (the residuals), and mark
the *active* variables: floating-point values that depend on an input being
differentiated. Backward: seed the outputs' cotangents and walk the active
equations in reverse, calling one VJP rule per equation. This is the one place
where

* cotangents are summed when a variable fans out (dC/dz = sum_i dC/ds_i . ds_i/dz),
* symbolic zeros (``None``) are skipped: an equation whose outputs received no
  cotangent does no work, and inactive inputs get none,
* a rank-0 operand's cotangent is summed back to shape () and every cotangent
  is cast to its primal's dtype (rules never do either).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import jax.numpy as jnp
import numpy as np
from jax import lax

from funcgrad.errors import NonDifferentiableError, UnsupportedPrimitiveError
from funcgrad.graph_edit import live_eqns
from funcgrad.interpret import read_all
from funcgrad.ir import Eqn, Graph, Type, Var
from funcgrad.rules.registry import no_vjp_reasons, symbolic_zero_rules, vjp_rules

# Primitives whose outputs never carry a gradient, whatever their inputs.
_GRADIENT_STOPPERS = {"stop_gradient"}


class Backward:
    """The backward half of ``vjp_graph``: maps output cotangents to input cotangents."""

    def __init__(self, graph: Graph, env: dict, active: set, active_eqns: list[Eqn], hooks=None):
        self.graph = graph
        self.env = env
        self.active = active
        self.active_eqns = active_eqns
        self.hooks = hooks

    def __call__(self, out_cts: Sequence[Any]) -> list[Any]:
        """Cotangents of the graph inputs (``None`` where no gradient flows) given the outputs'."""
        ct_env: dict = {}
        for atom, ct in zip(self.graph.outputs, out_cts, strict=True):
            if ct is not None and isinstance(atom, Var) and id(atom) in self.active:
                accumulate(ct_env, atom, ct)
        for eqn in reversed(self.active_eqns):
            cts = [ct_env.pop(v, None) for v in eqn.outputs]
            if all(ct is None for ct in cts):
                continue
            needed = [isinstance(a, Var) and id(a) in self.active for a in eqn.inputs]
            with rule_scope(self.hooks, eqn):
                cts_in = apply_rule(eqn, cts, self.env, needed)
            if self.hooks is not None:
                self.hooks.after_rule(eqn, cts, cts_in, self.env)
            for atom, ct in zip(eqn.inputs, cts_in, strict=True):
                if ct is not None and isinstance(atom, Var) and id(atom) in self.active:
                    accumulate(ct_env, atom, ct)
        return [ct_env.get(v) for v in self.graph.inputs]


def rule_scope(hooks, eqn: Eqn):
    """The context a rule runs in: ``hooks.rule_scope(eqn)`` if the hooks define it (e.g. a
    ``jax.named_scope`` marking the equations a traced backward pass emits), else nothing."""
    scope = getattr(hooks, "rule_scope", None)
    return contextlib.nullcontext() if scope is None else scope(eqn)


def vjp_graph(graph: Graph, args: Sequence[Any], wrt: Sequence[bool], hooks=None) -> tuple[list[Any], Backward]:
    """Evaluate ``graph`` on ``args`` and return (outputs, backward function).

    ``wrt[i]`` says whether input ``i`` is differentiated; inputs of integer or
    boolean dtype never are. Equations whose results reach no output are evaluated but never
    active: no cotangent can reach them, so they need no rule (JAX's dead-code elimination
    drops them too; e.g. the unused ``igamma_grad_a`` of a second derivative of ``igamma``).
    """
    live = {id(e) for e in live_eqns(graph)}
    env: dict = {}
    active: set[int] = set()
    active_eqns: list[Eqn] = []
    for v, c in zip(graph.constvars, graph.consts):
        env[v] = c
    for v, x, w in zip(graph.inputs, args, wrt, strict=True):
        env[v] = x
        if w and v.type.is_float:
            active.add(id(v))
    for eqn in graph.eqns:
        ins = read_all(env, eqn.inputs)
        outs = eqn.impl(*ins)
        for v, out in zip(eqn.outputs, outs):
            env[v] = out
        if eqn.primitive in _GRADIENT_STOPPERS or id(eqn) not in live:
            continue
        if any(isinstance(a, Var) and id(a) in active for a in eqn.inputs):
            float_outs = [v for v in eqn.outputs if v.type.is_float]
            if not float_outs and eqn.primitive not in no_vjp_reasons:
                continue  # comparisons, argmax, casts to int: nothing flows back
            check_differentiable(eqn)
            active_eqns.append(eqn)
            active.update(id(v) for v in float_outs)
    outputs = read_all(env, graph.outputs)
    return outputs, Backward(graph, env, active, active_eqns, hooks)


def check_differentiable(eqn: Eqn) -> None:
    """Raise a clear error if ``eqn`` cannot be reverse-differentiated."""
    where = eqn.source.where()
    if eqn.primitive in no_vjp_reasons:
        raise NonDifferentiableError(
            f"cannot reverse-differentiate {eqn.primitive!r} at {where}\n  {no_vjp_reasons[eqn.primitive]}"
        )
    if eqn.primitive not in vjp_rules:
        raise UnsupportedPrimitiveError(
            f"funcgrad has no VJP rule for primitive {eqn.primitive!r}, used at {where}\n"
            f"  fix: register one with funcgrad.defvjp({eqn.primitive!r}, rule), where\n"
            f"       rule(ct, *primals, out, **params) returns one cotangent per input "
            f"(see docs/extending.md); funcgrad.supported_primitives() lists the rules there are."
        )


def apply_rule(eqn: Eqn, cts: list, env: dict, needed: Sequence[bool] | None = None) -> list:
    """Run ``eqn``'s VJP rule; cotangents come back shaped and typed like the inputs.

    ``needed[i]`` False (a literal, or an input nothing differentiated flows into) drops input
    ``i``'s cotangent before it is summed down or cast: that work would be thrown away.
    """
    primals = read_all(env, eqn.inputs)
    outs = [env[v] for v in eqn.outputs]
    multiple = len(eqn.outputs) != 1
    if multiple and eqn.primitive not in symbolic_zero_rules:
        cts = [zeros_like_type(v.type) if ct is None else ct for v, ct in zip(eqn.outputs, cts)]
    rule = vjp_rules[eqn.primitive]
    try:
        cts_in = rule(
            cts if multiple else cts[0],
            *primals,
            out=outs if multiple else outs[0],
            **eqn.params,
        )
    except (UnsupportedPrimitiveError, NonDifferentiableError):
        raise
    except Exception as err:
        raise type(err)(
            f"{err}\n  (in the VJP rule of {eqn.primitive!r} for the equation at {eqn.source.where()})"
        ) from err
    cts_in = list(cts_in)
    if len(cts_in) != len(eqn.inputs):
        raise ValueError(
            f"the VJP rule of {eqn.primitive!r} returned {len(cts_in)} cotangents for "
            f"{len(eqn.inputs)} inputs (at {eqn.source.where()})"
        )
    if needed is None:
        needed = [True] * len(cts_in)
    return [None if ct is None or not n else fit_to_type(ct, a.type) for a, ct, n in zip(eqn.inputs, cts_in, needed)]


def accumulate(ct_env: dict, v: Var, ct: Any) -> None:
    """Add ``ct`` into ``v``'s cotangent: fan-out sums its branches' contributions."""
    prev = ct_env.get(v)
    ct_env[v] = ct if prev is None else lax.add(prev, ct)


def fit_to_type(ct: Any, t: Type) -> Any:
    """Sum ``ct`` down to shape ``t.shape`` (implicit rank-0 broadcasting) and cast to ``t.dtype``."""
    shape = tuple(np.shape(ct))
    if shape != t.shape:
        ct = unbroadcast(ct, t.shape)
    if not t.is_float:
        return ct
    # an array's own dtype; jnp.result_type (dtype promotion machinery) only for Python scalars
    dtype = getattr(ct, "dtype", None)
    if dtype is None:
        dtype = jnp.result_type(ct)
    if dtype != t.dtype:
        if jnp.issubdtype(dtype, jnp.complexfloating) and not jnp.issubdtype(t.dtype, jnp.complexfloating):
            ct = jnp.real(ct)  # a real primal's cotangent is the real part of a complex one (JAX's convention)
        ct = lax.convert_element_type(ct, t.dtype)
    return ct


def unbroadcast(ct: Any, shape: tuple[int, ...]) -> Any:
    """Sum ``ct`` over the axes that broadcasting added or stretched to reach its shape from ``shape``."""
    ct_shape = np.shape(ct)
    lead = len(ct_shape) - len(shape)
    if lead < 0:
        raise ValueError(f"cotangent of shape {ct_shape} cannot be summed down to shape {shape}")
    axes = tuple(range(lead)) + tuple(
        lead + i for i, (d, c) in enumerate(zip(shape, ct_shape[lead:])) if d == 1 and c != 1
    )
    if axes:
        ct = jnp.sum(ct, axis=axes)
    return jnp.reshape(ct, shape)


def zeros_like_type(t: Type) -> Any:
    return jnp.zeros(t.shape, t.dtype)
