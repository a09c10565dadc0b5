"""Per-example gradient norms and clipping: funcgrad's (no per-example gradients) against ``vmap(grad)``.

    python -m benchmarks.per_example            # prints the table and writes it into benchmarks/RESULTS.md
    python -m benchmarks.per_example --no-write

For the benchmark MLP (784-1024-1024-10, cross-entropy) and the transformer block (seq 128, d 256,
4 heads), each with a batch of 256, under ``jax.jit``:

* norms: ``funcgrad.per_example_grad_norms(loss)`` against the norms of
  ``jax.vmap(jax.grad(loss))`` over single-example batches (JAX's way today);
* clipping: ``funcgrad.clipped_grad(loss, C)`` against clipping and summing those vmapped gradients.

Memory is XLA's plan for the compiled program (temporary buffers plus outputs; the arguments are the
same for both), a property of the program. Times are medians of interleaved runs, so the machine's
load affects both alike; the load average is recorded.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import funcgrad
from benchmarks import measure, report
from benchmarks.workloads import make_workloads

BATCH = 256


def _cases():
    w = make_workloads()
    rng = np.random.default_rng(1)
    mlp = w["B"]
    block = w["D"]
    x = rng.standard_normal((BATCH, *block.batch[0].shape[1:]), dtype=np.float32)
    return {
        "MLP 784-1024-1024-10": (mlp.loss, mlp.params, tuple(b[:BATCH] for b in mlp.batch)),
        "transformer block": (block.loss, block.params, (x,)),
    }


def _vmapped(loss, params, batch):
    return jax.vmap(lambda *ex: jax.grad(loss)(params, *[e[None] for e in ex]))(*batch)


def _vmap_norms(loss):
    def norms(params, *batch):
        per = _vmapped(loss, params, batch)
        return jnp.sqrt(sum(jnp.sum(jnp.reshape(g, (BATCH, -1)) ** 2, axis=1) for g in jax.tree.leaves(per)))

    return norms


def _vmap_clipped(loss, max_norm):
    def clipped(params, *batch):
        per = _vmapped(loss, params, batch)
        total = jnp.sqrt(sum(jnp.sum(jnp.reshape(g, (BATCH, -1)) ** 2, axis=1) for g in jax.tree.leaves(per)))
        scale = jnp.minimum(1.0, max_norm / total)
        return jax.tree.map(lambda g: jnp.tensordot(scale, g, 1), per)

    return clipped


def _memory(fn, args) -> int:
    m = jax.jit(fn).lower(*args).compile().memory_analysis()
    return m.temp_size_in_bytes + m.output_size_in_bytes


def rows() -> list[list[str]]:
    found = []
    for name, (loss, params, batch) in _cases().items():
        params = jax.tree.map(jnp.asarray, params)
        batch = tuple(jnp.asarray(b) for b in batch)
        args = (params, *batch)
        pairs = {
            "norms": (funcgrad.per_example_grad_norms(loss), _vmap_norms(loss)),
            "clipped sum": (funcgrad.clipped_grad(loss, 1.0), _vmap_clipped(loss, 1.0)),
        }
        for what, (ours, theirs) in pairs.items():
            mem = [_memory(f, args) for f in (ours, theirs)]
            jitted = [jax.jit(f) for f in (ours, theirs)]
            times = measure.steady_state(
                {"funcgrad": lambda: jitted[0](*args), "vmap(grad)": lambda: jitted[1](*args)},
                min_reps=3,
                budget_s=3.0,
                warmup=1,
            )
            t = [times["funcgrad"]["median"], times["vmap(grad)"]["median"]]
            found.append(
                [
                    name,
                    what,
                    f"{mem[0] / 2**20:.1f}",
                    f"{mem[1] / 2**20:.1f}",
                    f"{mem[1] / mem[0]:.1f}x",
                    f"{t[0] * 1e3:.0f}",
                    f"{t[1] * 1e3:.0f}",
                    f"{t[1] / t[0]:.2f}",
                ]
            )
    return found


def table(found) -> str:
    header = [
        "workload (batch 256)", "computes", "memory, funcgrad (MiB)", "memory, vmap(grad) (MiB)",
        "memory ratio", "median, funcgrad (ms)", "median, vmap(grad) (ms)", "speed-up",
    ]  # fmt: skip
    intro = (
        f"JAX {jax.__version__}, {jax.devices()[0].platform}; memory = XLA's temporary buffers + outputs of the "
        f"jitted program; load average {report.load_average()} (1, 5, 15 min)"
    )
    return intro + "\n\n" + report.table(header, found)


def main() -> None:
    report.section_main(
        __doc__,
        "PER EXAMPLE",
        "Per-example gradient norms and clipping (python -m benchmarks.per_example)",
        lambda: table(rows()),
    )


if __name__ == "__main__":
    main()
