"""jax.checkpoint policies on the transformer block: what is kept, what is recomputed, and XLA's memory.

    python -m benchmarks.checkpoint_memory            # prints the table and writes it into benchmarks/RESULTS.md
    python -m benchmarks.checkpoint_memory --no-write

For workload D (one pre-norm transformer block, batch 16, seq 128, d 256) wrapped in
``jax.checkpoint(transformer_block, policy=...)``, per policy:

* the bytes of the values the backward pass keeps from the forward pass that are not arguments
  (``funcgrad.saved_residuals(...).intermediate_bytes``; JAX's figure from
  ``jax.ad_checkpoint.print_saved_residuals`` of the same function, arguments left out as well),
* the FLOPs the backward pass spends evaluating the body again (funcgrad's cost model),
* XLA's memory analysis of ``jax.jit(grad(loss))`` compiled for this machine: the temporary buffers
  (the peak working set XLA plans for), funcgrad's and JAX's side by side.

These are properties of the compiled programs, not timings: the machine's load does not change them.
"""

from __future__ import annotations

import contextlib
import io
import re

import jax
import jax.ad_checkpoint
import jax.numpy as jnp
import numpy as np

import funcgrad
from benchmarks import report
from benchmarks.workloads import make_workloads, transformer_block

P = jax.checkpoint_policies
POLICIES = {
    "no jax.checkpoint": "none",
    "policy=None": None,
    "nothing_saveable": P.nothing_saveable,
    "dots_with_no_batch_dims_saveable": P.dots_with_no_batch_dims_saveable,
    "dots_saveable": P.dots_saveable,
    "save_only_these_names (none named)": P.save_only_these_names("h"),
    "everything_saveable": P.everything_saveable,
}


def _jax_kept_bytes(f, *args) -> int:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        jax.ad_checkpoint.print_saved_residuals(f, *args)
    total = 0
    for line in out.getvalue().splitlines():
        dtype, shape, what = re.match(r"(\w+)(?:<\w+>)?\[([\d,]*)\] (.*)$", line).groups()
        if not what.startswith("from the argument"):
            size = int(np.prod([int(d) for d in shape.split(",") if d]))
            total += size * {"f32": 4, "f64": 8, "bf16": 2, "f16": 2, "bool": 1, "i32": 4}[dtype]
    return total


def _temp_bytes(grad, loss, args) -> int:
    return jax.jit(grad(loss)).lower(*args).compile().memory_analysis().temp_size_in_bytes


def rows():
    w = make_workloads()["D"]
    args = (jax.tree.map(jnp.asarray, w.params), *(jnp.asarray(b) for b in w.batch))
    found = []
    for name, policy in POLICIES.items():
        block = transformer_block if policy == "none" else jax.checkpoint(transformer_block, policy=policy)

        def loss(p, x, block=block):
            return jnp.mean(block(p, x) ** 2)

        kept = funcgrad.saved_residuals(loss)(*args)
        jax_kept = _jax_kept_bytes(lambda p, x, block=block: block(p, x), *args)
        own_kept = funcgrad.saved_residuals(lambda p, x, block=block: block(p, x))(*args).intermediate_bytes
        fg_temp, jax_temp = _temp_bytes(funcgrad.grad, loss, args), _temp_bytes(jax.grad, loss, args)
        found.append((name, own_kept, jax_kept, kept.recomputed_flops, fg_temp, jax_temp))
    return found


def table(found) -> str:
    mib = lambda b: f"{b / 2**20:.1f}"  # noqa: E731
    header = [
        "policy", "kept, funcgrad (MiB)", "kept, JAX (MiB)", "recomputed (GFLOP)", "temp, funcgrad (MiB)",
        "temp, JAX (MiB)",
    ]  # fmt: skip
    rows = [[n, mib(own), mib(theirs), f"{flops / 1e9:.2f}", mib(a), mib(b)] for n, own, theirs, flops, a, b in found]
    intro = (
        f"JAX {jax.__version__}, {jax.devices()[0].platform}; workload D; MiB = 2^20 bytes; "
        "kept = values the backward pass keeps that are not arguments; temp = XLA's temporary buffers of "
        "jit(grad(loss))"
    )
    return intro + "\n\n" + report.table(header, rows)


def main() -> None:
    report.section_main(
        __doc__,
        "CHECKPOINT MEMORY",
        "jax.checkpoint policies (python -m benchmarks.checkpoint_memory)",
        lambda: table(rows()),
    )


if __name__ == "__main__":
    main()
