"""How cotangents add up, and what "no cotangent" is, for each dtype.

On fan-out a value's cotangents are summed, and a missing one is zero: for the floating dtypes.
JAX dispatches both on the dtype, and an *extended* dtype (``jax.dtypes.extended``) may define its
own: Flax's ``fp8_ops.fp32_max_grad`` accumulates the gradients of fp8 scaling metadata by *max*,
with -inf as its zero. funcgrad follows the dtype's rules (``dtype._rules.add`` and ``.zero``)
wherever cotangents meet: the sweep's fan-out and every loop or branch that carries them.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax import lax


def _rules(dtype):
    """The rules of an extended dtype that defines its own accumulation, else None."""
    rules = getattr(dtype, "_rules", None)
    if rules is None or not hasattr(rules, "add"):
        return None
    return rules


def add_cotangents(a: Any, b: Any) -> Any:
    """``a + b`` for two cotangents of one variable, as JAX adds them (by the dtype's own rule)."""
    rules = _rules(getattr(a, "dtype", None))
    if rules is not None:
        return rules.add(a.dtype, a, b)
    return lax.add(a, b)


def zero_cotangent(shape, dtype) -> Any:
    """The cotangent of a variable nothing flowed back to: zeros, or the dtype's own zero."""
    rules = _rules(dtype)
    if rules is not None and hasattr(rules, "zero"):
        return lax.broadcast(rules.zero(dtype), tuple(shape))
    return jnp.zeros(shape, dtype)


def carries_gradient(dtype) -> bool:
    """Whether values of ``dtype`` carry a gradient: floating and complex dtypes, and extended dtypes
    whose tangent dtype is not float0 (Flax's fp8 metadata dtype; not PRNG keys)."""
    try:
        # jax.dtypes knows the ml_dtypes floats (bfloat16, float8_*) that NumPy does not
        if jax.dtypes.issubdtype(dtype, jnp.inexact):
            return True
    except TypeError:
        pass
    rules = getattr(dtype, "_rules", None)
    tangent = getattr(rules, "tangent_dtype", None)
    if tangent is None:
        return False
    try:
        return tangent(dtype) != jax.dtypes.float0
    except Exception:  # noqa: BLE001  (a dtype whose rule cannot say: treat as not differentiable)
        return False
