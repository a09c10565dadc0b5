"""The VJP rule table: one entry per primitive, one signature for all.

A rule has the signature::

    def mul_vjp(ct, x, y, *, out, **params) -> (ct_x, ct_y)

``ct`` is the cotangent of the output (a list, one per output, for primitives
with several outputs; zeros are filled in for outputs that received none, or
``None`` is passed for them to rules registered with ``symbolic_zeros=True``);
the primal inputs follow positionally; ``out`` is the primal output (a list
for several outputs); ``params`` are the equation's parameters. A rule
returns one cotangent per input, ``None`` for a symbolic zero (no gradient).

Rules never un-broadcast, cast or accumulate: the reverse sweep
(``funcgrad.backprop``) sums a rank-0 operand's cotangent, casts to the
operand's dtype, and adds cotangents on fan-out.
"""

from __future__ import annotations

from collections.abc import Callable

VJPRule = Callable[..., "tuple | list"]

# primitive name -> VJP rule
vjp_rules: dict[str, VJPRule] = {}

# primitive name -> why it cannot be reverse-differentiated, and what to do instead
no_vjp_reasons: dict[str, str] = {}

# primitives whose rules take ``None`` for an output that received no cotangent (instead of zeros):
# rules whose terms can be 0 * inf, e.g. eigh's 1/(w_j - w_i) at repeated eigenvalues when only the
# eigenvalues are used, where JAX (whose transposes skip symbolic zeros) gives a finite answer
symbolic_zero_rules: set[str] = set()

# primitives whose outputs carry no gradient at all (comparisons, rounding, random bits, ...)
zero_vjp_primitives: set[str] = set()


def defvjp(primitive: str, rule: VJPRule | None = None, *, symbolic_zeros: bool = False):
    """Register (or override) the VJP rule of ``primitive``; usable as a decorator.

    With ``symbolic_zeros=True`` a rule of a several-output primitive receives ``None``
    (not an array of zeros) for each output that received no cotangent.

    Example::

        @funcgrad.defvjp("sin")
        def sin_vjp(ct, x, *, out, **params):
            return (ct * jnp.cos(x),)
    """
    if rule is None:
        return lambda r: defvjp(primitive, r, symbolic_zeros=symbolic_zeros)
    vjp_rules[primitive] = rule
    if symbolic_zeros:
        symbolic_zero_rules.add(primitive)
    else:
        symbolic_zero_rules.discard(primitive)
    no_vjp_reasons.pop(primitive, None)
    zero_vjp_primitives.discard(primitive)
    return rule


def defzero(*primitives: str) -> None:
    """Declare that ``primitives`` have zero derivative everywhere (or no float outputs)."""
    for p in primitives:
        zero_vjp_primitives.add(p)
        symbolic_zero_rules.discard(p)
        vjp_rules[p] = _zero_vjp


def _zero_vjp(ct, *primals, out, **params):
    # piecewise-constant or integer-valued: the derivative is zero everywhere it exists
    return [None] * len(primals)


def defnovjp(primitive: str, reason: str) -> None:
    """Declare that ``primitive`` cannot be reverse-differentiated, with the fix to suggest."""
    no_vjp_reasons[primitive] = reason
    vjp_rules.pop(primitive, None)
    symbolic_zero_rules.discard(primitive)


def supported_primitives() -> list[str]:
    """Names of all primitives funcgrad can reverse-differentiate, sorted."""
    return sorted(vjp_rules)
