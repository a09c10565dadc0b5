"""funcgrad's exceptions. Each message names the culprit and the fix."""

from __future__ import annotations

from jax.errors import UnexpectedTracerError


class FuncgradError(Exception):
    """Base class of funcgrad's errors."""


class TracingError(FuncgradError, TypeError):
    """The function could not be traced into a graph (e.g. Python control flow on a traced value)."""


class UnsupportedPrimitiveError(FuncgradError, NotImplementedError):
    """A primitive on the path to the output has no VJP rule."""


class NonDifferentiableError(FuncgradError, TypeError, ValueError, NotImplementedError):
    """Differentiation was asked through something that has no reverse-mode derivative.

    It is an instance of each class JAX raises for such a refusal, so code written against ``jax.grad``
    (``except ValueError``, ``assertRaises(NotImplementedError)``) catches funcgrad's too: JAX raises
    ``ValueError`` for ``while_loop``/``fori_loop`` with dynamic bounds, ``custom_vmap``, ``lax.composite``,
    host callbacks and generic ``reduce_window``; ``NotImplementedError`` for ``x.at[i].apply``
    (``scatter_apply``), ``lax.zeta``, ``igamma_grad_a``, non-symmetric eigenvectors and full-matrices
    ``svd``; ``TypeError`` for ``custom_linear_solve`` without ``transpose_solve`` (and ``TypeError`` is
    what this class always was). Each message contains JAX's own sentence, so a regex written for
    JAX's error matches funcgrad's."""


class InputError(FuncgradError, TypeError):
    """An argument or output cannot be differentiated as given (non-scalar output, integer leaf, ...)."""


class CotangentError(InputError, ValueError):
    """A cotangent passed to a ``vjp`` function does not match the output (a ``ValueError``, as in JAX)."""


class ForwardModeError(InputError, NotImplementedError):
    """Forward mode (``jvp``, ``jacfwd``, ``linearize``, ``hessian``) reached a function whose derivative is
    a user's VJP only (``jax.custom_vjp``, ``custom_vjp3``): JAX raises ``TypeError`` for the first and
    ``NotImplementedError`` for the second, and this is both."""


class TangentError(InputError, ValueError):
    """A tangent passed to ``jvp`` or a ``linearize`` function does not match its primal (a ``ValueError``, as in JAX)."""


class UntestedJAXError(UnsupportedPrimitiveError):
    """On a JAX newer than funcgrad was tested with, a differentiated equation has a parameter that
    funcgrad's rule for its primitive was not written for (it may change the derivative)."""


class UntestedJAXWarning(UserWarning):
    """funcgrad is imported with a JAX release newer than the newest it was tested with."""


class NaNTrapWarning(UserWarning):
    """A gradient will be NaN where a ``jnp.where`` (or a clip) masks an operation whose derivative is
    infinite there (``jnp.where(x > 0, jnp.sqrt(x), 0.)`` at ``x <= 0``), although the value is finite.
    Issued by ``funcgrad.grad``/``value_and_grad``/``vjp`` the first time each traced graph is
    differentiated, when ``FUNCGRAD_WHERE_LINT=1`` is set (docs/debugging.md)."""


class CustomVJPError(FuncgradError, UnexpectedTracerError):
    """A ``custom_vjp`` function (or a ``jax.custom_gradient`` one) is differentiated with respect to a
    value it closes over. The message contains the sentence of JAX's ``CustomVJPException`` (what JAX's
    gradient of a jitted function raises; that class is internal to JAX's AD); the class is also JAX's
    ``UnexpectedTracerError``, what JAX's eager gradient raises there, so ``except`` clauses written
    for JAX catch it."""

    def __init__(self, message: str):
        Exception.__init__(self, message)  # not JAX's mixin, which would append a link to JAX's page of errors
