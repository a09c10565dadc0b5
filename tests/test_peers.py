"""benchmarks.peers' workers: one JSON line each, positive times, gradients that agree, and the
PyTorch/autograd side of the worker importing no JAX (so its thread pools never meet XLA's)."""

import json
import pathlib
import subprocess
import sys

import pytest

from benchmarks import peer_worker

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def a1_data(tmp_path_factory):
    path = tmp_path_factory.mktemp("peers") / "A1.npz"
    peer_worker.save_data("A1", str(path))
    return str(path)


def _worker(peer, data, *extra):
    cmd = [sys.executable, "-m", "benchmarks.peer_worker", peer, "A1", "--repeats", "2", "--data", data, *extra]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert lines, f"no JSON line from {peer!r} (exit {proc.returncode}):\n{proc.stderr[-2000:]}"
    return json.loads(lines[-1])


@pytest.mark.parametrize("peer", ["funcgrad eager", "jax jit"])
def test_worker_prints_one_timed_checked_record(peer, a1_data):
    r = _worker(peer, a1_data)
    assert r["status"] == "ok", r
    assert r["peer"] == peer and r["workload"] == "A1" and r["repeats"] == 2
    assert 0 < r["min_s"] <= r["median_s"] and r["first_call_s"] > 0
    assert r["max_rel_err"] < 1e-4
    assert r["versions"]["jax"] and r["jax_imported"]


def test_torch_and_autograd_side_imports_no_jax(a1_data):
    code = (
        "import sys\n"
        "from benchmarks import peer_worker\n"
        f"w, ref = peer_worker.load_data({a1_data!r})\n"
        "assert set(ref) == set(w.params) and w.name == 'A1'\n"
        "for peer in ('torch eager', 'autograd'):\n"
        "    try:\n"
        "        peer_worker.build(peer, w)\n"
        "    except peer_worker.NotInstalled:\n"
        "        pass\n"
        "bad = sorted(m for m in sys.modules if m == 'jax' or m.startswith(('jax.', 'jaxlib')))\n"
        "assert not bad, bad\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_a_missing_peer_is_reported_not_dropped():
    from benchmarks import peers

    r = {"status": "not installed", "install": "pip install torch==2.13.0"}
    assert peers.cell(r, 1.0) == "not installed (pip install torch==2.13.0)"
    assert peers.cell({"status": "ok", "median_s": 2e-3, "others_cores": 0.6, "load1": 0.1}, 1e-3) == "2 (2.00)†"
    assert peers.cell({"status": "ok", "median_s": 2e-3, "others_cores": 0.01, "load1": 3.0}, 1e-3) == "2 (2.00)"
