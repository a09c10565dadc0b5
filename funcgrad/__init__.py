"""funcgrad: reverse-mode autodiff on its own graph IR and its own VJP rules, on top of JAX.

Public surface:
  * differentiation: ``grad``, ``value_and_grad``, ``vjp``, ``jacrev``, ``jacobian``, ``hessian``
  * graphs: ``trace`` (function + example args -> ``Graph``), ``Graph``, ``Eqn``, ``Var``, ``Literal``
  * extension: ``defvjp``, ``defzero``, ``supported_primitives``
"""

from funcgrad import rules as _rules  # noqa: F401  (fills the rule table)
from funcgrad.cache import cache_info, clear_cache
from funcgrad.api import grad, hessian, jacobian, jacrev, trace, value_and_grad, vjp
from funcgrad.errors import (
    FuncgradError,
    InputError,
    NonDifferentiableError,
    TracingError,
    UnsupportedPrimitiveError,
)
from funcgrad.interpret import typecheck
from funcgrad.ir import Eqn, Graph, Literal, Type, TypeCheckError, Var
from funcgrad.rules.registry import defvjp, defzero, supported_primitives

__version__ = "0.1.0"

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
    "supported_primitives",
    "trace",
    "typecheck",
    "value_and_grad",
    "vjp",
]
