"""Equations grouped into nested blocks the way the code is written, for ``funcgrad.explore`` and
``funcgrad.draw(level=...)``.

* ``frames``: an equation's user call stack (kept by ``funcgrad.core.tracer.keeping_tracebacks``)
  and the text of a line of code;
* ``blocks``: the blocks (``group_graph``), and which of them a view opens (``frontier``);
* ``tracing``: a call traced with those stacks (``trace_with_stacks``).

It sits beside ``explorer/`` and ``drawing/``, not inside the explorer: both use it, and the
explorer reuses the drawing's layout, so the layering stays acyclic (pyproject.toml's contract).
"""

from funcgrad.inspect.grouping.blocks import Block, Grouping, frontier, group_graph, programs
from funcgrad.inspect.grouping.tracing import trace_with_stacks

__all__ = ["Block", "Grouping", "frontier", "group_graph", "programs", "trace_with_stacks"]
