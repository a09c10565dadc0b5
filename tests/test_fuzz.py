"""Random-program fuzzing, quick profile: funcgrad's gradients and VJPs against JAX's.

Programs come from ``tests/fuzz/programs.py`` (a hypothesis strategy) and are
checked by ``tests/fuzz/compare.py``: ``value_and_grad`` of a random weighted
sum of the outputs and ``vjp`` with random cotangents, leaf by leaf. Derandomized,
so every run checks the same programs; a failure prints a reproducer to paste
into ``tests/test_fuzz_regressions.py``. The long run (10^4 programs) is
``python -m tests.fuzz.run --programs 10000`` (see docs/reliability.md).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest
from hypothesis import HealthCheck, Phase, given, settings

import funcgrad
from tests.conftest import x64
from tests.fuzz import ops as fuzz_ops
from tests.fuzz.compare import assert_program_matches_jax, check_program
from tests.fuzz.programs import Program, RandomDraw, generate, programs

QUICK = dict(
    derandomize=True,
    deadline=None,
    database=None,
    phases=(Phase.explicit, Phase.generate),  # no shrinking: a failure already prints a standalone reproducer
    suppress_health_check=list(HealthCheck),
)


@settings(max_examples=60, **QUICK)
@given(programs())
def test_random_programs_match_jax_under_jit(program):
    assert_program_matches_jax(program, jit=True)


@settings(max_examples=12, **QUICK)
@given(programs(steps=3))
def test_random_programs_match_jax_eagerly(program):
    assert_program_matches_jax(program, jit=False)


def _loss(f):
    return lambda *a: sum(jnp.sum(x) for x in jax.tree_util.tree_leaves(f(*a)))


@pytest.mark.parametrize("op", [o.name for o in fuzz_ops.OPS])
def test_every_operation_builds_programs_jax_can_differentiate(op):
    """Each table entry, alone, makes programs JAX differentiates; funcgrad's result types match JAX's.

    Checked abstractly (``jax.eval_shape``: no compilation). Programs JAX itself cannot differentiate
    are skipped (older JAX releases fail on some empty arrays); at least one must pass.
    """
    o = next(o for o in fuzz_ops.OPS if o.name == op)
    checked, rejected = 0, []
    for seed in range(40):
        program = generate(RandomDraw(seed), ops=[o], steps=2)
        if op not in program.ops:
            continue
        with x64():
            f, args = program.function(), program.example_args()
            try:
                want = jax.eval_shape(jax.value_and_grad(_loss(f), program.argnums), *args)
            except Exception as err:  # noqa: BLE001 (JAX's limitation, not funcgrad's)
                rejected.append(f"{type(err).__name__}: {err}"[:200])
                continue
            if fuzz_ops.disabled_ops().get(op) is None:
                got = jax.eval_shape(funcgrad.value_and_grad(_loss(f), program.argnums), *args)
                assert jax.tree_util.tree_structure(got) == jax.tree_util.tree_structure(want)
                for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
                    assert (a.shape, a.dtype) == (b.shape, b.dtype), program.reproducer()
        checked += 1
        if checked == 3:
            break
    assert checked, f"operation {op!r}: no program JAX can differentiate in 40 draws; JAX said: {rejected[:3]}"


def test_operations_switch_off_only_for_missing_rules():
    on = {o.name for o in fuzz_ops.enabled_ops()}
    off = fuzz_ops.disabled_ops()
    for name, why in off.items():
        assert name in fuzz_ops.DISABLED or "no VJP rule" in why or "cannot reverse-differentiate" in why, (name, why)
    assert on.isdisjoint(off) and on | set(off) == {o.name for o in fuzz_ops.OPS}


def test_the_comparison_catches_a_slightly_wrong_rule():
    # a 0.1% error in one rule must show up as a mismatch (the fuzz tests can fail)
    program = Program("def f(a0):\n    return jnp.sin(a0) * 2.0\n", "(rand(1, (3,), 'float32'),)", 0, seed=0)
    with funcgrad.defvjp("sin", lambda ct, x, *, out, **params: (ct * jnp.cos(x) * 1.001,)):
        outcome = check_program(program)
    assert outcome.kind == "mismatch" and "['grad']" in outcome.detail and "['vjp']" in outcome.detail


def test_the_comparison_catches_a_wrong_permutation():
    # a transpose rule that applies the permutation instead of its inverse: same shapes on a cube,
    # wrong values; only random (not all-ones) loss weights and cotangents can see it
    program = Program(
        "def f(a0):\n    return jnp.transpose(a0, (1, 2, 0)) * 2.0\n",
        "(rand(2, (2, 2, 2), 'float64'),)",
        0,
        seed=0,
        dtypes=("float64",),
    )
    wrong = lambda ct, x, *, out, permutation, **params: (jax.lax.transpose(ct, permutation),)
    with funcgrad.defvjp("transpose", wrong):
        assert check_program(program).kind == "mismatch"
