"""The mutation machinery (scripts/mutate_rules.py) on a few primitives across the rule families.

Every mutant of these primitives must be killed by the rule table's own check, so a change that
lets a wrong rule slip through (to the machinery or to the rows) fails here; and a correct rule,
wrapped by the same machinery, must not be reported as killed.
"""

from __future__ import annotations

import importlib.util
import pathlib
import sys

import pytest

from funcgrad.core.registry import lookup

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _load_script():
    spec = importlib.util.spec_from_file_location("mutate_rules", ROOT / "scripts" / "mutate_rules.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


mutate_rules = _load_script()

# one or two primitives per family: unary and binary elementwise, a contraction, a reduction at its
# ties, a cumulative op, a shape op with a scalar operand, an indexing op with integer indices
PRIMITIVES = {
    "sin": "elementwise",
    "mul": "elementwise",
    "dot_general": "linear",
    "reduce_max": "reduce",
    "cumsum": "cumulative",
    "pad": "shape",
    "dynamic_update_slice": "index",
}
# where a mutant cannot change anything: one differentiable input, or two of different shapes
NO_SWAP = {"sin", "reduce_max", "cumsum", "pad", "dynamic_update_slice"}


@pytest.mark.parametrize("primitive", sorted(PRIMITIVES))
def test_every_mutant_is_killed(primitive):
    result = mutate_rules.mutate_primitive(primitive)
    assert result.family == PRIMITIVES[primitive]
    assert result.original_ok, result.original_failures or result.error
    assert result.rule_calls > 0
    status = {m.kind: m.status for m in result.mutants}
    expected = {k: "killed" for k in mutate_rules.MUTANT_KINDS}
    if primitive in NO_SWAP:
        expected["swap"] = "skipped"
    assert status == expected, [m for m in result.mutants if m.status != expected[m.kind]]
    for m in result.mutants:
        if m.status == "killed":
            assert m.detail.split(":")[0] in {c.id for c in mutate_rules.checks_for(primitive)}


@pytest.mark.parametrize("primitive", ["sin", "mul"])
def test_a_correct_rule_is_not_killed(primitive):
    # the registered rule, wrapped as a mutant is but returned unchanged, passes every check
    record = lookup(primitive)
    rule = mutate_rules.wrapped_rule(record.vjp, lambda primals, cts: cts)
    checks = mutate_rules.checks_for(primitive)
    outcomes = mutate_rules.run_with_rule(primitive, rule, checks, stop_at_failure=False)
    assert [o.status for o in outcomes] == ["pass"] * len(checks), [o for o in outcomes if o.status != "pass"]
    assert lookup(primitive) is record  # the with block put the original record back


def test_a_wrong_rule_is_killed_by_the_table_check():
    # a hand-written wrong rule for sin (cos replaced by 1) fails the very first check
    import jax.numpy as jnp

    def wrong_sin_vjp(ct, x, *, out, **params):
        return (ct * jnp.ones_like(x),)

    outcomes = mutate_rules.run_with_rule("sin", wrong_sin_vjp, mutate_rules.checks_for("sin"), stop_at_failure=True)
    assert [o.status for o in outcomes] == ["fail"]
    assert "Not equal to tolerance" in outcomes[0].message


def test_mutants_change_only_floating_cotangents():
    import jax.numpy as jnp
    import numpy as np

    x, y, i = jnp.ones(3), jnp.full(3, 2.0), np.int32(1)
    cts = [jnp.full(3, 3.0), None, jnp.full(3, 5.0)]
    primals = [x, i, y]
    np.testing.assert_allclose(mutate_rules.mutate("scale", primals, cts)[0], 3.03)
    assert mutate_rules.mutate("negate", primals, cts)[1] is None
    np.testing.assert_allclose(mutate_rules.mutate("drop", primals, cts)[0], 0.0)
    swapped = mutate_rules.mutate("swap", primals, cts)  # the first two float inputs: 0 and 2
    np.testing.assert_allclose(swapped[0], 5.0)
    np.testing.assert_allclose(swapped[2], 3.0)
    assert not mutate_rules.applies("swap", [x, jnp.ones(2)], [cts[0], jnp.ones(2)])  # shapes differ
    assert not mutate_rules.applies("drop", [i], [None])
    # equivalent mutants do not count: equal cotangents swapped (add's), a NaN scaled, zeros dropped
    assert not mutate_rules.applies("swap", [x, y], [cts[0], cts[0]])
    assert not mutate_rules.applies("scale", [x], [jnp.full(3, jnp.nan)])
    assert not mutate_rules.applies("drop", [x], [jnp.zeros(3)])
    assert mutate_rules.applies("swap", primals, cts) and mutate_rules.applies("scale", primals, cts)


def test_report_lists_survivors_and_rates():
    result = mutate_rules.PrimitiveResult(
        "sin",
        "elementwise",
        ["sin"],
        8,
        8,
        [],
        [],
        [
            mutate_rules.MutantResult("sin", "scale", "killed", "sin-float32-random: AssertionError", 1),
            mutate_rules.MutantResult("sin", "negate", "survived", "", 8),
            mutate_rules.MutantResult("sin", "swap", "skipped", "one input"),
        ],
        1.0,
    )
    text = mutate_rules.report([result])
    assert "| elementwise | 1 | 2 | 1 | 50.0% |" in text
    assert "| elementwise | sin | negate | 8 | sin |" in text
    assert "`swap` (one input): sin" in text
