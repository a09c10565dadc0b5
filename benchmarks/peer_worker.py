"""One peer's training step for one workload, timed in a process of its own; prints one JSON line.

Usage (from the repository root; ``benchmarks.peers`` runs it for every peer)::

    python -m benchmarks.peer_worker PEER WORKLOAD [--repeats N] [--threads T] [--data FILE.npz]
    python -m benchmarks.peer_worker data WORKLOAD --data FILE.npz   # only writes FILE.npz

PEER is one of ``PEERS``. The step is forward and backward of the workload's loss with respect to
its parameters (``benchmarks.workloads``; ``torch_workloads`` and ``autograd_workloads`` for
PyTorch and HIPS autograd). Parameters, batch and the reference gradients (``jax.grad``, eager)
come from FILE.npz; without ``--data`` a separate ``data`` process writes a temporary one, so
that a PyTorch or autograd worker never imports JAX (its ``jax_imported`` field says so) and a
JAX worker's first call is its own.

Threads: ``--threads T`` is ``torch.set_num_threads(T)`` for PyTorch and NumPy's BLAS pool
(threadpoolctl) for autograd, set before any work; JAX processes keep XLA's default. Without it
every library keeps its own default; the JSON line records what was in force.

Timing: one first call (``first_call_s``: compilation included, fresh process), ``--warmup``
more calls, then ``--repeats`` timed calls (default: as many as fit in ``--budget`` seconds,
at least 10, at most 2000), each finished before the clock stops (``jax.block_until_ready``,
``loss.item()``). ``max_rel_err``: max over parameters of max |g - g_ref| / max |g_ref|.

This module imports no JAX at the top: the JAX side is imported inside its functions only, and
funcgrad only in funcgrad's workers (so not ``benchmarks.measure``, which imports both; its
``steady_state`` interleaves methods in one process, which is what this module avoids).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import types

JAX_PEERS = (
    "jax jit",
    "jax eager",
    "funcgrad jit",
    "funcgrad eager",
    "funcgrad eager (hot off)",
    "equinox filter_jit",
)
TORCH_PEERS = ("torch eager", "torch.compile")
PEERS = (*JAX_PEERS, *TORCH_PEERS, "autograd")
WORKLOADS = ("A1", "A128", "B", "C", "D")
INSTALL = {
    "equinox filter_jit": "pip install equinox",
    "torch eager": "pip install torch==2.13.0",
    "torch.compile": "pip install torch==2.13.0",
    "autograd": "pip install autograd",
}


class NotInstalled(Exception):
    pass


class Unsupported(Exception):
    pass


def jax_imported() -> bool:
    return any(m == "jax" or m.startswith(("jax.", "jaxlib")) for m in sys.modules)


def _dist_version(name: str) -> str:
    try:
        from importlib.metadata import version

        return version(name)
    except Exception:
        return "not installed"


# ------------------------------------------------------------------ data file


def save_data(name: str, path: str) -> None:
    """Write workload ``name``'s params (``p.<key>``), batch (``b.<i>``), ``jax.grad`` reference
    gradients (``g.<key>``) and loss to ``path`` (NumPy .npz). Imports JAX: run it in the parent."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from benchmarks.workloads import make_workloads

    w = make_workloads()[name]
    params = {k: jnp.asarray(v) for k, v in w.params.items()}
    batch = tuple(jnp.asarray(b) for b in w.batch)
    loss, grads = jax.value_and_grad(w.loss)(params, *batch)
    arrays = {f"p.{k}": v for k, v in w.params.items()}
    arrays.update({f"b.{i}": b for i, b in enumerate(w.batch)})
    arrays.update({f"g.{k}": np.asarray(v) for k, v in grads.items()})
    np.savez(path, name=np.asarray(name), loss=np.asarray(loss), **arrays)


def load_data(path: str):
    """(workload, reference grads) from ``save_data``'s file; the workload has ``name``, ``params``
    and ``batch`` as NumPy arrays (what the PyTorch and autograd versions read). No JAX."""
    import numpy as np

    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    params = {k[2:]: v for k, v in arrays.items() if k.startswith("p.")}
    n_batch = sum(k.startswith("b.") for k in arrays)
    batch = tuple(arrays[f"b.{i}"] for i in range(n_batch))
    ref = {k[2:]: v for k, v in arrays.items() if k.startswith("g.")}
    w = types.SimpleNamespace(name=str(arrays["name"]), params=params, batch=batch)
    return w, ref


def max_rel_err(got: dict, want: dict) -> float:
    import numpy as np

    errs = []
    for k, v in want.items():
        g, v = np.asarray(got[k], np.float64), np.asarray(v, np.float64)
        errs.append(float(np.max(np.abs(g - v)) / (np.max(np.abs(v)) + 1e-30)))
    return max(errs)


# ---------------------------------------------------------------------- peers


def _jax_peer(peer: str, w):
    """(step, grads_of, threads, versions) for a JAX-based peer; ``step()`` returns finished output."""
    import jax
    import jax.numpy as jnp

    from benchmarks.workloads import make_workloads

    loss = make_workloads()[w.name].loss
    params = {k: jnp.asarray(v) for k, v in w.params.items()}
    batch = tuple(jnp.asarray(b) for b in w.batch)
    versions = {"jax": jax.__version__, "jaxlib": _dist_version("jaxlib")}
    if peer.startswith("funcgrad"):  # only funcgrad's own workers import it
        import funcgrad

        versions["funcgrad"] = funcgrad.__version__
    if peer == "jax jit":
        f = jax.jit(jax.value_and_grad(loss))
    elif peer == "jax eager":
        f = jax.value_and_grad(loss)
    elif peer == "funcgrad jit":
        f = jax.jit(funcgrad.value_and_grad(loss))
    elif peer == "funcgrad eager":
        funcgrad.set_hot_compilation(True)
        f = funcgrad.value_and_grad(loss)
    elif peer == "funcgrad eager (hot off)":
        funcgrad.set_hot_compilation(False)
        f = funcgrad.value_and_grad(loss)
    elif peer == "equinox filter_jit":
        try:
            import equinox as eqx
        except ImportError as err:
            raise NotInstalled(str(err)) from err
        versions["equinox"] = eqx.__version__
        f = eqx.filter_jit(eqx.filter_value_and_grad(loss))
    else:
        raise ValueError(peer)

    def step():
        return jax.block_until_ready(f(params, *batch))

    device = jax.devices()[0]
    versions["device"] = "cpu" if device.platform == "cpu" else device.device_kind
    threads = f"XLA default ({os.cpu_count()} cores)" if device.platform == "cpu" else f"XLA on {device.device_kind}"
    return step, lambda out: out[1], threads, versions


def _torch_peer(peer: str, w, threads):
    try:
        import torch
    except ImportError as err:
        raise NotInstalled(str(err)) from err
    if threads is not None:
        torch.set_num_threads(threads)
    from benchmarks.torch_workloads import torch_step

    # FUNCGRAD_TORCH_DEVICE=cuda (benchmarks/gpu.sh, where torch sees a GPU); default the CPU
    device = os.environ.get("FUNCGRAD_TORCH_DEVICE", "cpu")
    raw, grads = torch_step(w, device=device, compile=peer == "torch.compile")

    def step():
        return raw().item()  # .item() waits for the device

    found = f"{torch.get_num_threads()} intra-op, {torch.get_num_interop_threads()} inter-op"
    if device != "cpu":
        found = f"torch on {torch.cuda.get_device_name()}" if device.startswith("cuda") else f"torch on {device}"
    return step, lambda out: grads(), found, {"torch": torch.__version__}


def _blas_threads() -> str:
    try:
        from threadpoolctl import threadpool_info

        pools = threadpool_info()
    except ImportError:
        return "BLAS default (threadpoolctl not installed)"
    return ", ".join(f"{p.get('internal_api')} {p.get('num_threads')}" for p in pools) or "no BLAS pool found"


def _autograd_peer(w, threads):
    try:
        from benchmarks.autograd_workloads import autograd_step
    except ImportError as err:
        raise NotInstalled(str(err)) from err
    if threads is not None:
        from threadpoolctl import threadpool_limits

        _autograd_peer.limits = threadpool_limits(threads)  # kept alive for the process
    made = autograd_step(w)
    if made is None:
        raise Unsupported(f"no HIPS autograd version of workload {w.name} (benchmarks/autograd_workloads.py)")
    step, _ = made
    return step, lambda out: out, _blas_threads(), {"autograd": _dist_version("autograd")}


def build(peer: str, w, threads=None):
    """(step, grads_of, threads, versions) for ``peer`` on workload ``w`` (from ``load_data``)."""
    if peer in JAX_PEERS:
        return _jax_peer(peer, w)
    if peer in TORCH_PEERS:
        return _torch_peer(peer, w, threads)
    if peer == "autograd":
        return _autograd_peer(w, threads)
    raise ValueError(f"unknown peer {peer!r}; one of {PEERS}")


# --------------------------------------------------------------------- timing


def _timed(step):
    t0 = time.perf_counter()
    out = step()
    return time.perf_counter() - t0, out


def measure_step(step, repeats=None, budget_s=2.0, warmup=2) -> dict:
    first, out = _timed(step)
    est = first
    for _ in range(warmup):
        est, out = _timed(step)
    n = repeats if repeats is not None else int(min(2000, max(10, budget_s / max(est, 1e-6))))
    times = []
    for _ in range(n):
        t, out = _timed(step)
        times.append(t)
    return {
        "median_s": statistics.median(times),
        "min_s": min(times),
        "repeats": n,
        "first_call_s": first,
        "out": out,
    }


def run(peer: str, data: str, repeats=None, threads=None, budget_s=2.0, warmup=2) -> dict:
    record = {"peer": peer}
    w, ref = load_data(data)
    record["workload"] = w.name
    try:
        step, grads_of, found_threads, versions = build(peer, w, threads)
        m = measure_step(step, repeats, budget_s, warmup)
        record.update({k: v for k, v in m.items() if k != "out"})
        record["threads"] = found_threads
        record["max_rel_err"] = max_rel_err(grads_of(m["out"]), ref)
        record["status"] = "ok"
    except NotInstalled as err:
        record.update(status="not installed", install=INSTALL.get(peer, ""), error=str(err))
        versions = {}
    except Unsupported as err:
        record.update(status="unsupported", error=str(err))
        versions = {}
    except Exception as err:  # reported, not hidden: the parent shows it in the table
        record.update(status="failed", error=f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}")
        versions = {}
    import numpy as np

    record["versions"] = {"python": platform.python_version(), "numpy": np.__version__, **versions}
    record["jax_imported"] = jax_imported()
    return record


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("peer", choices=[*PEERS, "data"])
    parser.add_argument("workload", choices=WORKLOADS)
    parser.add_argument("--repeats", type=int, default=None, help="timed calls (default: fill --budget)")
    parser.add_argument("--budget", type=float, default=2.0, help="seconds of timed calls when --repeats is not given")
    parser.add_argument("--warmup", type=int, default=2, help="calls after the first one, before timing")
    parser.add_argument("--threads", type=int, default=None, help="torch / BLAS threads (JAX: XLA's default)")
    parser.add_argument("--data", default=None, help="the .npz of save_data (default: written by a child process)")
    opts = parser.parse_args(argv)
    if opts.peer == "data":
        if not opts.data:
            parser.error("data needs --data FILE.npz")
        save_data(opts.workload, opts.data)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        data = opts.data
        if data is None:
            data = os.path.join(tmp, f"{opts.workload}.npz")
            cmd = [sys.executable, "-m", "benchmarks.peer_worker", "data", opts.workload, "--data", data]
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        record = run(opts.peer, data, opts.repeats, opts.threads, opts.budget, opts.warmup)
    print(json.dumps(record), flush=True)
    return 0 if record["status"] in ("ok", "not installed", "unsupported") else 1


if __name__ == "__main__":
    sys.exit(main())
