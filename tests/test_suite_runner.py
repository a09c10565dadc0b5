"""scripts/suite_runs.py and its plugin, which run JAX's and third-party suites with funcgrad swapped in.

The plugin's count is the proof, per test, that a suite's gradients came from funcgrad: it must count a
test that differentiates through ``jax.grad`` (or a library calling it) and not one that does not, and a
deliberately wrong rule must make exactly the differentiating test fail.
"""

import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

sys.path.insert(0, str(ROOT / "scripts"))
import suite_runs  # noqa: E402
import third_party_suites  # noqa: E402

SUITE = """
import jax
import jax.numpy as jnp
import numpy as np


def test_differentiates():
    np.testing.assert_allclose(jax.grad(lambda x: jnp.sum(x * x))(jnp.arange(3.0)), [0.0, 2.0, 4.0])


def test_only_evaluates():
    assert float(jnp.sum(jnp.arange(3.0))) == 3.0


class TestInAClass:
    def test_value_and_grad(self):
        value, g = jax.value_and_grad(lambda x: x * x)(3.0)
        assert (float(value), float(g)) == (9.0, 6.0)
"""


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    root = tmp_path_factory.mktemp("suite")
    (root / "tests").mkdir()
    (root / "tests" / "grads_test.py").write_text(SUITE)
    return root


def test_the_swap_is_live_test_by_test(suite):
    run = suite_runs.run_pytest([suite / "tests/grads_test.py"], suite, funcgrad=True, cwd=suite)
    assert run.error == "" and len(run.passed) == 3 and not run.failed
    assert run.reached == {
        "tests.grads_test::test_differentiates",
        "tests.grads_test.TestInAClass::test_value_and_grad",
    }
    assert run.reached <= run.passed  # the count's ids are the JUnit report's


def test_pure_jax_run_reaches_nothing_and_a_wrong_rule_fails_the_differentiating_tests(suite):
    base = suite_runs.run_pytest([suite / "tests/grads_test.py"], suite, funcgrad=False, cwd=suite)
    assert len(base.passed) == 3 and base.reached == set()
    broken = suite_runs.run_pytest(
        [suite / "tests/grads_test.py"], suite, funcgrad=True, cwd=suite, env={"FUNCGRAD_SUITE_BREAK": "mul"}
    )
    assert broken.failed == broken.reached == base.passed - {"tests.grads_test::test_only_evaluates"}


def test_the_files_that_differentiate():
    says = third_party_suites.DIFFERENTIATES.search
    for source in ["jax.grad(f)(x)", "eqx.filter_grad(loss)", "@nnx.value_and_grad", "jax.vjp(f, x)", "@jax.grad"]:
        assert says(source), source
    for source in ["grads = [0, 1]", "optax.apply_updates(params, grads)", "gradient_descent = 1"]:
        assert not says(source), source


def test_known_differences_read_with_their_reasons(tmp_path):
    listed = tmp_path / "allowed.txt"
    listed.write_text("# why\nsuite.Test::test_a   # inspects JAX's jaxpr\n\nsuite::test_b\n")
    assert suite_runs.read_allowed(listed) == {"suite.Test::test_a", "suite::test_b"}
    assert suite_runs.read_allowed(tmp_path / "absent.txt") == set()
