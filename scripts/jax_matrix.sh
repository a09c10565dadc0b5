#!/usr/bin/env bash
# The JAX version matrix: run funcgrad's core tests against several JAX releases, each in its own
# virtual environment (created on first use, reused afterwards; funcgrad itself comes from this
# checkout via PYTHONPATH, so nothing is installed into the environment but JAX and the test tools).
#
#   scripts/jax_matrix.sh                      # the oldest and the newest supported release
#   scripts/jax_matrix.sh 0.6.0 0.7.2          # any releases
#   JAX_MATRIX_TESTS="tests/test_rules.py" scripts/jax_matrix.sh
#
# Environment:
#   JAX_MATRIX_DIR    where the environments live (default: ~/.cache/funcgrad-jax-matrix)
#   JAX_MATRIX_TESTS  the test files (default: the rule table, the API, bad inputs, fuzzing, determinism)
#   JAX_MATRIX_JOBS   pytest-xdist workers (default: 2)
#
# Prints one summary line per release (full logs next to the environments) and exits non-zero
# if any release has a failing test. Results are recorded in docs/jax_versions.md.
set -uo pipefail
cd "$(dirname "$0")/.."

# the oldest supported release is the lower bound declared in pyproject.toml; the newest is the
# latest release below its upper bound (update it when a new JAX release is admitted)
OLDEST=$(sed -n 's/^ *"jax>=\([0-9.]*\)[",].*/\1/p' pyproject.toml | head -n 1)
NEWEST=0.10.2
VERSIONS=("$@")
[ ${#VERSIONS[@]} -eq 0 ] && VERSIONS=("$OLDEST" "$NEWEST")

DIR=${JAX_MATRIX_DIR:-$HOME/.cache/funcgrad-jax-matrix}
TESTS=${JAX_MATRIX_TESTS:-tests/test_rules.py tests/test_api.py tests/test_bad_inputs.py tests/test_symbolic_zeros.py tests/test_fuzz.py tests/test_fuzz_regressions.py tests/test_determinism.py}
JOBS=${JAX_MATRIX_JOBS:-2}
mkdir -p "$DIR"

status=0
for v in "${VERSIONS[@]}"; do
    env="$DIR/jax-$v"
    log="$DIR/jax-$v.log"
    if ! "$env/bin/python" -c "import jax, hypothesis, xdist; assert jax.__version__ == '$v'" 2>/dev/null; then
        echo "creating $env ..."
        rm -rf "$env"
        python3 -m venv "$env" &&
            "$env/bin/pip" install -q "jax==$v" "jaxlib==$v" numpy optax chex pytest pytest-xdist hypothesis \
            >"$env.pip.log" 2>&1 || { echo "jax $v: could not install (see $env.pip.log)"; status=1; continue; }
    fi
    start=$(date +%s)
    # shellcheck disable=SC2086
    PYTHONPATH=. "$env/bin/python" -m pytest -q -p no:cacheprovider -n "$JOBS" $TESTS >"$log" 2>&1
    rc=$?
    summary=$(grep -E "^(=+ )?[0-9]+ (passed|failed)|(passed|failed|error).* in [0-9.]+s" "$log" | tail -n 1)
    echo "jax $v: ${summary:-no summary (see $log)} [$(($(date +%s) - start)) s, log: $log]"
    [ $rc -ne 0 ] && status=1
done
exit $status
