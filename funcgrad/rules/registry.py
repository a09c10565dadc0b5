"""The rule registry under the import path earlier releases documented (``docs/extending.md``).

The registry itself is ``funcgrad.core.registry`` (the sweep reads it, and the core imports
nothing above it); this module only re-exports it.
"""

from funcgrad.core.registry import (
    Registration,
    RuleRecord,
    defnovjp,
    defstop,
    defvjp,
    defzero,
    lookup,
    no_vjp_reasons,
    records,
    supported_primitives,
    symbolic_zero_rules,
    vjp_rules,
    zero_vjp_primitives,
)

__all__ = [
    "Registration",
    "RuleRecord",
    "defnovjp",
    "defstop",
    "defvjp",
    "defzero",
    "lookup",
    "no_vjp_reasons",
    "records",
    "supported_primitives",
    "symbolic_zero_rules",
    "vjp_rules",
    "zero_vjp_primitives",
]
