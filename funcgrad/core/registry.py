"""The rule registry: one record per primitive, one rule signature for all.

A rule has the signature::

    def mul_vjp(ct, x, y, *, out, **params) -> (ct_x, ct_y)

``ct`` is the cotangent of the output; for a primitive with multiple results (JAX's
``multiple_results``: ``scan``, ``cond``, ``sort``, ``split``, ...) it is a list, one per output,
even when there is one output; otherwise it is the bare cotangent. The sweep decides this once,
so no rule normalises ``ct``. An output that received no cotangent gets zeros, or ``None`` for a
rule registered with ``symbolic_zeros=True``. The primal inputs follow positionally; ``out`` is
the primal output (a list exactly when ``ct`` is); ``params`` are the equation's parameters. A
rule returns one cotangent per input, ``None`` for a symbolic zero (no gradient).

Rules never un-broadcast, cast or accumulate: the sweep (``funcgrad.core.sweep``) sums a rank-0
operand's cotangent, casts to the operand's dtype, and adds cotangents on fan-out.

The first line of a rule's docstring is its maths (``ct_x = ct · cos(x)``), which
``RuleRecord.math`` reads and ``funcgrad.explore`` shows at each backward step.

What the registry knows of a primitive is one ``RuleRecord``: a VJP rule, or "zero derivative",
or "stops the gradient", or "not differentiable, because ..., instead ...", and whether the rule
takes symbolic zeros. ``defvjp``, ``defzero``, ``defstop`` and ``defnovjp`` each replace the whole
record and return a ``Registration``, whose ``restore()`` (or ``with`` block) puts the previous
record back, so a test or a user can override a rule without leaking it. funcgrad's own rule
modules may register a primitive only once.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import sys
from collections.abc import Callable, Iterator, Mapping, Set
from typing import Any, Literal

VJPRule = Callable[..., "tuple | list"]
Kind = Literal["rule", "zero", "stop", "refused"]


@dataclasses.dataclass(frozen=True)
class RuleRecord:
    """All the registry knows about one primitive."""

    primitive: str
    kind: Kind
    # the VJP rule (kind "rule" or "zero"); None for "stop" and "refused"
    vjp: VJPRule | None = None
    # kind "refused": why it cannot be reverse-differentiated, then "fix: ..." what to do instead
    reason: str | None = None
    # the rule receives None (not zeros) for outputs that received no cotangent
    symbolic_zeros: bool = False
    # the rule also receives ``perturbed``: per input, whether a differentiated input flows into it
    perturbed: bool = False
    # how the sweep's forward pass evaluates an active equation: forward(*primals, **params) ->
    # (outputs, saved); the rule then receives ``saved=`` (None if the values came from elsewhere)
    forward: Callable | None = None
    # the sweep runs the rule even when no output received a cotangent (it gets None for each, so the
    # record has symbolic_zeros): JAX runs a custom_vjp's bwd so, and a bwd may return cotangents that
    # do not come from its inputs' (Flax's fp8 bwd returns the new amax history as its gradient)
    runs_without_cotangent: bool = False
    # for a primitive with a nested program: outputs_perturbed(perturbed, **params) -> one bool per output,
    # whether a perturbation of the inputs flagged in ``perturbed`` reaches it (through the program, as
    # JAX's JVP of the primitive decides its nonzero tangents); without it every float output of an
    # active equation is perturbed
    outputs_perturbed: Callable | None = None
    # the module that registered it (funcgrad's own rule modules may register a primitive once)
    owner: str = ""

    @property
    def has_vjp(self) -> bool:
        return self.vjp is not None

    @property
    def math(self) -> str | None:
        """The rule as one line of maths, e.g. ``ct_x = ct · cos(x)``: the first line of the rule's
        docstring (so it lives beside the code it describes; ``funcgrad.explore`` shows it at each step
        of the backward pass), or what the kind says for the others; None for an undocumented rule."""
        if self.kind == "zero":
            return "ct_x = 0 for every input (piecewise constant: the derivative is zero)"
        if self.kind == "stop":
            return "no cotangent flows back (the gradient stops here)"
        if self.kind == "refused":
            return f"not differentiable: {(self.reason or '').strip().splitlines()[0]}"
        rule = self.vjp
        while isinstance(rule, functools.partial):  # a rule bound to some arguments keeps its own docstring
            rule = rule.func
        doc = inspect.getdoc(rule)
        return doc.strip().splitlines()[0] if doc and doc.strip() else None

    @property
    def stops_gradient(self) -> bool:
        """Whether its outputs never carry a gradient, whatever its inputs (zero derivative included)."""
        return self.kind in ("zero", "stop")


_records: dict[str, RuleRecord] = {}
# bumped on every change, so that what was decided from the records (funcgrad.core.activity) is redone
_version = [0]


def version() -> int:
    """A number that changes whenever a record is registered or restored."""
    return _version[0]


def lookup(primitive: str) -> RuleRecord | None:
    """The record of ``primitive``, or None if funcgrad knows nothing of it."""
    return _records.get(primitive)


def records() -> Mapping[str, RuleRecord]:
    """Every record, by primitive name (a read-only view)."""
    return _RecordView(lambda r: True, lambda r: r)


class Registration:
    """The handle ``defvjp`` & co. return: the new record, and a way back to the previous one.

    It calls through to the registered rule, so ``@defvjp("sin") def sin_vjp(...)`` leaves
    ``sin_vjp`` usable as the rule itself. ``restore()`` (or leaving a ``with`` block) puts back
    whatever was registered before, or nothing."""

    def __init__(self, record: RuleRecord, previous: RuleRecord | None):
        self.record, self.previous = record, previous
        if record.vjp is not None:
            functools.update_wrapper(self, record.vjp)

    def __call__(self, *args, **kwargs):
        if self.record.vjp is None:
            raise TypeError(f"{self.record.primitive!r} is registered without a VJP rule ({self.record.kind})")
        return self.record.vjp(*args, **kwargs)

    def restore(self) -> None:
        """Put back the record that was there before this registration (or remove the primitive)."""
        if self.previous is None:
            _records.pop(self.record.primitive, None)
        else:
            _records[self.record.primitive] = self.previous
        _version[0] += 1

    def __enter__(self) -> Registration:
        return self

    def __exit__(self, *exc) -> None:
        self.restore()

    def __repr__(self) -> str:
        return f"Registration({self.record.primitive!r}, {self.record.kind})"


def _caller_module(depth: int) -> str:
    return sys._getframe(depth + 1).f_globals.get("__name__", "")


def _is_builtin(owner: str) -> bool:
    return owner.startswith("funcgrad.rules.")


def _register(record: RuleRecord) -> Registration:
    previous = _records.get(record.primitive)
    if previous is not None and _is_builtin(previous.owner) and _is_builtin(record.owner):
        raise ValueError(
            f"{record.primitive!r} is registered twice inside funcgrad ({previous.owner} and {record.owner}); "
            "each primitive has one record, where a reader looks for it."
        )
    _records[record.primitive] = record
    _version[0] += 1
    return Registration(record, previous)


def defvjp(
    primitive: str,
    rule: VJPRule | None = None,
    *,
    symbolic_zeros: bool = False,
    perturbed: bool = False,
    forward: Callable | None = None,
    runs_without_cotangent: bool = False,
    outputs_perturbed: Callable | None = None,
):
    """Register (or override) the VJP rule of ``primitive``; usable as a decorator.

    With ``symbolic_zeros=True`` a rule of a several-output primitive receives ``None``
    (not an array of zeros) for each output that received no cotangent.

    With ``perturbed=True`` the rule also receives ``perturbed=``, a tuple with one bool per
    input: whether it depends on a differentiated input (JAX's ``perturbed`` flag, which a
    ``custom_vjp`` forward rule with ``symbolic_zeros=True`` reads). Most rules need not know:
    the sweep drops the cotangents of inputs that are not perturbed.

    With ``forward=``, the forward pass of the reverse sweep evaluates an active equation of this
    primitive by ``forward(*primals, bind=..., **params)`` (plus ``perturbed=`` if asked for; ``bind``
    evaluates the equation as it would be without a forward), which returns
    ``(outputs, saved)``; the rule receives ``saved=``, or ``None`` where the forward values came from
    elsewhere (a concrete trace), and must then recompute what it needs. ``custom_vjp_call`` uses it:
    as in JAX, the user's fwd computes the primal outputs and the residuals, once.

    With ``runs_without_cotangent=True`` (and ``symbolic_zeros=True``) the rule of an active equation
    runs even when none of its outputs received a cotangent, as JAX runs a ``custom_vjp``'s bwd.

    With ``outputs_perturbed=`` (for a primitive holding a program: ``cond``, ``scan``, ``while``),
    ``outputs_perturbed(perturbed, **params)`` says which outputs a perturbation of the flagged
    inputs reaches; ``funcgrad.core.activity`` then marks only those active, so an output that only
    non-differentiated values flow into carries no gradient (as JAX's symbolic-zero tangents).

    Returns a ``Registration``: it calls the rule, and ``restore()`` (or a ``with`` block)
    puts back the previous record.

    Example::

        @funcgrad.defvjp("sin")
        def sin_vjp(ct, x, *, out, **params):
            return (ct * jnp.cos(x),)

        with funcgrad.defvjp("sin", my_rule):   # overridden inside the block only
            ...
    """
    owner = _caller_module(1)  # who registers: funcgrad's own rule modules may do so once per primitive
    if runs_without_cotangent and not symbolic_zeros:
        raise ValueError(f"defvjp({primitive!r}, runs_without_cotangent=True) needs symbolic_zeros=True")
    flags = dict(
        symbolic_zeros=symbolic_zeros,
        perturbed=perturbed,
        forward=forward,
        runs_without_cotangent=runs_without_cotangent,
        outputs_perturbed=outputs_perturbed,
        owner=owner,
    )
    if rule is None:
        return lambda r: _register(RuleRecord(primitive, "rule", r, **flags))
    return _register(RuleRecord(primitive, "rule", rule, **flags))


# what decides a record for an equation whose primitive has none (funcgrad.rules.implementation:
# differentiate the primitive's Python implementation); each returns a record or None
_fallbacks: list[Callable[[Any], RuleRecord | None]] = []


def deffallback(factory: Callable[[Any], RuleRecord | None]) -> None:
    """Add ``factory(eqn) -> RuleRecord | None``, asked for an equation whose primitive has no record."""
    _fallbacks.append(factory)
    _version[0] += 1


def lookup_eqn(eqn) -> RuleRecord | None:
    """The record for ``eqn``: its primitive's, else the first fallback's, else None."""
    record = _records.get(eqn.primitive)
    if record is not None:
        return record
    for factory in _fallbacks:
        found = factory(eqn)
        if found is not None:
            return found
    return None


def _zero_vjp(ct, *primals, out, **params):
    # piecewise-constant or integer-valued: the derivative is zero everywhere it exists
    return [None] * len(primals)


def defzero(*primitives: str) -> list[Registration]:
    """Declare that ``primitives`` have zero derivative everywhere (comparisons, rounding, random bits)."""
    owner = _caller_module(1)
    return [_register(RuleRecord(p, "zero", _zero_vjp, owner=owner)) for p in primitives]


def defstop(*primitives: str) -> list[Registration]:
    """Declare that ``primitives`` stop the gradient: their outputs are constants to differentiation."""
    owner = _caller_module(1)
    return [_register(RuleRecord(p, "stop", owner=owner)) for p in primitives]


def defnovjp(primitive: str, reason: str, *, outputs_perturbed: Callable | None = None) -> Registration:
    """Declare that ``primitive`` cannot be reverse-differentiated; ``reason`` ends with "fix: ...".

    With ``outputs_perturbed`` (as for ``defvjp``) the refusal applies only where a perturbation reaches
    one of its floating outputs: a ``while`` loop that only non-differentiated values flow through is
    fine, as in JAX."""
    owner = _caller_module(1)
    return _register(RuleRecord(primitive, "refused", reason=reason, outputs_perturbed=outputs_perturbed, owner=owner))


def supported_primitives() -> list[str]:
    """Names of all primitives funcgrad can reverse-differentiate, sorted."""
    return sorted(p for p, r in _records.items() if r.has_vjp)


# ------------------------------------------------------------- read-only views
# The tables of earlier releases (``vjp_rules``, ``no_vjp_reasons``, ``symbolic_zero_rules``,
# ``zero_vjp_primitives``), derived from the records: reading them keeps working, writing is
# done through ``defvjp`` & co.


class _RecordView(Mapping):
    def __init__(self, keep: Callable[[RuleRecord], bool], value: Callable[[RuleRecord], object]):
        self._keep, self._value = keep, value

    def __getitem__(self, name: str):
        record = _records.get(name)
        if record is None or not self._keep(record):
            raise KeyError(name)
        return self._value(record)

    def __iter__(self) -> Iterator[str]:
        return iter([p for p, r in _records.items() if self._keep(r)])

    def __len__(self) -> int:
        return sum(1 for r in _records.values() if self._keep(r))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({sorted(self)})"


class _NameSet(Set):
    def __init__(self, keep: Callable[[RuleRecord], bool]):
        self._view = _RecordView(keep, lambda r: r)

    def __contains__(self, name) -> bool:
        return name in self._view

    def __iter__(self) -> Iterator[str]:
        return iter(self._view)

    def __len__(self) -> int:
        return len(self._view)

    def __repr__(self) -> str:
        return f"{{{', '.join(sorted(self))}}}"


# primitive -> VJP rule (zero-derivative primitives included, as before)
vjp_rules: Mapping[str, VJPRule] = _RecordView(lambda r: r.has_vjp, lambda r: r.vjp)
# primitive -> why it cannot be reverse-differentiated, and what to do instead
no_vjp_reasons: Mapping[str, str] = _RecordView(lambda r: r.kind == "refused", lambda r: r.reason)
# primitives whose rules take None for an output that received no cotangent
symbolic_zero_rules: Set[str] = _NameSet(lambda r: r.symbolic_zeros)
# primitives whose outputs carry no gradient at all (comparisons, rounding, random bits, ...)
zero_vjp_primitives: Set[str] = _NameSet(lambda r: r.kind == "zero")
