"""Forward mode: funcgrad's jvp, jacfwd and hessian against JAX's, side by side in one run.

    python -m benchmarks.forward_mode            # prints the table and writes it into benchmarks/RESULTS.md
    python -m benchmarks.forward_mode --no-write

funcgrad's forward mode is its reverse sweep transposed (docs/forward_mode.md). Each figure is the
median of interleaved steady-state timings (benchmarks.measure.steady_state); the ratio is funcgrad's
median over JAX's. The machine's load average is recorded with the table.
"""

from __future__ import annotations

import argparse
import os

import jax
import jax.numpy as jnp
import numpy as np

import funcgrad
from benchmarks import measure, report
from benchmarks.workloads import make_workloads, mynet_mse


def cases():
    """(name, funcgrad's call, JAX's call, args): each a function of arrays, compared as given and jitted."""
    found = []
    for key, w in make_workloads().items():
        params = jax.tree.map(jnp.asarray, w.params)
        batch = tuple(jnp.asarray(b) for b in w.batch)
        tangent = jax.tree.map(lambda a: jnp.full_like(a, 0.01), params)
        loss = w.loss

        def jvp_of(api, loss=loss):
            return lambda p, t, *b: api.jvp(lambda p: loss(p, *b), (p,), (t,))

        found.append((f"jvp, {key}: {w.description}", jvp_of(funcgrad), jvp_of(jax), (params, tangent, *batch)))
    mynet = make_workloads()["A1"]
    p = jax.tree.map(jnp.asarray, mynet.params)
    x, y = (jnp.asarray(b) for b in mynet.batch)

    def loss_of_input(x, p=p):
        return mynet_mse(p, x, y)

    found.append(
        ("jacfwd, mynet loss by its 600 inputs", funcgrad.jacfwd(loss_of_input), jax.jacfwd(loss_of_input), (x,))
    )
    top = {"W2": p["W2"], "b2": p["b2"]}

    def last_layer_loss(top, p=p):
        return mynet_mse({**p, **top}, x, y)

    found.append(
        (
            "hessian, mynet loss by its last layer (410)",
            funcgrad.hessian(last_layer_loss),
            jax.hessian(last_layer_loss),
            (top,),
        )
    )
    return found


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--eager", action="store_true", help="also time without jit (slow: op by op)")
    opts = parser.parse_args(argv)
    load = os.getloadavg()
    rows = [
        "| case | jit: funcgrad / JAX (ms) | ratio | " + ("eager: funcgrad / JAX (ms) | ratio |" if opts.eager else ""),
        "|---|---|---|" + ("---|---|" if opts.eager else ""),
    ]
    for name, ours, theirs, args in cases():
        jo, jt = jax.jit(ours), jax.jit(theirs)
        np.testing.assert_allclose(
            np.concatenate([np.ravel(a) for a in jax.tree.leaves(jo(*args))]),
            np.concatenate([np.ravel(a) for a in jax.tree.leaves(jt(*args))]),
            rtol=2e-3,
            atol=2e-4,
        )
        t = measure.steady_state({"ours": lambda: jo(*args), "theirs": lambda: jt(*args)}, budget_s=1.5)
        a, b = t["ours"]["median"] * 1e3, t["theirs"]["median"] * 1e3
        row = f"| {name} | {a:.3f} / {b:.3f} | {a / b:.2f} |"
        if opts.eager:
            e = measure.steady_state({"ours": lambda: ours(*args), "theirs": lambda: theirs(*args)}, budget_s=3.0)
            c, d = e["ours"]["median"] * 1e3, e["theirs"]["median"] * 1e3
            row += f" {c:.2f} / {d:.2f} | {c / d:.2f} |"
        rows.append(row)
        print(row, flush=True)
    after = os.getloadavg()
    text = "\n".join(rows) + (
        f"\n\n{os.cpu_count()} CPUs, jax {jax.__version__} on {jax.default_backend()}; load average "
        f"(1 min) {load[0]:.2f} before, {after[0]:.2f} after.\n"
    )
    print("\n" + text)
    if not opts.no_write:
        report.write_section("FORWARD MODE", "Forward mode (python -m benchmarks.forward_mode)", text)


if __name__ == "__main__":
    main()
