"""VJP rules, one module per family; importing this package fills the rule table."""

from funcgrad.rules import custom, elementwise, linear, reduce, shape  # noqa: F401
from funcgrad.rules import conv, cumulative, index, sort, window  # noqa: F401
from funcgrad.rules import collective, control, linalg, placement, special  # noqa: F401
from funcgrad.rules import tag  # noqa: F401
from funcgrad.rules import fft, generic_reduce  # noqa: F401
from funcgrad.rules.registry import defnovjp, defvjp, defzero, supported_primitives, vjp_rules

__all__ = ["defnovjp", "defvjp", "defzero", "supported_primitives", "vjp_rules"]
