"""funcgrad: reverse-mode autodiff on its own graph IR and its own VJP rules, on top of JAX.

Public surface:
  * differentiation: ``grad``, ``value_and_grad``, ``vjp``, ``jacrev``, ``jacobian``, ``hessian``
  * graphs: ``trace`` (function + example args -> ``Graph``), ``Graph``, ``Eqn``, ``Var``, ``Literal``
  * extension: ``defvjp``, ``defzero``, ``supported_primitives``
  * seeing backprop: ``tag``, ``backward_graph``, ``draw``, ``sensitivities``, ``module_jacobians``,
    ``backprop_jacobians``, ``saved_residuals``, ``cost_report`` (docs/seeing_backprop.md)
  * checking and debugging: ``check_grads``, ``check_rule``, ``rule_coverage``, ``debug_nans``,
    ``check_differentiable``, ``testing.assert_grads_match`` (docs/debugging.md)
"""

from funcgrad import rules as _rules  # noqa: F401  (fills the rule table)
from funcgrad import testing  # funcgrad.testing.assert_grads_match
from funcgrad.api import grad, hessian, jacobian, jacrev, trace, value_and_grad, vjp
from funcgrad.cache import cache_info, clear_cache
from funcgrad.check import check_grads
from funcgrad.cost import cost_report
from funcgrad.debug import NonFiniteGradientError, debug_nans
from funcgrad.drawing import draw
from funcgrad.errors import (
    FuncgradError,
    InputError,
    NonDifferentiableError,
    TracingError,
    UnsupportedPrimitiveError,
)
from funcgrad.grad_graph import backward_graph
from funcgrad.interpret import typecheck
from funcgrad.ir import Eqn, Graph, Literal, Type, TypeCheckError, Var
from funcgrad.jacobians import backprop_jacobians, module_jacobians
from funcgrad.memory import saved_residuals
from funcgrad.preflight import check_differentiable
from funcgrad.rulecheck import check_rule, rule_coverage
from funcgrad.rules.registry import defvjp, defzero, supported_primitives
from funcgrad.sensitivities import sensitivities
from funcgrad.tagging import tag

__version__ = "0.1.0"

# after the rules and the api (nn imports funcgrad.api; importing it first would be circular)
from funcgrad import nn  # noqa: E402

__all__ = [
    "Eqn",
    "FuncgradError",
    "Graph",
    "InputError",
    "Literal",
    "NonDifferentiableError",
    "TracingError",
    "Type",
    "TypeCheckError",
    "UnsupportedPrimitiveError",
    "Var",
    "cache_info",
    "clear_cache",
    "defvjp",
    "defzero",
    "grad",
    "hessian",
    "jacobian",
    "jacrev",
    "nn",
    "supported_primitives",
    "tag",
    "trace",
    "typecheck",
    "value_and_grad",
    "vjp",
    "backward_graph",
    "draw",
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
