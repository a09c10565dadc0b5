"""What a caller can observe in, or wrap around, the reverse sweep.

The sweep (``funcgrad.core.sweep``) calls a ``SweepHooks`` object, if it is given one, around each
VJP rule it runs. The hooks protocol is this small class: subclass it and override what you need.

* ``rule_scope(eqn, needed)``: the context the rule runs in (``inspect.backward_graph`` opens a
  ``jax.named_scope`` naming the cotangents it computes); ``needed[i]`` says whether input ``i``
  receives a gradient.
* ``after_rule(eqn, cts, cts_in, env)``: called with the cotangents that came in and went out
  (``checking.nan_hunt`` stops at the first NaN/Inf here).

A top-level gradient (``funcgrad.grad`` & co.) asks ``current()`` for its hooks: ``None``, unless
a tool above the core has installed a factory with ``installed(factory)`` (``funcgrad.debug_nans``
does). The core therefore never imports the tools that observe it.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from funcgrad.core.ir import Eqn


class SweepHooks:
    """Hooks into the reverse sweep; the base class does nothing."""

    def rule_scope(self, eqn: Eqn, needed: Sequence[bool]) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()

    def after_rule(self, eqn: Eqn, cts: Sequence[Any], cts_in: Sequence[Any], env: dict) -> None:
        return None


HooksFactory = Callable[[], "SweepHooks | None"]

_factory: contextvars.ContextVar[HooksFactory | None] = contextvars.ContextVar("funcgrad_sweep_hooks", default=None)


def current() -> SweepHooks | None:
    """Hooks for a new top-level backward pass: the installed factory's, or None."""
    factory = _factory.get()
    return None if factory is None else factory()


@contextlib.contextmanager
def installed(factory: HooksFactory | None) -> Iterator[None]:
    """Within the block, top-level backward passes get ``factory()`` as their hooks (None: no hooks)."""
    token = _factory.set(factory)
    try:
        yield
    finally:
        _factory.reset(token)
