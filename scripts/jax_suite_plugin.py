"""pytest plugin: run JAX's own test files with funcgrad's reverse mode standing in for JAX's.

Loaded by ``scripts/jax_suite.py`` (``-p jax_suite_plugin``) in the funcgrad run only. At import it
replaces, for the whole test process:

* ``api.vjp`` as seen by JAX's gradient checker (``jax._src.public_test_util.check_grads``: its
  reverse-mode checks look ``vjp`` up on the module object ``api`` at call time, and order 2
  differentiates the VJP again), by ``funcgrad.vjp``; forward-mode checks stay JAX's;
* ``jax.grad``, ``jax.value_and_grad``, ``jax.vjp`` and ``jax.jacrev`` (what the test modules call
  directly) by funcgrad's;
* with ``FUNCGRAD_SUITE_FORWARD=1``, forward mode too: the checker's ``jvp`` (its forward-mode checks)
  and ``jax.jvp``, ``jax.jacfwd``, ``jax.linearize`` and ``jax.hessian``.

``FUNCGRAD_SUITE_CALLS=<dir>`` makes each test process write, at its end, ``<dir>/<pid>.json``: per test
id, how many VJPs funcgrad built while the test ran (the proof that the swap is live, test by test).

``FUNCGRAD_SUITE_BREAK=<primitive>`` also registers a deliberately wrong VJP rule for that primitive
(every cotangent scaled by 1.5), to prove that the swap is live: many tests must then fail.
"""

from __future__ import annotations

import json
import os
import pathlib
import types
from collections import Counter

import jax
import pytest
from jax._src import api as _jax_api
from jax._src import public_test_util as _checker

import funcgrad
import funcgrad.api.forward as _funcgrad_forward
import funcgrad.api.reverse as _funcgrad_reverse
from funcgrad.core.registry import lookup

_calls: Counter = Counter()  # test id -> VJPs funcgrad built during it
_current = [""]


# with FUNCGRAD_SUITE_FORWARD=1, forward mode too: the checker's jvp and jax.jvp/jacfwd/linearize/hessian
FORWARD = os.environ.get("FUNCGRAD_SUITE_FORWARD") == "1"
SWAPPED = ("vjp", "jvp", "linearize") if FORWARD else ("vjp",)


class _ApiWithFuncgradVJP(types.ModuleType):
    """``jax._src.api`` with ``vjp`` (and ``jvp``, ``linearize`` under FUNCGRAD_SUITE_FORWARD=1) replaced by
    funcgrad's; every other name is JAX's."""

    def __getattr__(self, name):
        return getattr(funcgrad, name) if name in SWAPPED else getattr(_jax_api, name)


def _swap() -> None:
    _checker.api = _ApiWithFuncgradVJP("jax._src.api")
    jax.grad = funcgrad.grad
    jax.value_and_grad = funcgrad.value_and_grad
    jax.vjp = funcgrad.vjp
    jax.jacrev = funcgrad.jacrev
    if FORWARD:
        jax.jvp, jax.jacfwd, jax.linearize, jax.hessian = (
            funcgrad.jvp,
            funcgrad.jacfwd,
            funcgrad.linearize,
            funcgrad.hessian,
        )


def _count() -> None:
    # every differentiation function of funcgrad's builds its VJP through reverse._vjp (forward mode
    # imports it by name: both module globals are replaced), looked up at call time
    build = _funcgrad_reverse._vjp

    def counted(*args, **kwargs):
        _calls[_current[0]] += 1
        return build(*args, **kwargs)

    _funcgrad_reverse._vjp = _funcgrad_forward._vjp = counted


def _break(primitive: str) -> None:
    record = lookup(primitive)
    if record is None or record.vjp is None:
        raise SystemExit(f"FUNCGRAD_SUITE_BREAK={primitive!r}: funcgrad has no rule for it")
    right = record.vjp

    def wrong(ct, *primals, **params):
        return [None if c is None else c * 1.5 for c in right(ct, *primals, **params)]

    funcgrad.defvjp(
        primitive,
        wrong,
        symbolic_zeros=record.symbolic_zeros,
        perturbed=record.perturbed,
        forward=record.forward,
        runs_without_cotangent=record.runs_without_cotangent,
    )


_swap()
_count()
if os.environ.get("FUNCGRAD_SUITE_BREAK"):
    _break(os.environ["FUNCGRAD_SUITE_BREAK"])


def pytest_report_header(config):
    broken = os.environ.get("FUNCGRAD_SUITE_BREAK")
    return "funcgrad reverse mode swapped in for JAX's" + (f" (deliberately wrong rule: {broken})" if broken else "")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    _current[0] = item.nodeid
    _calls[item.nodeid] += 0
    yield
    _current[0] = ""


def pytest_sessionfinish(session, exitstatus):
    where = os.environ.get("FUNCGRAD_SUITE_CALLS")
    if where:
        (pathlib.Path(where) / f"{os.getpid()}.json").write_text(json.dumps(dict(_calls)))
