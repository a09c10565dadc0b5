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
  is cast to its primal's dtype (rules never do either),
* a rule gets its cotangent as a list exactly when its primitive has multiple results.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from funcgrad.core import jax_compat as jc
from funcgrad.core import registry
from funcgrad.core.accumulation import add_cotangents, zero_cotangent
from funcgrad.core.activity import Activity, activity
from funcgrad.core.hooks import SweepHooks
from funcgrad.core.interpret import evaluate_saving, read_all
from funcgrad.core.ir import Eqn, Graph, Type, Var
from funcgrad.errors import NonDifferentiableError, UnsupportedPrimitiveError, UntestedJAXError


class Backward:
    """The backward half of ``vjp_graph``: maps output cotangents to input cotangents."""

    def __init__(
        self, graph: Graph, env: dict, activity: Activity, hooks: SweepHooks | None = None, saved: dict | None = None
    ):
        self.graph = graph
        self.env = env
        self.activity = activity
        self.hooks = hooks
        # id(eqn) -> what a rule's ``forward`` saved for it in the forward pass
        self.saved = {} if saved is None else saved

    @property
    def active(self) -> frozenset[int]:
        return self.activity.active

    def __call__(self, out_cts: Sequence[Any]) -> list[Any]:
        """Cotangents of the graph inputs (``None`` where no gradient flows) given the outputs'."""
        is_active = self.activity.is_active
        ct_env: dict = {}
        for atom, ct in zip(self.graph.outputs, out_cts, strict=True):
            if ct is not None and is_active(atom):
                accumulate(ct_env, atom, ct)
        for eqn in reversed(self.activity.eqns):
            cts = [ct_env.pop(v, None) for v in eqn.outputs]
            if all(ct is None for ct in cts) and not _runs_without_cotangent(eqn):
                continue
            needed = [is_active(a) for a in eqn.inputs]
            if self.hooks is None:
                cts_in = apply_rule(eqn, cts, self.env, needed, self.saved)
            else:
                with self.hooks.rule_scope(eqn, needed):
                    cts_in = apply_rule(eqn, cts, self.env, needed, self.saved)
                self.hooks.after_rule(eqn, cts, cts_in, self.env)
            for atom, ct in zip(eqn.inputs, cts_in, strict=True):
                if ct is not None and is_active(atom):
                    accumulate(ct_env, atom, ct)
        return [ct_env.get(v) for v in self.graph.inputs]


def _runs_without_cotangent(eqn: Eqn) -> bool:
    record = registry.lookup_eqn(eqn)
    return record is not None and record.runs_without_cotangent


def vjp_graph(
    graph: Graph,
    args: Sequence[Any],
    wrt: Sequence[bool],
    hooks: SweepHooks | None = None,
    values: dict | None = None,
) -> tuple[list[Any], Backward]:
    """Evaluate ``graph`` on ``args`` and return (outputs, backward function).

    ``wrt[i]`` says whether input ``i`` is differentiated; inputs of integer or boolean dtype
    never are. Which equations are differentiated is decided by ``funcgrad.core.activity``; each
    of them is checked for a rule before anything runs. ``values`` (every value of the graph, keyed
    by ``Var``, as a concrete trace computed them) spares the evaluation: the function, and any
    ``jax.debug.print`` in it, runs once.
    """
    act = checked_activity(graph, wrt)
    if values is not None:
        env, saved = values, {}
    else:
        env, saved = evaluate_saving(graph, args, forwards(act))
    return read_all(env, graph.outputs), Backward(graph, env, act, hooks, saved)


def forwards(act: Activity) -> dict:
    """id(eqn) -> how to evaluate it, for the active equations whose rule brings its own forward."""
    found = {}
    for eqn in act.eqns:
        record = registry.lookup_eqn(eqn)
        if record.forward is not None:
            extra = {"perturbed": tuple(act.is_active(a) for a in eqn.inputs)} if record.perturbed else {}
            extra["bind"] = eqn.impl  # the equation's own evaluation, for a forward that keeps it
            found[id(eqn)] = functools.partial(_run_forward, record.forward, extra, eqn)
    return found


def _run_forward(forward, extra, eqn: Eqn, *primals):
    try:
        outs, saved = forward(*primals, **extra, **eqn.params)
    except Exception as err:
        # as in apply_rule: the same object, plus where
        err.add_note(
            f"(in the forward pass of the VJP rule of {eqn.primitive!r} for the equation at {eqn.source.where()})"
        )
        raise
    return list(outs), saved


def checked_activity(graph: Graph, wrt: Sequence[bool]) -> Activity:
    """``activity(graph, wrt)``, after checking that every active equation has a rule (a clear error if not)."""
    act = activity(graph, wrt)
    for eqn in act.eqns:
        require_rule(eqn)
    return act


def require_rule(eqn: Eqn) -> None:
    """Raise a clear error if the registry has no VJP rule for ``eqn``'s primitive."""
    where = eqn.source.where()
    record = registry.lookup_eqn(eqn)
    if record is not None and record.kind == "refused":
        raise NonDifferentiableError(f"cannot reverse-differentiate {eqn.primitive!r} at {where}\n  {record.reason}")
    if jc.UNTESTED_JAX and record is not None and record.owner.startswith("funcgrad.rules"):
        _refuse_unknown_params(eqn, where)
    if record is None or not record.has_vjp:
        raise UnsupportedPrimitiveError(
            f"funcgrad has no VJP rule for primitive {eqn.primitive!r}{_defined_by(eqn)}, used at {where}\n"
            f"  fix: register one with funcgrad.defvjp({eqn.primitive!r}, rule), where\n"
            f"       rule(ct, *primals, out, **params) returns one cotangent per input "
            f"(see docs/extending.md); funcgrad.supported_primitives() lists the rules there are."
        )


def _refuse_unknown_params(eqn: Eqn, where: str) -> None:
    """On an untested (newer) JAX: a parameter funcgrad's rule was not written for is an error."""
    unknown = jc.unknown_params(eqn.primitive, eqn.params)
    if unknown and os.environ.get("FUNCGRAD_ALLOW_UNKNOWN_PARAMS") != "1":
        raise UntestedJAXError(
            f"JAX {jax.__version__} gives primitive {eqn.primitive!r} the parameter(s) {unknown}, which "
            f"funcgrad's rule for it was not written for (funcgrad is tested with JAX up to "
            f"{'.'.join(map(str, jc.NEWEST_TESTED))}.x); they may change its derivative. At {where}.\n"
            "  fix: install a tested JAX (pip install 'jax<0.11'), or set FUNCGRAD_ALLOW_UNKNOWN_PARAMS=1 "
            "to differentiate anyway and compare with JAX once: funcgrad.check_grads(f, args)"
        )


def _defined_by(eqn: Eqn) -> str:
    """ " (defined by <library>)" for a primitive whose implementation says where it comes from."""
    _, module = jc.python_impl(eqn.impl)
    top = module.split(".")[0]
    if not top or top in ("jax", "jaxlib"):  # JAX's own dispatch says nothing of who defined it
        return ""
    return f" (defined by {top}, in {module})"


def apply_rule(eqn: Eqn, cts: list, env: dict, needed: Sequence[bool] | None = None, saved: dict | None = None) -> list:
    """Run ``eqn``'s VJP rule; cotangents come back shaped and typed like the inputs.

    The rule gets ``ct`` and ``out`` as lists exactly when the primitive has multiple results
    (decided here, once: no rule normalises them). ``needed[i]`` False (a literal, or an input
    nothing differentiated flows into) drops input ``i``'s cotangent before it is summed down or
    cast: that work would be thrown away. An error raised inside the rule keeps its type and
    gains a note naming the primitive and the user's line.
    """
    record = registry.lookup_eqn(eqn)
    primals = read_all(env, eqn.inputs)
    outs = [env[v] for v in eqn.outputs]
    multiple = eqn.multiple_results
    if multiple and not record.symbolic_zeros:
        cts = [zeros_like_type(v.type, out) if ct is None else ct for v, ct, out in zip(eqn.outputs, cts, outs)]
    if needed is None:
        needed = [True] * len(eqn.inputs)
    extra = {"perturbed": tuple(needed)} if record.perturbed else {}
    if record.forward is not None:
        extra["saved"] = None if saved is None else saved.get(id(eqn))
    try:
        cts_in = record.vjp(
            cts if multiple else cts[0], *primals, out=outs if multiple else outs[0], **extra, **eqn.params
        )
    except Exception as err:
        # a refusal or a failure inside the rule (or inside a nested program's sweep): same object, plus where
        err.add_note(f"(in the VJP rule of {eqn.primitive!r} for the equation at {eqn.source.where()})")
        raise
    cts_in = list(cts_in)
    if len(cts_in) != len(eqn.inputs):
        raise ValueError(
            f"the VJP rule of {eqn.primitive!r} returned {len(cts_in)} cotangents for "
            f"{len(eqn.inputs)} inputs (at {eqn.source.where()})"
        )
    return [
        None if ct is None or not n else fit_to_type(ct, a.type, x)
        for a, x, ct, n in zip(eqn.inputs, primals, cts_in, needed)
    ]


def accumulate(ct_env: dict, v: Var, ct: Any) -> None:
    """Add ``ct`` into ``v``'s cotangent: fan-out sums its branches' contributions."""
    prev = ct_env.get(v)
    ct_env[v] = ct if prev is None else add_cotangents(prev, ct)


def fit_to_type(ct: Any, t: Type, primal: Any = None) -> Any:
    """Sum ``ct`` down to shape ``t.shape`` (implicit rank-0 broadcasting), cast to ``t.dtype`` and, under
    explicit mesh axes, give it ``primal``'s sharding type."""
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
    return fit_to_sharding(ct, primal)


def fit_to_sharding(ct: Any, primal: Any) -> Any:
    """``ct`` with ``primal``'s sharding type under explicit mesh axes, as JAX's ``_unbroadcast`` gives
    every elementwise transpose's cotangent: a cotangent's type is its primal's, sharding included,
    and the cotangents of one variable must agree to be summed. (``x * w`` with x sharded over
    ``data`` and w over ``model`` is sharded over both; x's cotangent is moved back to x's sharding.)

    A primal with reduced or unreduced axes is left alone (its cotangent's type is not its own: JAX
    swaps the two, which funcgrad does not model)."""
    target = jc.explicit_sharding(primal)
    if target is None or jc.has_reduced_axes(target):
        return ct
    current = jc.explicit_sharding(ct)
    if current is not None and current.spec == target.spec:
        return ct
    return lax.reshape(ct, np.shape(ct), **jc.out_sharding(lax.reshape, target))


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


def zeros_like_type(t: Type, like: Any = None) -> Any:
    """Zeros of type ``t``, with the sharding type of ``like`` (the value) under explicit mesh axes."""
    return zero_cotangent(t.shape, t.dtype, jc.explicit_sharding(like))
