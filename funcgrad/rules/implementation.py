"""A primitive funcgrad has no rule for, differentiated through its Python implementation.

Libraries and users define primitives of their own (``jax.extend.core.Primitive`` with
``def_impl``: Equinox's ``noinline``, a user's fused op) and give JAX their derivative rules; funcgrad
cannot use those (they are JAX's AD), but where the primitive's implementation is a Python
function of JAX operations, that function *is* the primitive's meaning: funcgrad traces it and runs
its own reverse sweep over it, as it does over any function. Registering a rule with
``funcgrad.defvjp`` takes precedence. A primitive JAX implements by compiling it (no Python
implementation) still needs a rule, and the error says which library defined it.

A few such primitives mean more than their implementation says (Equinox's ``select_if_vmap``, whose
implementation drops an operand that matters under ``vmap``; its assertion primitives, which are the
identity but must raise when differentiated): ``_OWN_TRANSPOSE`` gives them the rules their library
gives JAX, written here with the primitive's own ``bind``.
"""

from __future__ import annotations

import functools

import jax.numpy as jnp

from funcgrad.core import jax_compat as jc
from funcgrad.core.nested import traced_vjp
from funcgrad.core.registry import RuleRecord, deffallback
from funcgrad.errors import UnsupportedPrimitiveError

_records: dict = {}  # JAX primitive object -> its record (None: not differentiable this way)


def _through_implementation(eqn) -> RuleRecord | None:
    primitive = getattr(eqn.impl, "primitive", None)
    if primitive is None:
        return None
    if primitive not in _records and eqn.primitive in _OWN_TRANSPOSE:
        rule, options = _OWN_TRANSPOSE[eqn.primitive]
        _records[primitive] = RuleRecord(
            eqn.primitive, "rule", functools.partial(rule, primitive), owner=__name__, **options
        )
    if primitive not in _records:
        impl, _ = jc.python_impl(eqn.impl)
        _records[primitive] = (
            None
            if impl is None
            else RuleRecord(
                eqn.primitive,
                "rule",
                functools.partial(_implementation_vjp, impl, eqn.multiple_results),
                perturbed=True,
                owner=__name__,
            )
        )
    return _records[primitive]


def _implementation_vjp(impl, multiple: bool, ct, *primals, out, perturbed, **params):
    """ct_args = the backward sweep of ct through the primitive's own Python implementation"""
    cts = ct if multiple else [ct]  # a list exactly for a multiple-results primitive

    # inputs nothing differentiated flows into, and whose values are known here (constants of the
    # program, or every input outside jit), go in as values: implementations may read them in Python
    # (Equinox's noinline looks its function up by an integer index)
    fixed = [not p and not jc.is_tracer(x) for p, x in zip(perturbed, primals)]
    traced = [x for x, f in zip(primals, fixed) if not f]

    def run(*xs):
        it = iter(xs)
        args = [x if f else next(it) for x, f in zip(primals, fixed)]
        result = impl(*args, **params)
        return list(result) if multiple else [result]

    wrt = [p for p, f in zip(perturbed, fixed) if not f]
    try:
        in_cts = iter(traced_vjp(run, traced, wrt, cts))
        return [None if f else next(in_cts) for f in fixed]
    except RecursionError as err:  # an implementation that binds its own primitive again
        raise UnsupportedPrimitiveError(
            f"the implementation of {eqn_name(impl)} binds the primitive itself, so funcgrad cannot "
            "differentiate through it\n  fix: register a rule with funcgrad.defvjp"
        ) from err


def eqn_name(impl) -> str:
    return getattr(impl, "__qualname__", repr(impl))


def _select_if_vmap_vjp(primitive, ct, pred, x, y, *, out, **params):
    """ct_x = ct where pred, ct_y = ct where not pred (Equinox's own transpose)"""
    # Equinox's select_if_vmap(pred, x, y) is x outside vmap (lax.select(pred, x, y) once pred is
    # batched). Its implementation would give y a symbolic-zero cotangent; Equinox's own transpose
    # gives each operand the cotangent where it is selected and a materialised zero elsewhere, and
    # Equinox's checkpointed while_loop iterates on which cotangents are symbolic zeros until they
    # agree with that answer (with the implementation's, it never stops). Binding the primitive keeps
    # the select batched under an outer vmap.
    zero = jnp.zeros_like(ct)
    return [None, primitive.bind(pred, ct, zero, **params), primitive.bind(pred, zero, ct, **params)]


def _refuse_differentiation(*primals, bind, name, **params):
    # Equinox's nontraceable(x, name=...): the identity, whose JVP rule raises this RuntimeError as soon
    # as a differentiated value reaches it; so does this forward pass of an active equation
    raise RuntimeError(f"Detected differentiation of {name}")


def _nontraceable_vjp(primitive, ct, x, *, out, saved=None, **params):
    """ct_x: none (Equinox's nontraceable refuses differentiation in the forward pass)"""
    raise AssertionError("unreachable: the forward pass refused")  # pragma: no cover


def _nondifferentiable_backward_vjp(primitive, ct, x, *, out, msg, symbolic, **params):
    """ct_x = ct if ct is zero, else an error (Equinox's nondifferentiable_backward)"""
    # Equinox's nondifferentiable_backward(x): the identity, whose transpose raises this RuntimeError for
    # any cotangent that is not a symbolic zero (symbolic=True), or checks at run time that it is all
    # zeros (symbolic=False, with Equinox's error_if: that library defined the primitive)
    if ct is None:
        return [None]
    if symbolic:
        raise RuntimeError(msg)
    from equinox import error_if

    return [error_if(ct, (ct != 0).any(), msg)]


# primitives whose implementation is not their derivative's whole story (by name): the rule does what
# the defining library's JAX rules do
_OWN_TRANSPOSE = {
    "select_if_vmap": (_select_if_vmap_vjp, {}),
    "nontraceable": (_nontraceable_vjp, {"forward": _refuse_differentiation}),
    "nondifferentiable_backward": (_nondifferentiable_backward_vjp, {"symbolic_zeros": True}),
}

deffallback(_through_implementation)
