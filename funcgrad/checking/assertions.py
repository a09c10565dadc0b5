"""Gradient tests in one line, for users' own models: ``funcgrad.testing.assert_grads_match``.

Example (a pytest test)::

    from funcgrad.testing import assert_grads_match

    def test_model_gradients():
        assert_grads_match(loss, params, x, y, argnums=0)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from funcgrad.checking.check_grads import check_grads
from funcgrad.checking.report import GradCheckReport


def assert_grads_match(
    fun: Callable,
    *args: Any,
    order: int = 1,
    argnums: int | Sequence[int] | None = None,
    kwargs: dict | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    ad_rtol: float | None = None,
    ad_atol: float | None = None,
    eps: float | None = None,
    seed: int = 0,
    fd: bool = True,
) -> GradCheckReport:
    """Assert that funcgrad's derivatives of ``fun(*args)`` match ``jax.grad``'s and finite differences'.

    Args:
      fun: the function (any output pytree; a lone scalar loss is the usual case).
      *args: its positional arguments.
      order: 1 for gradients, 2 to also check Hessian-vector products.
      argnums: which positional arguments to differentiate (default: all).
      kwargs: keyword arguments for ``fun`` (never differentiated).
      rtol, atol, ad_rtol, ad_atol, eps, seed, fd: as in ``funcgrad.check_grads``.

    Returns:
      The passing ``GradCheckReport``.

    Raises:
      AssertionError: with the per-leaf report (path, worst index, which number came from
        funcgrad / jax / finite differences) and, when funcgrad and JAX disagree, the first
        equation whose VJP rule differs, with the user's file:line.
    """
    __tracebackhide__ = True  # pytest shows the failure at the caller's line
    return check_grads(
        fun,
        args,
        order,
        argnums=argnums,
        kwargs=kwargs,
        rtol=rtol,
        atol=atol,
        ad_rtol=ad_rtol,
        ad_atol=ad_atol,
        eps=eps,
        seed=seed,
        fd=fd,
        raise_on_failure=True,
    )
