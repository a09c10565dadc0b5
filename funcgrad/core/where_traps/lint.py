"""The opt-in warning of ``funcgrad.grad`` & co. (``FUNCGRAD_WHERE_LINT=1`` or ``enable_where_lint``),
and the traps kept by equation for ``funcgrad.debug_nans`` (``remembering``, ``traps_at``)."""

from __future__ import annotations

import contextlib
import contextvars
import os
import sys
import warnings
import weakref
from collections.abc import Iterator, Sequence

from funcgrad.core.ir import Eqn, Graph
from funcgrad.core.where_traps.report import NaNTrap
from funcgrad.core.where_traps.search import find_traps, traps_by_holder
from funcgrad.errors import NaNTrapWarning

ENV_VAR = "FUNCGRAD_WHERE_LINT"
_override: bool | None = None
_remember: contextvars.ContextVar[bool] = contextvars.ContextVar("funcgrad_remember_traps", default=False)
_linted: weakref.WeakKeyDictionary[Graph, set] = weakref.WeakKeyDictionary()
# traps by the equation a backward pass stops at: the unsafe one, or the cond/scan holding it
_by_eqn: weakref.WeakKeyDictionary[Eqn, tuple[NaNTrap, ...]] = weakref.WeakKeyDictionary()


def enable_where_lint(enabled: bool | None = True) -> None:
    """Turn the opt-in warning on (True) or off (False) in code; None defers to ``FUNCGRAD_WHERE_LINT``."""
    global _override
    _override = enabled


def where_lint_enabled() -> bool:
    """Whether ``funcgrad.grad`` & co. warn of NaN traps: ``enable_where_lint``, else ``FUNCGRAD_WHERE_LINT=1``."""
    if _override is not None:
        return _override
    return os.environ.get(ENV_VAR, "") not in ("", "0")


@contextlib.contextmanager
def remembering() -> Iterator[None]:
    """Within the block, graphs about to be differentiated are searched and their traps kept by
    equation, for ``traps_at`` (``funcgrad.debug_nans`` names the where that masked a NaN)."""
    token = _remember.set(True)
    try:
        yield
    finally:
        _remember.reset(token)


def traps_at(eqn: Eqn) -> tuple[NaNTrap, ...]:
    """The traps whose unsafe operation is ``eqn`` (or sits in a program ``eqn`` holds), among the
    graphs differentiated inside ``remembering()``."""
    return _by_eqn.get(eqn, ())


def note_differentiated(graph: Graph, wrt: Sequence[bool], fun_name: str) -> None:
    """Called by the API before each backward pass: nothing unless the lint or ``remembering()`` is
    on; then the graph is searched once, and the lint warns once per graph."""
    warn, remember = where_lint_enabled(), _remember.get()
    if not (warn or remember):
        return
    flags = tuple(bool(w) for w in wrt)
    if remember:
        _remember_traps(graph, flags)
    if warn:
        done = _linted.setdefault(graph, set())
        if flags not in done:
            done.add(flags)
            traps = find_traps(graph, flags)
            if traps:
                warnings.warn(lint_message(traps, fun_name), NaNTrapWarning, stacklevel=_user_stacklevel())


def _remember_traps(graph: Graph, flags: tuple[bool, ...]) -> None:
    for holder, trap in traps_by_holder(graph, flags):
        held = _by_eqn.get(holder, ())
        if trap not in held:
            _by_eqn[holder] = (*held, trap)


def lint_message(traps: Sequence[NaNTrap], fun_name: str) -> str:
    n = len(traps)
    head = f"funcgrad: {n} NaN trap{'s' if n > 1 else ''} in the gradient of {fun_name}"
    body = "\n".join(f"  {i}. {trap}" for i, trap in enumerate(traps, 1))
    tail = (
        f"(the where-lint is on: {ENV_VAR}=1 or funcgrad.core.where_traps.enable_where_lint(); "
        "funcgrad.check_differentiable(f)(*args) lists the traps too)"
    )
    return f"{head}: the gradient will be NaN at the points a where masks, though the value is finite.\n{body}\n{tail}"


def _user_stacklevel() -> int:
    """The stack level of the first frame outside funcgrad (the user's call of grad)."""
    # funcgrad/core/where_traps/lint.py -> funcgrad
    package = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package + os.sep):
        frame, level = frame.f_back, level + 1
    return level
