"""funcgrad's exceptions. Each message names the culprit and the fix."""

from __future__ import annotations


class FuncgradError(Exception):
    """Base class of funcgrad's errors."""


class TracingError(FuncgradError, TypeError):
    """The function could not be traced into a graph (e.g. Python control flow on a traced value)."""


class UnsupportedPrimitiveError(FuncgradError, NotImplementedError):
    """A primitive on the path to the output has no VJP rule."""


class NonDifferentiableError(FuncgradError, TypeError):
    """Differentiation was asked through something that has no reverse-mode derivative."""


class InputError(FuncgradError, TypeError):
    """An argument or output cannot be differentiated as given (non-scalar output, integer leaf, ...)."""
