"""A primitive funcgrad has no rule for, differentiated through its Python implementation.

Libraries and users define primitives of their own (``jax.extend.core.Primitive`` with
``def_impl``: Equinox's ``noinline``, a user's fused op) and give JAX their derivative rules; funcgrad
cannot use those (they are JAX's AD), but where the primitive's implementation is a Python
function of JAX operations, that function *is* the primitive's meaning: funcgrad traces it and runs
its own reverse sweep over it, as it does over any function. Registering a rule with
``funcgrad.defvjp`` takes precedence. A primitive JAX implements by compiling it (no Python
implementation) still needs a rule, and the error says which library defined it.
"""

from __future__ import annotations

import functools

from funcgrad.core import jax_compat as jc
from funcgrad.core.nested import traced_vjp
from funcgrad.core.registry import RuleRecord, deffallback
from funcgrad.errors import UnsupportedPrimitiveError

_records: dict = {}  # JAX primitive object -> its record (None: not differentiable this way)


def _through_implementation(eqn) -> RuleRecord | None:
    primitive = getattr(eqn.impl, "primitive", None)
    if primitive is None:
        return None
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


deffallback(_through_implementation)
