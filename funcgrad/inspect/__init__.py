"""Seeing backprop: backward graphs, sensitivities, module Jacobians, residuals, cost, drawing.

Each module holds one tool and imports only ``funcgrad.core``, ``funcgrad.rules`` and
``funcgrad.api`` (not ``funcgrad.checking`` or ``funcgrad.nn``); the public names are re-exported
by ``funcgrad/__init__.py``. docs/seeing_backprop.md describes them.
"""
