"""funcgrad: reverse-mode autodiff on its own graph IR and its own VJP rules, on top of JAX.

The layers (docs/architecture.md): ``core`` (the engine) <- ``rules`` (VJP rules by family) <-
``api`` <- ``inspect`` (seeing backprop), ``checking`` (gradient checks), ``nn`` (models); this
module is the only one that imports them all.

Public surface:
  * differentiation: ``grad``, ``value_and_grad``, ``vjp``, ``jacrev``, ``jacobian``, ``hessian``;
    forward mode (from the reverse sweep, transposed): ``jvp``, ``linearize``, ``jacfwd``, ``linear_transpose``
  * speed: a repeated eager call runs compiled (``hot_compilation``, ``set_hot_compilation``; ``cache_info``
    counts the compiled entries; docs/speed.md)
  * loops: ``while_loop`` (a ``lax.while_loop`` bounded by ``max_steps``, reverse-differentiable)
  * per-example: ``per_example_grad_norms``, ``clipped_grad`` (DP-SGD's clipping), without per-example gradients
  * graphs: ``trace`` (function + example args -> ``Graph``), ``Graph``, ``Eqn``, ``Var``, ``Literal``
  * extension: ``defvjp``, ``defzero``, ``supported_primitives``
  * seeing backprop: ``tag``, ``backward_graph``, ``draw``, ``sensitivities``, ``module_jacobians``,
    ``backprop_jacobians``, ``saved_residuals``, ``cost_report``, ``explore`` (an interactive page of one
    gradient computation: ``Exploration``) (docs/seeing_backprop.md)
  * checking and debugging: ``check_grads``, ``check_rule``, ``rule_coverage``, ``debug_nans``,
    ``check_differentiable`` (and its NaN-trap lint: ``enable_where_lint``, ``NaNTrapWarning``),
    ``testing.assert_grads_match`` (docs/debugging.md)
"""

from funcgrad import nn, testing  # funcgrad.nn, funcgrad.testing.assert_grads_match
from funcgrad.api import (
    grad,
    hessian,
    jacfwd,
    jacobian,
    jacrev,
    jvp,
    linear_transpose,
    linearize,
    trace,
    value_and_grad,
    vjp,
)
from funcgrad.api.bounded_while import while_loop
from funcgrad.api.linearity import NonLinearError
from funcgrad.api.per_example import PerExampleNorms, clipped_grad, per_example_grad_norms
from funcgrad.checking.check_grads import check_grads
from funcgrad.checking.differentiability import check_differentiable
from funcgrad.checking.nan_hunt import NonFiniteGradientError, debug_nans
from funcgrad.checking.rule_check import check_rule, rule_coverage
from funcgrad.core.cache import cache_info, clear_cache
from funcgrad.core.hot_calls import hot_compilation, set_hot_compilation
from funcgrad.core.ir import Eqn, Graph, Literal, Type, Var
from funcgrad.core.registry import defvjp, defzero, supported_primitives
from funcgrad.core.tags import tag
from funcgrad.core.typecheck import TypeCheckError, typecheck
from funcgrad.core.where_traps import enable_where_lint
from funcgrad.errors import (
    CotangentError,
    CustomVJPError,
    ForwardModeError,
    FuncgradError,
    InputError,
    NaNTrapWarning,
    NonDifferentiableError,
    TangentError,
    TracingError,
    UnsupportedPrimitiveError,
    UntestedJAXError,
    UntestedJAXWarning,
)
from funcgrad.inspect.backward_graph import backward_graph
from funcgrad.inspect.cost import cost_report
from funcgrad.inspect.drawing import draw
from funcgrad.inspect.explorer import Exploration, explore
from funcgrad.inspect.jacobians import backprop_jacobians, module_jacobians
from funcgrad.inspect.residuals import saved_residuals
from funcgrad.inspect.sensitivities import sensitivities

__version__ = "0.1.0"


def _warn_if_jax_is_untested() -> None:
    from funcgrad.core import jax_compat

    if jax_compat.UNTESTED_JAX:
        import warnings

        import jax

        warnings.warn(
            f"funcgrad is tested with JAX up to {'.'.join(map(str, jax_compat.NEWEST_TESTED))}.x and this is "
            f"JAX {jax.__version__}. funcgrad refuses (UntestedJAXError) any primitive parameter its rules were "
            "not written for, rather than risk a wrong gradient; compare with JAX once with "
            "funcgrad.check_grads(f, args). See docs/jax_versions.md.",
            UntestedJAXWarning,
            stacklevel=3,
        )


_warn_if_jax_is_untested()

__all__ = [
    "CotangentError",
    "CustomVJPError",
    "Eqn",
    "ForwardModeError",
    "FuncgradError",
    "Graph",
    "InputError",
    "Literal",
    "NaNTrapWarning",
    "NonDifferentiableError",
    "NonLinearError",
    "PerExampleNorms",
    "TangentError",
    "TracingError",
    "Type",
    "TypeCheckError",
    "UnsupportedPrimitiveError",
    "UntestedJAXError",
    "UntestedJAXWarning",
    "Var",
    "cache_info",
    "hot_compilation",
    "set_hot_compilation",
    "clear_cache",
    "clipped_grad",
    "defvjp",
    "defzero",
    "enable_where_lint",
    "grad",
    "hessian",
    "jacfwd",
    "jacobian",
    "jacrev",
    "jvp",
    "linear_transpose",
    "linearize",
    "nn",
    "per_example_grad_norms",
    "supported_primitives",
    "tag",
    "trace",
    "typecheck",
    "value_and_grad",
    "vjp",
    "while_loop",
    "backward_graph",
    "draw",
    "explore",
    "Exploration",
    "sensitivities",
    "backprop_jacobians",
    "module_jacobians",
    "saved_residuals",
    "cost_report",
    "check_grads",
    "check_rule",
    "rule_coverage",
    "debug_nans",
    "NonFiniteGradientError",
    "check_differentiable",
    "testing",
]
