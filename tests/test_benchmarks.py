"""The benchmark harness's own claims, checked cheaply: same compiled program, deep graphs, reports."""

import gc
import sys

import jax
import jax.numpy as jnp
import numpy as np

import funcgrad
from benchmarks import measure, run, scaling
from benchmarks.workloads import make_workloads


def test_mynet_compiles_to_the_same_program_as_jax_grad():
    w = make_workloads()["A1"]
    args = (jax.tree_util.tree_map(jnp.asarray, w.params), *map(jnp.asarray, w.batch))
    xla = measure.xla_analysis(w.loss, args)
    fg, jx = xla["funcgrad"], xla["jax"]
    assert sum(fg["hlo"].values()) > 10
    assert measure.hlo_difference(fg["hlo"], jx["hlo"]) == 0
    assert fg["flops"] == jx["flops"] and fg["bytes accessed"] == jx["bytes accessed"]
    assert fg["peak"] == jx["peak"]


def test_vjp_holds_no_more_than_jax_vjp_on_each_of_the_first_calls():
    # the eager sweep, the call that compiles the hot program and a compiled call: byte counts of live
    # arrays, deterministic; a pullback that kept forward values no rule reads exceeds jax.vjp's by far
    # more than 5% on mynet (keeping every forward value, core.backward_reads off: 1.47x)
    w = make_workloads()["A128"]
    params = jax.tree_util.tree_map(jnp.asarray, w.params)
    held = measure.eager_held_bytes(w.loss, params, tuple(map(jnp.asarray, w.batch)))
    assert held["jax"]["steady"] > 0
    for call in measure.CALLS_MEASURED:
        assert held["funcgrad"][call] <= 1.05 * held["jax"][call], (call, held)


def test_hlo_signature_ignores_names_and_metadata_but_not_shapes():
    a = '%add.3 = f32[4]{0} add(%p.1, %p.2), metadata={op_name="x"}'
    b = '%add.9 = f32[4]{0} add(%q.7, %q.8), metadata={op_name="y" stack_frame_id=3}'
    c = "%add.9 = f32[5]{0} add(%q.7, %q.8)"
    assert measure.hlo_difference(measure.hlo_signature(a), measure.hlo_signature(b)) == 0
    assert measure.hlo_difference(measure.hlo_signature(a), measure.hlo_signature(c)) == 2


def test_graph_deeper_than_the_recursion_limit():
    f, x = scaling.chain(2 * sys.getrecursionlimit() + 200)
    graph = funcgrad.trace(f)(x)
    assert len(graph.eqns) > sys.getrecursionlimit()  # a recursive sweep would overflow the stack
    got = jax.jit(funcgrad.grad(f))(x)
    np.testing.assert_allclose(got, jax.jit(jax.grad(f))(x), rtol=1e-5, atol=1e-6)


def test_collector_state_is_restored():
    f = lambda x: jnp.sum(jnp.sin(x) ** 2)
    x = jnp.linspace(0.0, 1.0, 5)
    assert gc.isenabled()
    funcgrad.grad(f)(x)
    assert gc.isenabled()
    gc.disable()
    try:
        funcgrad.grad(f)(x)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_results_file_keeps_the_hand_written_analysis(tmp_path):
    path = tmp_path / "RESULTS.md"
    path.write_text(f"# Results\n\nintro\n\n{run.BEGIN}\nold figures\n{run.END}\n\n## Analysis\nkept\n")
    run.write_results(path, f"{run.BEGIN}\nnew figures\n{run.END}")
    text = path.read_text()
    assert "new figures" in text and "old figures" not in text
    assert text.startswith("# Results\n\nintro") and text.endswith("## Analysis\nkept\n")


def test_steady_state_times_every_step_interleaved():
    calls = []
    steps = {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}
    stats = measure.steady_state(steps, min_reps=10, budget_s=0.0, warmup=1)
    assert stats["a"]["n"] == stats["b"]["n"] == 10
    assert calls.count("a") == calls.count("b") == 11
    assert calls[2:4] == ["a", "b"] and calls[4:6] == ["b", "a"]  # the order rotates each round


def test_gpu_script_runs_in_cpu_mode(tmp_path):
    # benchmarks/gpu.sh is what a lent GPU machine runs in one call; FUNCGRAD_BENCH_CPU=1 runs it here
    import os
    import pathlib
    import subprocess
    import sys

    root = pathlib.Path(__file__).resolve().parents[1]
    env = {
        **os.environ,
        "FUNCGRAD_BENCH_CPU": "1",
        "FUNCGRAD_BENCH_WORKLOADS": "A1",
        "FUNCGRAD_BENCH_PEERS": "jax jit,funcgrad eager",
        "OUT": str(tmp_path),
        "PYTHONPATH": str(root),
        # the script runs `python`: this interpreter's, also where its venv is not activated
        "PATH": f"{pathlib.Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    proc = subprocess.run(
        ["bash", str(root / "benchmarks" / "gpu.sh")], env=env, cwd=root, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "JAX backend: cpu" in proc.stdout
    table = (tmp_path / "gpu_peers.md").read_text()
    assert "JAX on cpu" in table and "| A1 |" in table and "funcgrad eager" in table
    row = next(line for line in table.splitlines() if line.startswith("| A1 |"))
    assert "(1.00)" in row  # jax jit, the baseline, ran
    # without FUNCGRAD_BENCH_CPU on a machine without a GPU it refuses: figures labelled GPU come from one
    env.pop("FUNCGRAD_BENCH_CPU")
    env["JAX_PLATFORMS"] = "cpu"
    refused = subprocess.run(
        ["bash", str(root / "benchmarks" / "gpu.sh")], env=env, cwd=root, capture_output=True, text=True, timeout=120
    )
    assert refused.returncode == 2 and "JAX sees no GPU" in refused.stderr


def test_xla_profile_names_each_instruction_by_what_it_computes():
    # benchmarks/xla_profile.py sums XLA:CPU's per-thunk events by instruction; describe() says what each
    # instruction (or its fused computation) runs, read from the compiled program's text
    from benchmarks import xla_profile

    def f(w, x):
        h = jax.lax.conv_general_dilated(x, w, (1, 1), "VALID")
        return jnp.sum(jnp.tanh(h.reshape(h.shape[0], -1) @ jnp.ones((h[0].size, 3))))

    args = (jnp.ones((4, 2, 3, 3)), jnp.ones((2, 2, 8, 8)))
    hlo = jax.jit(jax.grad(f)).lower(*args).compile().as_text()
    kinds = {kind for kind, _ in xla_profile.describe(hlo).values()}
    assert {"convolution", "dot"} <= kinds
    assert xla_profile._kind({"add", "transpose"}) == "transpose / copy"
    assert xla_profile._kind({"select", "pad", "transpose"}) == "select / pad (max-pool backward)"


def test_the_nhwc_cnn_is_workload_c_laid_out_otherwise(enable_x64):
    # benchmarks/cnn_layouts.py times the two as the same model: equal loss, and gradients that are
    # the NCHW ones transposed (float64, so only the summation order differs)
    from benchmarks.cnn_layouts import nhwc_workload

    c = make_workloads()["C"]
    n = nhwc_workload(c)
    to64 = lambda tree: jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), tree)
    x64 = lambda b: tuple(jnp.asarray(a, jnp.float64) if a.dtype.kind == "f" else jnp.asarray(a) for a in b)
    loss_c, g_c = funcgrad.value_and_grad(c.loss)(to64(c.params), *x64(c.batch))
    loss_n, g_n = funcgrad.value_and_grad(n.loss)(to64(n.params), *x64(n.batch))
    np.testing.assert_allclose(loss_n, loss_c, rtol=1e-12)
    np.testing.assert_allclose(g_n["conv2"], np.transpose(g_c["conv2"], (2, 3, 1, 0)), rtol=1e-9, atol=1e-12)
    w_c = np.asarray(g_c["W"]).reshape(10, 64, 5, 5).transpose(0, 2, 3, 1).reshape(10, -1)
    np.testing.assert_allclose(g_n["W"], w_c, rtol=1e-9, atol=1e-12)
