"""Run one generated program through funcgrad and JAX and compare everything that comes out.

For a program ``f`` with example arguments ``args`` this compares, funcgrad
against JAX:

* ``value_and_grad(loss, argnums)(*args)`` where ``loss`` is a random weighted
  sum of all of ``f``'s outputs (random weights, so a transposed or permuted
  gradient cannot hide behind a uniform seed);
* ``vjp(f, *args)``: the primal outputs, and the pullback of random cotangents
  (every argument, integer ones included: their cotangents are float0 zeros).

Leaves must have the same pytree structure, dtype and shape, NaN/Inf in the
same places, and finite entries within ``|a - b| <= tol * (scale + |b|)``
where ``scale = max(1, max |b|)`` over the leaf and ``tol`` depends on the
lowest precision in the program (``TOLERANCE``).
"""

from __future__ import annotations

import dataclasses
import inspect
import traceback

import jax
import jax.numpy as jnp
import numpy as np

import funcgrad
from tests.conftest import x64
from tests.fuzz.programs import Program

# relative tolerance by the lowest floating-point precision used in a program
TOLERANCE = {"float32": 2e-4, "float64": 1e-9}


@dataclasses.dataclass(frozen=True)
class Outcome:
    """How one program went. ``kind`` is one of:

    * ``ok``: funcgrad agrees with JAX;
    * ``mismatch``: both ran, results differ (``detail`` says where);
    * ``error``: JAX ran, funcgrad raised (``detail`` has the exception);
    * ``unsupported``: funcgrad raised ``UnsupportedPrimitiveError`` (a rule has not landed);
    * ``invalid``: JAX itself rejected the program (a generator bug, not a funcgrad one).
    """

    kind: str
    detail: str = ""
    error_type: str = ""

    @property
    def ok(self) -> bool:
        return self.kind == "ok"


def _random_like(rng: np.random.Generator, x):
    dtype = jnp.result_type(x)
    if not jnp.issubdtype(dtype, jnp.inexact):
        return np.zeros(np.shape(x), jax.dtypes.float0)
    return np.asarray(rng.standard_normal(np.shape(x)), dtype)


def _jit(fun, fast_compile: bool):
    """``jax.jit(fun)``; with ``fast_compile``, XLA's backend optimisation level 0 (about 1/3 faster to compile)."""
    if fast_compile and "compiler_options" in inspect.signature(jax.jit).parameters:
        return jax.jit(fun, compiler_options={"xla_backend_optimization_level": 0})
    return jax.jit(fun)


def _results(value_and_grad, vjp, f, args, program: Program, jit: bool, fast_compile: bool = False) -> dict:
    out_struct = jax.eval_shape(f, *args)
    rng = np.random.default_rng(program.seed)
    weights = [_random_like(rng, s) for s in jax.tree_util.tree_leaves(out_struct)]
    cts = jax.tree_util.tree_map(lambda s: _random_like(rng, s), out_struct)

    def loss(*a):
        leaves = jax.tree_util.tree_leaves(f(*a))
        return sum(jnp.sum(leaf * w) for leaf, w in zip(leaves, weights))

    def run(args, cts):
        value, grads = value_and_grad(loss, program.argnums)(*args)
        out, pullback = vjp(f, *args)
        return {"value": value, "grad": grads, "out": out, "vjp": pullback(cts)}

    return (_jit(run, fast_compile) if jit else run)(args, cts)


def _compare(got, want, tol: float) -> list[str]:
    """Differences between two result pytrees, as readable lines (empty if they agree)."""
    problems = []
    got_leaves, got_tree = jax.tree_util.tree_flatten_with_path(got)
    want_leaves, want_tree = jax.tree_util.tree_flatten_with_path(want)
    if got_tree != want_tree:
        return [f"pytree structure: funcgrad {got_tree} vs jax {want_tree}"]
    for (path, a), (_, b) in zip(got_leaves, want_leaves):
        where = jax.tree_util.keystr(path)
        da, db = jnp.result_type(a), jnp.result_type(b)
        if da != db:
            problems.append(f"{where}: dtype funcgrad {da} vs jax {db}")
            continue
        if np.shape(a) != np.shape(b):
            problems.append(f"{where}: shape funcgrad {np.shape(a)} vs jax {np.shape(b)}")
            continue
        if db == jax.dtypes.float0:
            continue
        a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
        if not np.array_equal(np.isnan(a64), np.isnan(b64)):
            problems.append(f"{where}: NaN at different places: funcgrad {a64.ravel()[:6]} vs jax {b64.ravel()[:6]}")
            continue
        finite = np.isfinite(b64)
        if not np.array_equal(a64[~finite & ~np.isnan(b64)], b64[~finite & ~np.isnan(b64)]):
            problems.append(f"{where}: Inf differs")
            continue
        fa, fb = a64[finite], b64[finite]
        if fb.size == 0:
            continue
        scale = max(1.0, float(np.max(np.abs(fb))))
        err = np.abs(fa - fb)
        bad = err > tol * (scale + np.abs(fb))
        if np.any(bad):
            i = int(np.argmax(err))
            problems.append(
                f"{where}: {int(bad.sum())}/{fb.size} entries differ; worst funcgrad {fa[i]!r} vs jax {fb[i]!r} "
                f"(|diff| {err[i]:.3g}, scale {scale:.3g}, tol {tol:g})"
            )
    return problems


def check_program(program: Program, jit: bool = True, fast_compile: bool = False) -> Outcome:
    """Run ``program`` through JAX and funcgrad (float64 enabled) and classify the outcome.

    Args:
      program: the program.
      jit: run both sides under one ``jax.jit`` each (one compilation per side: fast), or eagerly.
      fast_compile: compile with XLA's optimisation level 0 (the long run's setting).

    Returns:
      An ``Outcome``.
    """
    with x64():
        try:
            f, args = program.function(), program.example_args()
            want = _results(jax.value_and_grad, jax.vjp, f, args, program, jit, fast_compile)
        except Exception as err:  # noqa: BLE001
            return Outcome("invalid", f"JAX rejected the program: {type(err).__name__}: {err}", type(err).__name__)
        try:
            got = _results(funcgrad.value_and_grad, funcgrad.vjp, f, args, program, jit, fast_compile)
        except funcgrad.UnsupportedPrimitiveError as err:
            return Outcome("unsupported", str(err).splitlines()[0], "UnsupportedPrimitiveError")
        except Exception as err:  # noqa: BLE001
            tb = "".join(traceback.format_exception(err)[-6:])
            return Outcome("error", f"{type(err).__name__}: {err}\n{tb}", type(err).__name__)
        problems = _compare(got, want, TOLERANCE[program.lowest_precision])
    if problems:
        return Outcome("mismatch", "\n".join(problems))
    return Outcome("ok")


def assert_program_matches_jax(program: Program, jit: bool = True) -> None:
    """Fail with the program's reproducer unless funcgrad agrees with JAX on it."""
    outcome = check_program(program, jit)
    if not outcome.ok:
        raise AssertionError(f"{outcome.kind}: {outcome.detail}\n\nprogram:\n{program.reproducer()}")
