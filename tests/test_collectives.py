"""Collectives and shard_map on 4 simulated CPU devices, and named axes under vmap, against jax.grad.

The device count must be fixed before JAX initialises, so the multi-device
checks run in a subprocess (``jax_num_cpu_devices=4``), which prints one line
per check; this process asserts on them.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import funcgrad
from tests.conftest import x64

ROOT = pathlib.Path(__file__).resolve().parents[1]

SCRIPT = r"""
import jax
jax.config.update("jax_num_cpu_devices", 4)
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp, numpy as np
from jax import lax
from jax.sharding import PartitionSpec as P
import funcgrad

n = 4
mesh = jax.make_mesh((n,), ("i",), axis_types=(jax.sharding.AxisType.Auto,))


def collectives(x, w):
    # every collective with a rule, on data that differs between devices
    h = jnp.tanh(x * w)
    g = lax.all_gather(h, "i", axis=0, tiled=True)
    pp = lax.ppermute(h, "i", [(j, (j + 1) % n) for j in range(n)])
    a2a = lax.all_to_all(jnp.reshape(h, (n, -1)), "i", 0, 0, tiled=True)
    rs = lax.psum_scatter(jnp.reshape(h, (n, -1)) * w, "i", scatter_dimension=0, tiled=True)
    inv = lax.all_gather(h * w, "i", axis=0, tiled=True, to="invarying") if CHECK else 0.0
    total = lax.psum(h.sum(), "i") + lax.psum((g ** 2).sum() * 0.1 + (rs ** 2).sum(), "i") + jnp.sum(inv ** 3)
    return total, lax.pmean(h ** 2, "i") * pp + (a2a ** 3).sum()


def loops(w, x):
    # scan (final carry unused: its cotangent is a zero), cond and checkpoint inside a shard
    def step(c, xi):
        c = jnp.tanh(c * w + xi)
        return c, lax.cond(w > 0.5, lambda a: a * w, jnp.sin, c)

    c, ys = lax.scan(step, x[0] * 0.0, x)
    return jax.checkpoint(lambda a: jnp.sin(a) * w)(ys[-1]) + ys.sum()


def report(name, a, b):
    err = max(float(np.max(np.abs(np.asarray(u) - np.asarray(v)))) for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)))
    print(name, err, flush=True)


x = jnp.linspace(-1.0, 1.0, 8 * n)
w = jnp.float64(0.7)
for check in (True, False):
    CHECK = check  # all_gather(to="invarying") needs varying-axes checks
    tag = "vma" if check else "novma"
    through = lambda w, x: jax.shard_map(collectives, mesh=mesh, in_specs=(P("i"), P()), out_specs=(P(), P("i")),
                                         check_vma=check)(x, w)
    loss = lambda w, x: through(w, x)[0] * 2 + jnp.sum(through(w, x)[1] ** 2)
    # under jit: one compilation instead of dispatching every equation to 4 devices one by one
    report(f"through_shard_map_{tag}", jax.jit(funcgrad.grad(loss, (0, 1)))(w, x), jax.grad(loss, (0, 1))(w, x))

    loops_outer = lambda w, x: jax.shard_map(lambda w, x: lax.psum(loops(w, x), "i"), mesh=mesh,
                                             in_specs=(P(), P("i")), out_specs=P(), check_vma=check)(w, x)
    report(f"loops_through_shard_map_{tag}", jax.jit(funcgrad.grad(loops_outer, (0, 1)))(w, x),
           jax.grad(loops_outer, (0, 1))(w, x))

    # differentiating inside each shard (data parallelism): invariant w is pvary'd, its VJP sums
    inside = lambda grad: jax.jit(jax.shard_map(lambda w, x: grad(loops, argnums=(0, 1))(w, x), mesh=mesh,
                                        in_specs=(P(), P("i")), out_specs=(P(), P("i")), check_vma=check))(w, x)
    report(f"grad_inside_shard_map_{tag}", inside(funcgrad.grad), inside(jax.grad))
"""

CHECKS = [
    f"{name}_{tag}"
    for name in ("through_shard_map", "loops_through_shard_map", "grad_inside_shard_map")
    for tag in ("vma", "novma")
]


@pytest.fixture(scope="module")
def multi_device_errors():
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    proc = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"multi-device subprocess failed:\n{proc.stdout}\n{proc.stderr[-4000:]}"
    return {name: float(err) for name, err in (line.split() for line in proc.stdout.strip().splitlines())}


@pytest.mark.parametrize("check", CHECKS)
def test_shard_map_and_collectives_on_four_devices(multi_device_errors, check):
    assert check in multi_device_errors, f"the subprocess did not report {check}"
    assert multi_device_errors[check] < 1e-12


def test_named_axis_collectives_under_vmap():
    # vmap(axis_name=...) binds psum / all_gather / ppermute without shard_map (and without vma checks)
    def per_example(w, x):
        h = jnp.tanh(w * x)
        total = lax.psum(h.sum(), "b")
        gathered = lax.all_gather(h, "b")
        shifted = lax.ppermute(h, "b", [(0, 1), (1, 2), (2, 0)])
        return total + jnp.sum(gathered**2) + jnp.sum(shifted * h) + lax.pmean(h, "b").sum()

    with x64():
        xs = jnp.linspace(-1.0, 1.0, 6).reshape(3, 2)
        got = jax.vmap(funcgrad.grad(per_example, (0, 1)), in_axes=(None, 0), axis_name="b")(0.7, xs)
        want = jax.vmap(jax.grad(per_example, (0, 1)), in_axes=(None, 0), axis_name="b")(0.7, xs)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-10), got, want)
