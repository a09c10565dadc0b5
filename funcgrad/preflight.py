"""Pre-flight: every reason ``funcgrad.grad`` would fail on a function, listed at once.

``funcgrad.grad`` stops at the first problem it meets. ``check_differentiable``
traces the function once (without running a backward pass) and collects all of
them: integer/boolean or non-array leaves in the differentiated arguments (by
pytree path), a non-scalar or non-floating output (by shape), primitives
without a VJP rule and primitives that cannot be reverse-differentiated such as
``while`` (by the user's file:line), and Python control flow on traced values
(the trace fails; its line is reported and the output is checked by running the
function once eagerly). Each problem carries its fix.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from funcgrad.api import arg_names as _arg_names
from funcgrad.errors import NonDifferentiableError, TracingError
from funcgrad.ir import Graph, Type, Var
from funcgrad.rules.registry import no_vjp_reasons, vjp_rules
from funcgrad.trace import trace_flat, user_line_of

tree_util = jax.tree_util

# Primitives whose outputs never carry a gradient (as in funcgrad.backprop).
_GRADIENT_STOPPERS = {"stop_gradient"}
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

    @property
    def ok(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        if self.ok:
            return f"check_differentiable({self.fun_name}): no problems found"
        n = len(self.problems)
        lines = [f"check_differentiable({self.fun_name}): {n} problem{'s' if n > 1 else ''}"]
        lines += [f"  {i}. {p}" for i, p in enumerate(self.problems, 1)]
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
        leaves = _Leaves(fun, args, kwargs, nums)
        problems += leaves.problems
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
        if graph is not None:
            problems += _graph_problems(graph, leaves.wrt)
        return DifferentiabilityReport(name, _unique(problems))

    return run


class _Leaves:
    """The call's leaves: which are traced, which differentiated, and the problems of the differentiated ones."""

    def __init__(self, fun, args, kwargs, argnums):
        self.fun = fun
        flat, self.tree = tree_util.tree_flatten_with_path((tuple(args), dict(kwargs)))
        self.values = [leaf for _, leaf in flat]
        names = _arg_names(fun, len(args))
        self.traced_idx: list[int] = []
        self.wrt: list[bool] = []
        self.problems: list[Problem] = []
        for i, (path, leaf) in enumerate(flat):
            positional = path[0].idx == 0
            is_array = isinstance(leaf, (jax.Array, np.ndarray, np.generic))
            if positional and path[1].idx in argnums:
                where = names[path[1].idx] + tree_util.keystr(path[2:])
                dtype = _dtype(leaf)
                if dtype is None:
                    self.problems.append(
                        Problem(
                            "non-array leaf",
                            where,
                            f"a {type(leaf).__name__} in a differentiated argument cannot be differentiated",
                            "move it to an argument that is not in argnums, or close over it",
                        )
                    )
                    continue  # passed through unchanged, so the trace can still go on
                if not jnp.issubdtype(dtype, jnp.inexact):
                    kind = "bool" if dtype == jnp.bool_ else np.dtype(dtype).name
                    self.problems.append(
                        Problem(
                            "integer leaf",
                            where,
                            f"{kind}{list(np.shape(leaf))} has no gradient; only floating-point values do",
                            "pass allow_int=True (its gradient is a float0 zero), move it to an argument that is "
                            "not in argnums, or convert it to a float",
                        )
                    )
                self.traced_idx.append(i)
                self.wrt.append(bool(jnp.issubdtype(dtype, jnp.inexact)))
            elif is_array:
                self.traced_idx.append(i)
                self.wrt.append(False)

    def traced_values(self) -> list:
        return [self.values[i] for i in self.traced_idx]

    def flat_fun(self, *traced):
        full = list(self.values)
        for i, v in zip(self.traced_idx, traced):
            full[i] = v
        args, kwargs = tree_util.tree_unflatten(self.tree, full)
        return self.fun(*args, **kwargs)


def _dtype(leaf):
    if isinstance(leaf, (jax.Array, np.ndarray, np.generic, int, float, complex, bool)):
        try:
            return jnp.result_type(leaf)
        except TypeError:
            return None
    return None


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


def _graph_problems(graph: Graph, wrt: Sequence[bool]) -> list[Problem]:
    """Missing rules and non-differentiable primitives on the path from the differentiated inputs."""
    active = {id(v) for v, w in zip(graph.inputs, wrt) if w and v.type.is_float}
    return _scan_graph(graph, active)


def _scan_graph(graph: Graph, active: set) -> list[Problem]:
    problems = []
    for eqn in graph.eqns:
        if eqn.primitive in _GRADIENT_STOPPERS:
            continue
        if not any(isinstance(a, Var) and id(a) in active for a in eqn.inputs):
            continue
        float_outs = [v for v in eqn.outputs if v.type.is_float]
        if not float_outs and eqn.primitive not in no_vjp_reasons:
            continue  # comparisons, casts to int: nothing flows back
        active.update(id(v) for v in float_outs)
        where = eqn.source.where()
        fn = f" (in {eqn.source.function})" if eqn.source.function else ""
        if eqn.primitive in no_vjp_reasons:
            # a registered reason reads "why ... fix: what to do"
            why, _, fix = no_vjp_reasons[eqn.primitive].partition("fix:")
            message = f"primitive {eqn.primitive!r}{fn}: {' '.join(why.split())}"
            fix = " ".join(fix.split()) or "avoid differentiating through it"
            problems.append(Problem("no reverse-mode derivative", where, message, fix))
        elif eqn.primitive not in vjp_rules:
            fix = _KNOWN_FIXES.get(
                eqn.primitive,
                f"register a rule with funcgrad.defvjp({eqn.primitive!r}, rule) (docs/extending.md), or avoid it",
            )
            problems.append(Problem("missing VJP rule", where, f"primitive {eqn.primitive!r}{fn} has no VJP rule", fix))
        if eqn.primitive not in _OPAQUE_BODIES:
            for sub in _subgraphs(eqn):
                # conservatively, every floating input of a nested body may carry a gradient
                problems += _scan_graph(sub, {id(v) for v in sub.inputs if v.type.is_float})
    return problems


def _subgraphs(eqn) -> list[Graph]:
    found = []
    for value in eqn.params.values():
        if isinstance(value, Graph):
            found.append(value)
        elif isinstance(value, (tuple, list)):
            found.extend(v for v in value if isinstance(v, Graph))
    return found


def _control_flow_problem(err: TracingError) -> Problem:
    match = re.search(r"\n  at: (.*)\n", str(err))
    where = match.group(1) if match else "<unknown>"
    return Problem(
        "Python control flow on a traced value",
        where,
        "funcgrad traces abstractly (like jax.jit), so `if`/`while`/`bool()` on a traced value cannot work",
        "use jnp.where for elementwise choices, lax.cond / lax.switch for branches, lax.scan / lax.fori_loop "
        "for loops; or pass the value as a non-differentiated Python scalar",
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
