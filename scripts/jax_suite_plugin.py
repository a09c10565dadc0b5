"""pytest plugin: run JAX's own test files with funcgrad's reverse mode standing in for JAX's.

Loaded by ``scripts/jax_suite.py`` (``-p jax_suite_plugin``) in the funcgrad run only. At import it
replaces, for the whole test process:

* ``api.vjp`` as seen by JAX's gradient checker (``jax._src.public_test_util.check_grads``: its
  reverse-mode checks look ``vjp`` up on the module object ``api`` at call time, and order 2
  differentiates the VJP again), by ``funcgrad.vjp``; forward-mode checks stay JAX's;
* ``jax.grad``, ``jax.value_and_grad``, ``jax.vjp`` and ``jax.jacrev`` (what the test modules call
  directly) by funcgrad's.

``FUNCGRAD_SUITE_BREAK=<primitive>`` also registers a deliberately wrong VJP rule for that primitive
(every cotangent scaled by 1.5), to prove that the swap is live: many tests must then fail.
"""

from __future__ import annotations

import os
import types

import jax
from jax._src import api as _jax_api
from jax._src import public_test_util as _checker

import funcgrad
from funcgrad.core.registry import lookup


class _ApiWithFuncgradVJP(types.ModuleType):
    """``jax._src.api`` with ``vjp`` replaced by funcgrad's; every other name is JAX's."""

    def __getattr__(self, name):
        return funcgrad.vjp if name == "vjp" else getattr(_jax_api, name)


def _swap() -> None:
    _checker.api = _ApiWithFuncgradVJP("jax._src.api")
    jax.grad = funcgrad.grad
    jax.value_and_grad = funcgrad.value_and_grad
    jax.vjp = funcgrad.vjp
    jax.jacrev = funcgrad.jacrev


def _break(primitive: str) -> None:
    record = lookup(primitive)
    if record is None or record.vjp is None:
        raise SystemExit(f"FUNCGRAD_SUITE_BREAK={primitive!r}: funcgrad has no rule for it")
    right = record.vjp

    def wrong(ct, *primals, **params):
        return [None if c is None else c * 1.5 for c in right(ct, *primals, **params)]

    funcgrad.defvjp(
        primitive, wrong, symbolic_zeros=record.symbolic_zeros, perturbed=record.perturbed, forward=record.forward
    )


_swap()
if os.environ.get("FUNCGRAD_SUITE_BREAK"):
    _break(os.environ["FUNCGRAD_SUITE_BREAK"])


def pytest_report_header(config):
    broken = os.environ.get("FUNCGRAD_SUITE_BREAK")
    return "funcgrad reverse mode swapped in for JAX's" + (f" (deliberately wrong rule: {broken})" if broken else "")
