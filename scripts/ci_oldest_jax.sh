#!/usr/bin/env bash
# CI: the rule table, the core API tests, the JAX boundary, the registry, control flow and the fuzz
# regressions on the OLDEST supported JAX (the lower bound in pyproject.toml), in a separate virtual
# environment (see scripts/jax_matrix.sh). Runs after the main test command in .ci/run; about 3 min
# on 2 cores from a fresh environment (about 2 min of tests).
set -euo pipefail
cd "$(dirname "$0")/.."
OLDEST=$(sed -n 's/^ *"jax>=\([0-9.]*\)[",].*/\1/p' pyproject.toml | head -n 1)
export JAX_MATRIX_TESTS=${JAX_MATRIX_TESTS:-"tests/test_rules.py tests/test_api.py tests/test_symbolic_zeros.py tests/test_fuzz_regressions.py tests/test_jax_compat.py tests/test_extend.py tests/test_control_flow.py tests/test_checkpoint_policies.py tests/test_bounded_while.py"}
exec scripts/jax_matrix.sh "$OLDEST"
