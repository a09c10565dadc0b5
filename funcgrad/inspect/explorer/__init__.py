"""``funcgrad.explore``: an interactive page of one gradient computation, grouped the way the code is written.

The modules, one job each:

* (``funcgrad.inspect.grouping``, beside this package since ``funcgrad.draw(level=...)`` uses it too:
  equations nested into blocks: scopes, jitted calls, functions, lines of code);
* ``flow``: what enters and leaves a group of equations;
* ``stats``: a value's summary, histogram and heat-map;
* ``recording``: the forward values and the reverse sweep's steps, through ``SweepHooks``;
* ``diagnostics``: dead relu units, saturation, gradient norm across depth, the first NaN/Inf;
* ``memory``: the bytes the backward pass keeps, per equation;
* ``views`` and ``layout``: the boxes and edges of each view, placed by Graphviz or funcgrad's own layout;
* ``page``: the self-contained HTML (with ``explorer.js`` and ``explorer.css``, package data);
* ``exploration``: ``explore`` and the ``Exploration`` it returns.
"""

from funcgrad.inspect.explorer.diagnostics import Diagnostic
from funcgrad.inspect.explorer.exploration import Exploration, explore
from funcgrad.inspect.explorer.stats import Summary

__all__ = ["Diagnostic", "Exploration", "Summary", "explore"]
