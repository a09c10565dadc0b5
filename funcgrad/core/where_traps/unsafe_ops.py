"""The table of unsafe operations: ``UNSAFE_OPS``, one ``UnsafeOp`` row per primitive whose derivative is
unbounded (or NaN) at some values of an operand, and the helpers some rows compute their unsafe values
with."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import numpy as np

from funcgrad.core.ir import Eqn, Literal
from funcgrad.core.where_traps.regions import Poles, UnsafeSet, Values, above, below, point


@dataclasses.dataclass(frozen=True)
class UnsafeOp:
    """A primitive whose derivative is unbounded (or NaN) at some values of one of its operands."""

    primitive: str
    # the operand(s) whose value makes the derivative unbounded (indices into eqn.inputs)
    operands: tuple[int, ...]
    # those values, in words, and as a set: or a function of the equation giving the set (None: safe)
    unsafe: str
    values: UnsafeSet | Callable[[Eqn], UnsafeSet | None]
    # how users write it, for the fix ("{}" is the operand), and a value to substitute at masked points
    call: str
    safe_value: str
    operand_name: str = "input"
    # the derivative is unbounded only where every listed operand is unsafe at once (atan2 at 0, 0)
    all_operands: bool = False

    def unsafe_set(self, eqn: Eqn) -> UnsafeSet | None:
        return self.values(eqn) if callable(self.values) else self.values


def _pow_base(eqn: Eqn) -> UnsafeSet | None:
    # d x^p = p x^(p-1): infinite at 0 for p < 1, NaN for x < 0 unless p is an integer; p unknown: both
    p = _literal_scalar(eqn.inputs[1])
    if p is None:
        return Values(below(0.0, True))
    if p == 0 or (float(p).is_integer() and p >= 1):
        return None
    if float(p).is_integer():
        return Values(point(0.0))
    return Values(below(0.0, p < 1))


def _integer_pow_base(eqn: Eqn) -> UnsafeSet | None:
    return Values(point(0.0)) if eqn.params.get("y", 1) < 0 else None


def _overflow(log_of_max: Callable[[np.dtype], float]) -> Callable[[Eqn], UnsafeSet | None]:
    """exp-like: the derivative overflows to inf beyond the dtype's largest exponent."""

    def region(eqn: Eqn) -> UnsafeSet | None:
        dtype = eqn.inputs[0].type.dtype
        if not np.issubdtype(dtype, np.floating):
            return None
        return Values(above(float(log_of_max(dtype)), True))

    return region


_LOG_MAX = lambda dtype: np.log(float(jax.numpy.finfo(dtype).max))
_LOG2_MAX = lambda dtype: np.log2(float(jax.numpy.finfo(dtype).max))
_OUTSIDE_UNIT = Values((*below(-1.0, True), *above(1.0, True)))

# One row per primitive. Derivatives: sqrt 1/(2 sqrt x), rsqrt -x^(-3/2)/2, cbrt x^(-2/3)/3, log 1/x,
# log1p 1/(1+x), div -x/y^2 (and 1/y), rem -trunc(x/y), x^p (above), asin/acos 1/sqrt(1-x^2),
# atanh 1/(1-x^2), acosh 1/sqrt(x^2-1), erf_inv sqrt(pi)/2 exp(erfinv(x)^2), lgamma digamma(x),
# digamma polygamma(1, x), atan2 (y, -x)/(x^2+y^2), exp exp(x) (inf once exp overflows).
UNSAFE_OPS: dict[str, UnsafeOp] = {
    row.primitive: row
    for row in (
        UnsafeOp("sqrt", (0,), "<= 0", Values(below(0.0, True)), "jnp.sqrt({})", "1.0"),
        UnsafeOp("rsqrt", (0,), "<= 0", Values(below(0.0, True)), "lax.rsqrt({})", "1.0"),
        UnsafeOp("cbrt", (0,), "0", Values(point(0.0)), "jnp.cbrt({})", "1.0"),
        UnsafeOp("log", (0,), "<= 0", Values(below(0.0, True)), "jnp.log({})", "1.0"),
        UnsafeOp("log1p", (0,), "<= -1", Values(below(-1.0, True)), "jnp.log1p({})", "0.0"),
        UnsafeOp("div", (1,), "0", Values(point(0.0)), "y / {}", "1.0", operand_name="denominator"),
        UnsafeOp("rem", (1,), "0", Values(point(0.0)), "jnp.fmod(y, {})", "1.0", operand_name="divisor"),
        UnsafeOp("pow", (0,), "0 (or < 0) for an exponent < 1 or not an integer", _pow_base, "{} ** p", "1.0", "base"),
        UnsafeOp("integer_pow", (0,), "0 for a negative exponent", _integer_pow_base, "{} ** -n", "1.0", "base"),
        UnsafeOp("asin", (0,), "<= -1 or >= 1", _OUTSIDE_UNIT, "jnp.arcsin({})", "0.0"),
        UnsafeOp("acos", (0,), "<= -1 or >= 1", _OUTSIDE_UNIT, "jnp.arccos({})", "0.0"),
        UnsafeOp("atanh", (0,), "<= -1 or >= 1", _OUTSIDE_UNIT, "jnp.arctanh({})", "0.0"),
        UnsafeOp("erf_inv", (0,), "<= -1 or >= 1", _OUTSIDE_UNIT, "jax.scipy.special.erfinv({})", "0.0"),
        UnsafeOp("acosh", (0,), "<= 1", Values(below(1.0, True)), "jnp.arccosh({})", "2.0"),
        UnsafeOp("lgamma", (0,), "a pole (0, -1, -2, ...)", Poles(), "jax.scipy.special.gammaln({})", "1.0"),
        UnsafeOp("digamma", (0,), "a pole (0, -1, -2, ...)", Poles(), "jax.scipy.special.digamma({})", "1.0"),
        UnsafeOp("atan2", (0, 1), "0 (both)", Values(point(0.0)), "jnp.arctan2({}, x)", "1.0", all_operands=True),
        UnsafeOp("exp", (0,), "large enough to overflow", _overflow(_LOG_MAX), "jnp.exp({})", "0.0"),
        UnsafeOp("expm1", (0,), "large enough to overflow", _overflow(_LOG_MAX), "jnp.expm1({})", "0.0"),
        UnsafeOp("exp2", (0,), "large enough to overflow", _overflow(_LOG2_MAX), "jnp.exp2({})", "0.0"),
    )
}


def _literal_scalar(atom) -> float | None:
    if isinstance(atom, Literal) and np.size(atom.value) == 1:
        return float(np.asarray(atom.value).reshape(()).real)
    return None
