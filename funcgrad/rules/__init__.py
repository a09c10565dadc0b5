"""VJP rules, one module per family; importing this package fills the rule table."""

from funcgrad.core.registry import defnovjp, defvjp, defzero, supported_primitives, vjp_rules
from funcgrad.rules import (  # noqa: F401  (each module registers its rules on import)
    checkpoint,
    collective,
    control,
    conv,
    cumulative,
    custom,
    elementwise,
    fft,
    generic_reduce,
    implementation,
    index,
    linalg,
    linear,
    placement,
    reduce,
    shape,
    sort,
    special,
    tag,
    window,
)

__all__ = ["defnovjp", "defvjp", "defzero", "supported_primitives", "vjp_rules"]
