"""Data-parallel training on 8 simulated CPU devices gives the single-device parameters.

The device count must be fixed before JAX initialises, so the training runs in
a subprocess with ``XLA_FLAGS=--xla_force_host_platform_device_count=8``
(examples/data_parallel.py); this process only compares what it wrote.
"""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
STEPS = 3

SCRIPT = """
import importlib.util, json, sys
import jax, numpy as np
spec = importlib.util.spec_from_file_location("data_parallel", sys.argv[1])
dp = importlib.util.module_from_spec(spec); spec.loader.exec_module(dp)
from jax.sharding import NamedSharding, PartitionSpec as P

steps, out = int(sys.argv[2]), sys.argv[3]
mesh = dp.data_mesh()
w0 = dp.init_mynet(jax.random.key(0))
xs, labels = dp.make_data(jax.random.key(1))

# reference: jax.grad on one device
ref, x1, l1 = jax.device_put((w0, xs, labels), jax.devices()[0])
ref_step = jax.jit(lambda w, x, l: dp.sgd(w, jax.grad(dp.mean_xent)(w, x, l)))
for _ in range(steps):
    ref = ref_step(ref, x1, l1)

runs = {
    "initial": w0,
    "jax_reference": ref,
    "single": dp.train_single(w0, xs, labels, steps),
    "sharded_jit": dp.train_sharded(w0, xs, labels, mesh, steps),
    "shard_map_psum": dp.train_shard_map(w0, xs, labels, mesh, steps),
    # the same loss, shapes and dtypes traced again with varying-axes checks on: must not reuse the graph above
    "shard_map_check_vma": dp.train_shard_map(w0, xs, labels, mesh, steps, check_vma=True),
}
flat = {f"{run}/{i}": np.asarray(leaf) for run, w in runs.items() for i, leaf in enumerate(jax.tree_util.tree_leaves(w))}
np.savez(out + ".npz", **flat)

spec_args = (NamedSharding(mesh, P()), NamedSharding(mesh, P("data")), NamedSharding(mesh, P("data")))
placed = jax.device_put((w0, xs, labels), spec_args)
hlo = jax.jit(dp.sgd_step).lower(*placed).compile().as_text()
info = {
    "devices": len(jax.devices()),
    "shard_shape": list(placed[1].sharding.shard_shape(placed[1].shape)),
    "all_reduces": hlo.count("all-reduce("),
    "out_devices": len(runs["sharded_jit"]["l1"]["W"].sharding.device_set),
}
json.dump(info, open(out + ".json", "w"))
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("data_parallel") / "run")
    env = dict(os.environ)
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()
    env["JAX_PLATFORMS"] = "cpu"
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(ROOT / "examples" / "data_parallel.py"), str(STEPS), out],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"data-parallel subprocess failed:\n{proc.stdout}\n{proc.stderr[-4000:]}"
    params = dict(np.load(out + ".npz"))
    runs = {}
    for key, value in params.items():
        run, i = key.split("/")
        runs.setdefault(run, {})[int(i)] = value
    with open(out + ".json") as f:
        info = json.load(f)
    return {run: [leaves[i] for i in sorted(leaves)] for run, leaves in runs.items()}, info


def assert_params_close(got, want):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=2e-5, atol=2e-6)


def test_batch_is_split_across_eight_devices(trained):
    _, info = trained
    assert info["devices"] == 8
    assert info["shard_shape"] == [64 // 8, 3, 10, 20]
    assert info["all_reduces"] >= 1  # XLA sums the per-device gradients
    assert info["out_devices"] == 8  # the updated parameters stay replicated


def test_single_device_funcgrad_matches_jax_grad(trained):
    runs, _ = trained
    assert_params_close(runs["single"], runs["jax_reference"])


@pytest.mark.parametrize("run", ["sharded_jit", "shard_map_psum", "shard_map_check_vma"])
def test_data_parallel_matches_single_device(trained, run):
    runs, _ = trained
    assert_params_close(runs[run], runs["single"])


def test_training_moved_the_parameters(trained):
    runs, _ = trained  # so the comparisons above are not between untouched initial values
    assert max(np.max(np.abs(a - b)) for a, b in zip(runs["single"], runs["initial"])) > 1e-3
