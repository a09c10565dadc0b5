"""The table of hot calls: call signatures seen before, and the compiled program of each.

Outside any JAX transformation, ``funcgrad.grad``, ``value_and_grad``, ``vjp`` and the ``vjp``
function it returns run their first call of a signature eagerly (trace, then funcgrad's sweep op by
op), as always. When the same signature comes back, the whole call (forward and backward together)
is compiled with ``jax.jit`` once and the compiled program runs from then on: the learner's loop
``w = w - eta * funcgrad.grad(loss)(w, x, y)`` runs at jit speed without writing ``jit``. The
dispatch lives in ``funcgrad.api.hot``; this module holds the bounded table it fills and the switch:

* ``funcgrad.set_hot_compilation(False)`` (or ``with funcgrad.hot_compilation(False):``, or the
  environment variable ``FUNCGRAD_HOT_COMPILE=0`` at import) keeps every call eager;
* ``funcgrad.cache_info()`` counts the compiled entries and their compile time.

A key names the objects the function reads (closure cells, globals, defaults) by identity and holds
them (as the trace cache's keys do), so their ids cannot be reused by other objects while the entry
is in the table; the table keeps at most ``maxsize`` entries, least recently used out first.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import os
import threading
from collections.abc import Callable, Hashable, Iterator


@dataclasses.dataclass
class HotEntry:
    """One differentiated function with one argument structure (and the same non-array leaves): how
    often it ran, and its compiled program, whose own cache holds one executable per signature of the
    array leaves (shapes, dtypes, weak types, placement)."""

    name: str  # the function's name, for cache_info
    keep: tuple  # the objects the key names by id, kept alive with the entry
    array_idx: tuple[int, ...]  # which leaves of the flattened (args, kwargs) the program takes
    seen: set  # array signatures that ran eagerly once: the next call of one compiles it
    calls: int = 1
    program: Callable | None = None  # jax.jit of the whole call, over its array leaves
    compiled: int = 0  # how many array signatures the program was compiled for
    compile_s: float = 0.0  # seconds of their first compiled calls (trace + XLA compile + run)
    eager_reason: str | None = None  # why this entry always runs eagerly (None: it may compile)
    tracing_thread: int | None = None  # the thread allowed to trace the program now (None: no one)
    # for calls whose results hand inputs back (vjp's residuals): per array signature, the result's
    # structure and, per leaf, the input it is (None: computed); None for the other calls
    layouts: dict | None = None
    tracing_signature: tuple | None = None  # the array signature being traced now


@dataclasses.dataclass(frozen=True)
class HotEntryInfo:
    """What ``cache_info().hot`` says of one entry."""

    name: str
    calls: int
    compiled: int  # array signatures compiled
    compile_s: float  # their compile time in all
    eager_reason: str | None


class HotCalls:
    """A bounded LRU map from call signature to ``HotEntry``."""

    def __init__(self, maxsize: int = 256):
        self.maxsize = maxsize
        self._entries: collections.OrderedDict[Hashable, HotEntry] = collections.OrderedDict()
        self._lock = threading.Lock()
        self.enabled = os.environ.get("FUNCGRAD_HOT_COMPILE", "1") != "0"

    def get(self, key: Hashable) -> HotEntry | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                entry.calls += 1
            return entry

    def add(self, key: Hashable, entry: HotEntry) -> None:
        with self._lock:
            self._entries[key] = entry
            while len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)

    def info(self) -> tuple[HotEntryInfo, ...]:
        with self._lock:
            return tuple(
                HotEntryInfo(e.name, e.calls, e.compiled, e.compile_s, e.eager_reason) for e in self._entries.values()
            )

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


hot_calls = HotCalls()


def set_hot_compilation(enabled: bool) -> bool:
    """Turn the compilation of repeated eager calls on or off; returns the previous setting.

    With it off, every ``grad``/``value_and_grad``/``vjp`` call outside a JAX transformation runs
    funcgrad's sweep op by op (as with ``FUNCGRAD_HOT_COMPILE=0``)."""
    previous = hot_calls.enabled
    hot_calls.enabled = bool(enabled)
    return previous


@contextlib.contextmanager
def hot_compilation(enabled: bool) -> Iterator[None]:
    """Within the block, repeated eager calls are compiled (``True``) or always run eagerly (``False``)."""
    previous = set_hot_compilation(enabled)
    try:
        yield
    finally:
        set_hot_compilation(previous)
