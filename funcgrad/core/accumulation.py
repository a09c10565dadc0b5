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
import numpy as np
from jax import lax

from funcgrad.core import jax_compat as jc


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


def zero_cotangent(shape, dtype, sharding=None) -> Any:
    """The cotangent of a variable nothing flowed back to: zeros, or the dtype's own zero.

    ``sharding`` (the primal's sharding type under explicit mesh axes, else None) is the zeros' own:
    a cotangent has its primal's type, sharding included, as in JAX (``zeros_like_shaped_array``)."""
    rules = _rules(dtype)
    if rules is not None and hasattr(rules, "zero"):
        zero = rules.zero(dtype)
    elif sharding is None:
        return jnp.zeros(shape, dtype)
    else:
        zero = jnp.zeros((), dtype)
    return lax.broadcast(zero, tuple(shape), **jc.out_sharding(lax.broadcast, sharding))


def zeros_like_primal(x, dtype=None) -> Any:
    """Zeros shaped like the primal ``x``, of ``dtype`` (x's own by default), sharded as ``x`` under
    explicit mesh axes: what a rule writes a slice's cotangent into."""
    dtype = jnp.result_type(x) if dtype is None else dtype
    return zero_cotangent(np.shape(x), dtype, jc.explicit_sharding(x))


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
