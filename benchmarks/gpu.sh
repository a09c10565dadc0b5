#!/usr/bin/env bash
# The speed comparison on a GPU, in one call of under five minutes (a lent device machine gives its
# figures in one run): every workload of benchmarks/workloads.py, each peer in a process of its own
# (benchmarks/peers.py, --quick), then the hot-call comparison (benchmarks/hot_calls.py). The peers'
# table goes to $OUT/gpu_peers.md (the device tool's folder that comes back) or, without $OUT, to
# benchmarks/RESULTS.md's section "GPU PEERS", apart from the CPU figures; the hot calls' table to
# $OUT/gpu_hot_calls.md (or /tmp/gpu_hot_calls.md).
#
#   bash benchmarks/gpu.sh                       # on the GPU machine (needs jax with CUDA there)
#   FUNCGRAD_BENCH_CPU=1 bash benchmarks/gpu.sh  # the same on the CPU: tests the script where no GPU is lent
#
# FUNCGRAD_BENCH_WORKLOADS (default A1,A128,B,C,D) and FUNCGRAD_BENCH_PEERS (default below) narrow it
# (tests/test_benchmarks.py runs A1 with two peers in CPU mode).
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
if [ "${FUNCGRAD_BENCH_CPU:-0}" = 1 ]; then
    export JAX_PLATFORMS=cpu
fi
# what JAX runs on; in GPU mode, no GPU is an error (figures labelled "GPU" must come from one)
backend=$(python -c "import jax; print(jax.default_backend())")
echo "JAX backend: $backend ($(python -c "import jax; print(jax.devices()[0].device_kind)"))"
if [ "${FUNCGRAD_BENCH_CPU:-0}" != 1 ] && [ "$backend" = cpu ]; then
    echo "error: JAX sees no GPU (install jax[cuda12] there, or set FUNCGRAD_BENCH_CPU=1 to test on the CPU)" >&2
    exit 2
fi
# PyTorch on the GPU where its wheel has CUDA (the bench extra pins the CPU wheel: then it runs on the CPU, and says so)
if python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    export FUNCGRAD_TORCH_DEVICE=cuda
fi
workloads=${FUNCGRAD_BENCH_WORKLOADS:-A1,A128,B,C,D}
peers=${FUNCGRAD_BENCH_PEERS:-jax jit,jax eager,funcgrad jit,funcgrad eager,funcgrad eager (hot off),equinox filter_jit,torch eager}
where=()
if [ -n "${OUT:-}" ]; then
    where=(--out "$OUT/gpu_peers.md")
fi
python -m benchmarks.peers --quick --workloads "$workloads" --peers "$peers" \
    --section "GPU PEERS" --heading "Peers on a GPU (bash benchmarks/gpu.sh)" "${where[@]}"
if [ -z "${FUNCGRAD_BENCH_PEERS:-}" ]; then  # the full run only: the smoke test stops at the peers
    python -m benchmarks.hot_calls --no-write | tee "${OUT:-/tmp}/gpu_hot_calls.md"
fi
