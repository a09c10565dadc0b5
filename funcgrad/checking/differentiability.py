"""Pre-flight: every reason ``funcgrad.grad`` would fail on a function, listed at once.

``funcgrad.grad`` stops at the first problem it meets. ``check_differentiable``
traces the function once (without running a backward pass) and collects all of
them: integer/boolean or non-array leaves in the differentiated arguments (by
pytree path), a non-scalar or non-floating output (by shape), primitives
without a VJP rule and primitives that cannot be reverse-differentiated such as
``while`` (by the user's file:line), and Python control flow on traced values
(the trace fails; its line is reported and the output is checked by running the
function once eagerly). Each problem carries its fix.

It also lists, as ``warnings``, the NaN traps of ``funcgrad.core.where_traps``: a ``jnp.where`` (or a
``jnp.clip``) masking an operation whose derivative is infinite at the masked points, so that the
gradient is NaN there although the value is finite. They do not stop ``funcgrad.grad``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from funcgrad.core import registry, where_traps
from funcgrad.core.activity import activity
from funcgrad.core.call import Call, LeafProblem, dtype_name
from funcgrad.core.ir import Graph, Type
from funcgrad.core.tracer import trace_flat, user_line_of
from funcgrad.errors import NonDifferentiableError, TracingError

tree_util = jax.tree_util

# Equations whose nested graphs are not differentiated by funcgrad (the user's rule is).
_OPAQUE_BODIES = {"custom_jvp_call", "custom_vjp_call"}
# Fixes for primitives that have neither a rule nor a registered reason yet.
_KNOWN_FIXES = {
    "while": "reverse-mode differentiation of lax.while_loop is impossible (its trip count is dynamic): use "
    "lax.scan, or lax.fori_loop with static Python-int bounds (it becomes a scan)",
}


@dataclasses.dataclass(frozen=True)
class Problem:
    """One reason the function cannot be differentiated as called."""

    kind: str  # "integer leaf", "non-array leaf", "non-scalar output", "missing rule", ...
    where: str  # a pytree path ("params['w']"), "output", or the user's file:line
    message: str
    fix: str

    def __str__(self) -> str:
        return f"{self.kind} at {self.where}: {self.message}\n     fix: {self.fix}"


@dataclasses.dataclass
class DifferentiabilityReport:
    """All problems found by ``check_differentiable``; empty when ``funcgrad.grad`` will work."""

    fun_name: str
    problems: list[Problem]
    # what does not stop funcgrad.grad but makes its result NaN: the NaN traps ("NaN trap: where", "NaN trap: clip")
    warnings: list[Problem] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        if self.ok:
            lines = [f"check_differentiable({self.fun_name}): no problems found"]
        else:
            n = len(self.problems)
            lines = [f"check_differentiable({self.fun_name}): {n} problem{'s' if n > 1 else ''}"]
            lines += [f"  {i}. {p}" for i, p in enumerate(self.problems, 1)]
        if self.warnings:
            n = len(self.warnings)
            lines.append(f"  {n} warning{'s' if n > 1 else ''} (the gradient will be NaN at some inputs):")
            lines += [f"  {i}. {p}" for i, p in enumerate(self.warnings, 1)]
        return "\n".join(lines)

    def raise_if_any(self) -> None:
        """Raise ``NonDifferentiableError`` listing every problem, if there is any."""
        if self.problems:
            raise NonDifferentiableError(str(self))


def check_differentiable(fun: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False) -> Callable:
    """Return a function that lists, at once, every reason ``funcgrad.grad(fun, argnums)`` would fail.

    Example::

        report = funcgrad.check_differentiable(loss)(params, x, y)
        print(report)            # one line per problem, with its path or file:line and the fix
        report.raise_if_any()

    Args:
      fun: the function to differentiate.
      argnums: which positional argument(s) would be differentiated, as in ``funcgrad.grad``.
      has_aux: ``fun`` returns ``(loss, aux)``; only ``loss`` must be a scalar.

    Returns:
      A function with ``fun``'s signature returning a ``DifferentiabilityReport``.
    """

    def run(*args, **kwargs) -> DifferentiabilityReport:
        name = getattr(fun, "__name__", type(fun).__name__)
        problems: list[Problem] = []
        nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
        bad = [n for n in nums if not isinstance(n, int) or not -len(args) <= n < len(args)]
        if bad:
            fix = f"pass argnums between 0 and {len(args) - 1}" if args else "pass the differentiated arguments"
            problems.append(
                Problem(
                    "argnums", f"argnums={argnums!r}", f"{name} was called with {len(args)} positional argument(s)", fix
                )
            )
            return DifferentiabilityReport(name, problems)
        nums = tuple(n % len(args) for n in nums)
        leaves = Call(fun, args, kwargs, nums, allow_int=False, collect=True)
        problems += [_leaf_problem(p) for p in leaves.problems]
        graph = out = None
        try:
            traced = trace_flat(leaves.flat_fun, leaves.traced_values())
            graph = traced.graph
            out = tree_util.tree_unflatten(
                traced.out_tree, [jax.ShapeDtypeStruct(t.shape, t.dtype) for t in graph.out_types]
            )
        except TracingError as err:
            problems.append(_control_flow_problem(err))
            out = _run_eagerly(fun, args, kwargs)
        except Exception as err:  # noqa: BLE001 - any failure to trace is a problem to report
            problems.append(_trace_failure(err))
        if out is not None:
            problems += _output_problems(out, name, has_aux)
        traps = []
        if graph is not None:
            problems += _graph_problems(graph, leaves.wrt)
            traps = [_trap_warning(t) for t in where_traps.find_traps(graph, leaves.wrt)]
        return DifferentiabilityReport(name, _unique(problems), _unique(traps))

    return run


def _leaf_problem(problem: LeafProblem) -> Problem:
    if problem.kind == "non-array leaf":
        return Problem(
            "non-array leaf",
            problem.path,
            f"a {type(problem.leaf).__name__} in a differentiated argument cannot be differentiated",
            "move it to an argument that is not in argnums, or close over it",
        )
    return Problem(
        "integer leaf",
        problem.path,
        f"{dtype_name(problem.leaf)}{list(np.shape(problem.leaf))} has no gradient; only floating-point values do",
        "pass allow_int=True (its gradient is a float0 zero), move it to an argument that is not in argnums, or "
        "convert it to a float",
    )


def _output_problems(out, name: str, has_aux: bool) -> list[Problem]:
    if has_aux:
        if not (isinstance(out, (tuple, list)) and len(out) == 2):
            return [
                Problem("output", "output", f"has_aux=True but {name} does not return a pair", "return (loss, aux)")
            ]
        out = out[0]
    leaves = tree_util.tree_leaves(out)
    shapes = ", ".join(Type(tuple(np.shape(y)), np.dtype(_dtype_of(y))).short() for y in leaves) or "nothing"
    if len(leaves) != 1 or np.shape(leaves[0]) != ():
        return [
            Problem(
                "non-scalar output",
                "output",
                f"{name} returns {shapes}; grad needs one scalar",
                "reduce it with .sum() or .mean(); use funcgrad.jacrev for the full Jacobian; or return "
                "(loss, extras) and pass has_aux=True",
            )
        ]
    if not jnp.issubdtype(_dtype_of(leaves[0]), jnp.floating):
        return [
            Problem(
                "non-float output",
                "output",
                f"{name} returns {shapes}; grad needs a real floating-point scalar",
                "compute the loss in a floating-point dtype (e.g. x.astype(jnp.float32))",
            )
        ]
    return []


def _dtype_of(y):
    dtype = getattr(y, "dtype", None)
    return jnp.result_type(y) if dtype is None else dtype


def _graph_problems(graph: Graph, wrt) -> list[Problem]:
    """Missing rules and non-differentiable primitives among the equations the sweep would differentiate
    (``funcgrad.core.activity``), and inside their nested programs."""
    problems = []
    for eqn in activity(graph, wrt).eqns:
        where = eqn.source.where()
        fn = f" (in {eqn.source.function})" if eqn.source.function else ""
        record = registry.lookup_eqn(eqn)  # as the sweep looks it up (a Python implementation will do)
        if record is not None and record.kind == "refused":
            # a registered reason reads "why ... fix: what to do"
            why, _, fix = record.reason.partition("fix:")
            message = f"primitive {eqn.primitive!r}{fn}: {' '.join(why.split())}"
            fix = " ".join(fix.split()) or "avoid differentiating through it"
            problems.append(Problem("no reverse-mode derivative", where, message, fix))
        elif record is None or not record.has_vjp:
            fix = _KNOWN_FIXES.get(
                eqn.primitive,
                f"register a rule with funcgrad.defvjp({eqn.primitive!r}, rule) (docs/extending.md), or avoid it",
            )
            problems.append(Problem("missing VJP rule", where, f"primitive {eqn.primitive!r}{fn} has no VJP rule", fix))
        if eqn.primitive not in _OPAQUE_BODIES:
            for sub in eqn.subgraphs():
                # conservatively, every floating input of a nested body may carry a gradient
                problems += _graph_problems(sub, [v.type.is_float for v in sub.inputs])
    return problems


def _trap_warning(trap: where_traps.NaNTrap) -> Problem:
    """A NaN trap as a report entry: at the where's (or clip's) line; the message names the unsafe line."""
    return Problem(f"NaN trap: {trap.kind}", trap.mask_where, trap.message, trap.fix)


def _control_flow_problem(err: TracingError) -> Problem:
    match = re.search(r"\n  at: (.*)\n", str(err))
    where = match.group(1) if match else "<unknown>"
    return Problem(
        "Python control flow on a traced value",
        where,
        "`if`/`while`/`bool()` on a traced value: funcgrad.grad works on concrete arrays (it records the "
        "branch the values take, as jax.grad does), but not under jax.jit, jax.vmap or another transformation",
        "to run under jax.jit, use jnp.where for elementwise choices, lax.cond / lax.switch for branches, "
        "lax.scan / lax.fori_loop for loops; or pass the value as a non-differentiated Python scalar",
    )


def _trace_failure(err: Exception) -> Problem:
    first = (str(err).strip().splitlines() or [type(err).__name__])[0]
    return Problem(
        "trace failed", user_line_of(err.__traceback__), f"{type(err).__name__}: {first}", "fix the error above"
    )


def _run_eagerly(fun, args, kwargs):
    """The output of ``fun`` on concrete values (for the output check when tracing failed), or None."""
    try:
        out = fun(*args, **kwargs)
    except Exception:  # noqa: BLE001 - the trace failure is already reported
        return None
    return tree_util.tree_map(lambda y: jax.ShapeDtypeStruct(np.shape(y), _dtype_of(y)), out)


def _unique(problems: list[Problem]) -> list[Problem]:
    seen, kept = set(), []
    for p in problems:
        key = (p.kind, p.where, p.message)
        if key not in seen:
            seen.add(key)
            kept.append(p)
    return kept
