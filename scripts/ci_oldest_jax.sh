#!/usr/bin/env bash
# CI: the rule table, the core API tests and the fuzz regressions on the OLDEST supported JAX (the lower
# bound in pyproject.toml), in a separate virtual environment (see scripts/jax_matrix.sh). Runs after
# the main test command in .ci/run; about 85 s on 2 cores from a fresh environment (65 s of tests).
set -euo pipefail
cd "$(dirname "$0")/.."
OLDEST=$(sed -n 's/^ *"jax>=\([0-9.]*\),.*/\1/p' pyproject.toml | head -n 1)
export JAX_MATRIX_TESTS=${JAX_MATRIX_TESTS:-"tests/test_rules.py tests/test_api.py tests/test_symbolic_zeros.py tests/test_fuzz_regressions.py"}
exec scripts/jax_matrix.sh "$OLDEST"
