"""Gradients under explicit mesh axes ("sharding in types") have jax.grad's values and shardings.

With ``AxisType.Explicit`` axes (``jax.make_mesh``'s default in newer JAX) an array's sharding is
part of its type: a ``dot_general`` whose contracted axes are sharded needs an ``out_sharding``,
and JAX's transposes give each cotangent its primal's sharding. funcgrad's rules do the same.

The 8-device checks need the device count fixed before JAX initialises, so the training runs in a
subprocess with ``XLA_FLAGS=--xla_force_host_platform_device_count=8`` (as tests/test_data_parallel.py
does); it writes each gradient leaf and its sharding, and this process compares them. The in-process
checks use this process's one CPU device, on a (1, 1) explicit mesh: a sharding type names mesh axes
whatever their size, so a cotangent with the wrong one is caught there too.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

import funcgrad
from funcgrad.core import jax_compat as jc
from funcgrad.core import registry
from funcgrad.core.interpret import evaluate, read_all

ROOT = pathlib.Path(__file__).resolve().parents[1]

SCRIPT = r"""
import json, sys
import jax, jax.numpy as jnp, numpy as np
from jax.sharding import AxisType, NamedSharding, PartitionSpec as P
import funcgrad

out = sys.argv[1]
LR = 0.1


def init_mlp(key, sizes=(24, 32, 16, 10)):
    params = []
    for k, (d_in, d_out) in zip(jax.random.split(key, len(sizes) - 1), zip(sizes[:-1], sizes[1:])):
        kw, kb = jax.random.split(k)
        params.append({"W": jax.random.normal(kw, (d_in, d_out)) / np.sqrt(d_in),
                       "b": 0.1 * jax.random.normal(kb, (d_out,))})
    return params


def mlp(params, xs, model_parallel):
    h = xs
    for i, layer in enumerate(params):
        if model_parallel and i == 1:
            # W is sharded over "model" along the contracted axis: the sum over it needs an out_sharding
            h = jnp.matmul(h, layer["W"], out_sharding=P("data", None)) + layer["b"]
        else:
            h = h @ layer["W"] + layer["b"]
        if i < len(params) - 1:
            h = jnp.tanh(h)
    return h


def xent(params, xs, labels, model_parallel=False):
    logp = jax.nn.log_softmax(mlp(params, xs, model_parallel))
    return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=1))


traced_specs = {}


def step(grad, name, model_parallel):
    @jax.jit
    def sgd_step(params, xs, labels):
        grads = grad(xent)(params, xs, labels, model_parallel)
        # the sharding types as the traced program sees them
        traced_specs[name] = [str(jax.typeof(g).sharding.spec) for g in jax.tree.leaves(grads)]
        return grads, jax.tree.map(lambda p, g: p - LR * g, params, grads)
    return sgd_step


def place(tree, specs, mesh):
    return jax.tree.map(lambda x, s: jax.device_put(x, NamedSharding(mesh, s)), tree, specs)


params = init_mlp(jax.random.key(0))
xs = jax.random.normal(jax.random.key(1), (64, 24))
labels = jax.random.randint(jax.random.key(2), (64,), 0, 10)

setups = {
    # batch split over 8 devices, parameters replicated
    "data_parallel": (jax.make_mesh((8,), ("data",), axis_types=(AxisType.Explicit,)),
                      [{"W": P(), "b": P()}] * 3, False),
    # also the hidden layer split over "model": W1's columns, W2's rows (Megatron-style)
    "model_parallel": (jax.make_mesh((4, 2), ("data", "model"), axis_types=(AxisType.Explicit,) * 2),
                       [{"W": P(None, "model"), "b": P("model")}, {"W": P("model", None), "b": P()},
                        {"W": P(), "b": P()}], True),
}
arrays, info = {}, {"devices": len(jax.devices())}
for name, (mesh, param_specs, model_parallel) in setups.items():
    with jax.set_mesh(mesh):
        p = place(params, param_specs, mesh)
        x, y = place((xs, labels), (P("data"), P("data")), mesh)
        for engine, grad in (("jax", jax.grad), ("funcgrad", funcgrad.grad)):
            grads, new_params = step(grad, f"{name}/{engine}", model_parallel)(p, x, y)
            run = f"{name}/{engine}"
            for i, (g, q) in enumerate(zip(jax.tree.leaves(grads), jax.tree.leaves(new_params))):
                arrays[f"{run}/grad/{i}"] = np.asarray(g)
                arrays[f"{run}/param/{i}"] = np.asarray(q)
            info[run] = {
                "grad_specs": [str(g.sharding.spec) for g in jax.tree.leaves(grads)],
                "param_specs": [str(q.sharding.spec) for q in jax.tree.leaves(new_params)],
                "traced_grad_specs": traced_specs[run],
                "axis_types": [t.name for t in mesh.axis_types],
                "grad_devices": [len(g.sharding.device_set) for g in jax.tree.leaves(grads)],
            }
        info[name + "/input_specs"] = [str(jax.typeof(a).sharding.spec) for a in jax.tree.leaves(p)]
np.savez(out + ".npz", **arrays)
json.dump(info, open(out + ".json", "w"))
"""

RUNS = ("data_parallel", "model_parallel")
N_LEAVES = 6  # three layers, each W and b


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("explicit_sharding") / "run")
    env = dict(os.environ)
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()
    env["JAX_PLATFORMS"] = "cpu"
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    proc = subprocess.run([sys.executable, "-c", SCRIPT, out], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"explicit-sharding subprocess failed:\n{proc.stdout}\n{proc.stderr[-6000:]}"
    arrays = dict(np.load(out + ".npz"))
    with open(out + ".json") as f:
        info = json.load(f)
    return arrays, info


def _leaves(arrays, run, engine, kind):
    return [arrays[f"{run}/{engine}/{kind}/{i}"] for i in range(N_LEAVES)]


def test_the_meshes_are_explicit_on_eight_devices(trained):
    _, info = trained
    assert info["devices"] == 8
    for run in RUNS:
        assert set(info[f"{run}/jax"]["axis_types"]) == {"Explicit"}
    # the model-parallel parameters really are split (else the test would not exercise it)
    assert info["model_parallel/input_specs"][:4] == [
        str(P(None, "model")),  # W1
        str(P("model")),  # b1
        str(P("model", None)),  # W2
        str(P(None)),  # b2
    ]


@pytest.mark.parametrize("run", RUNS)
def test_gradients_match_jax_grad(trained, run):
    arrays, _ = trained
    for got, want in zip(_leaves(arrays, run, "funcgrad", "grad"), _leaves(arrays, run, "jax", "grad")):
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6)
    for got, want in zip(_leaves(arrays, run, "funcgrad", "param"), _leaves(arrays, run, "jax", "param")):
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("run", RUNS)
def test_gradients_have_jax_grads_shardings(trained, run):
    _, info = trained
    ours, jax_s = info[f"{run}/funcgrad"], info[f"{run}/jax"]
    assert ours["traced_grad_specs"] == jax_s["traced_grad_specs"]  # inside jit: the sharding types
    assert ours["grad_specs"] == jax_s["grad_specs"]  # the arrays jit returned
    assert ours["param_specs"] == jax_s["param_specs"]
    assert ours["grad_devices"] == [8] * N_LEAVES


def test_gradients_are_sharded_like_their_parameters(trained):
    _, info = trained
    # the model-parallel gradients stay split over "model", as their parameters are
    assert info["model_parallel/funcgrad"]["grad_specs"] == info["model_parallel/input_specs"]


def test_training_step_moved_the_parameters(trained):
    arrays, _ = trained
    for run in RUNS:
        grads = _leaves(arrays, run, "funcgrad", "grad")
        assert max(float(np.max(np.abs(g))) for g in grads) > 1e-3  # not comparing zeros with zeros


# ------------------------------------------------------------- one device, in process


@pytest.fixture(scope="module")
def mesh():
    return jax.make_mesh((1, 1), ("data", "model"), axis_types=(jax.sharding.AxisType.Explicit,) * 2)


def _matmul_contracted_sharded(x, w):
    return jnp.sum(jnp.sin(jnp.matmul(x, w, out_sharding=P("data", None))))


def _conv(x, w):
    # x as one NWC image (width 4 over "data", 6 features over "model"), w as a width-1 WIO kernel whose
    # input features are over "model": both transposes contract a sharded axis
    y = lax.conv_general_dilated(
        x[None], w[None], (1,), "SAME", dimension_numbers=("NWC", "WIO", "NWC"), out_sharding=P(None, "data", None)
    )
    return jnp.sum(jnp.sin(y))


def _unreduced(x, w):
    y = jnp.matmul(x, w, out_sharding=P("data", None, unreduced={"model"}))
    z = jnp.matmul(2.0 * x, w, out_sharding=P("data", None, unreduced={"model"}))
    return jnp.sum(jnp.sin(jax.sharding.reshard(y + z, P("data", None))))


# name -> (f(x, w), x's spec, w's spec); x is (4, 6), w is (6, 3)
CASES = {
    # dot_general with a sharded contracted axis in both transposes
    "dot_general": (_matmul_contracted_sharded, P("data", "model"), P("model", None)),
    # reduce_sum over sharded axes: its cotangent is broadcast back to the operand's sharding
    "reduce_sum": (lambda x, w: jnp.sum(x * jnp.sum(w)), P("data", "model"), P("model", None)),
    # broadcast_in_dim of a sharded bias, summed back
    "bias": (lambda x, w: jnp.sum(jnp.tanh(x @ w + w[0])), P("data", None), P(None, "model")),
    # a reshape to a replicated vector: its cotangent is reshaped back to the sharded operand's type
    "reshape": (
        lambda x, w: jnp.sum(jnp.sin(lax.reshape(x, (24,), out_sharding=P(None))) * w[0, 0]),
        P("data", "model"),
        P(),
    ),
    # zeros written at a slice of a sharded operand, a gather's scatter-add, a split's missing cotangent
    "dynamic_slice": (lambda x, w: jnp.sum(jnp.sin(lax.dynamic_slice(x, (1, 0), (2, 6)))), P(None, "model"), P()),
    "gather": (lambda x, w: jnp.sum(jnp.sin(x[jnp.array([0, 2, 2])]) * w[:, 0]), P(None, "model"), P("model", None)),
    "split": (lambda x, w: jnp.sum(jnp.sin(jnp.split(x, 2, axis=0)[1])), P("data", None), P()),
    # x * w with different shardings: x's cotangent moved back to x's sharding by the sweep
    "elementwise": (lambda x, w: jnp.sum(jnp.sin(x * w[:, 0])), P("data", None), P("model", None)),
    "conv": (_conv, P("data", "model"), P("model", None)),
    # an unreduced matmul output (summed over "model" later), added to another and reduced by reshard:
    # its cotangent is *reduced* (JAX swaps the two), which dot_general's transposes accept
    "unreduced": (_unreduced, P("data", "model"), P("model", None)),
    # w reaches no output: its zero gradient is made outside the sweep, sharded like w
    "unused": (lambda x, w: jnp.sum(jnp.sin(x)), P("data", None), P("model", None)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_cotangent_shardings_match_jax_on_one_device(mesh, case):
    f, x_spec, w_spec = CASES[case]
    rng = np.random.default_rng(0)
    with jax.set_mesh(mesh):
        x = jax.device_put(rng.normal(size=(4, 6)).astype(np.float32), NamedSharding(mesh, x_spec))
        w = jax.device_put(rng.normal(size=(6, 3)).astype(np.float32), NamedSharding(mesh, w_spec))
        want = jax.jit(jax.grad(f, (0, 1)))(x, w)
        got = jax.jit(funcgrad.grad(f, (0, 1)))(x, w)
        got_eager = funcgrad.grad(f, (0, 1))(x, w)
    for g, e, j in zip(got, got_eager, want):
        np.testing.assert_allclose(g, j, rtol=2e-5, atol=2e-6)
        assert jax.typeof(g).sharding.spec == jax.typeof(j).sharding.spec
        assert jax.typeof(e).sharding.spec == jax.typeof(j).sharding.spec


# primitive -> (f, one spec per argument, argument shapes): one equation of that primitive, whose rule
# must give each cotangent its primal's sharding by itself (the sweep would otherwise move it there)
RULE_CASES = {
    # the contracted axis is sharded in both transposes: JAX requires the out_sharding
    "dot_general": (
        lambda x, w: lax.dot_general(x, w, (((1,), (0,)), ((), ())), out_sharding=P("data", None)),
        (P("data", "model"), P("model", None)),
        ((4, 6), (6, 3)),
    ),
    # a sum over sharded axes is replicated there; its cotangent is broadcast back sharded
    "reduce_sum": (lambda x: jnp.sum(x, axis=0), (P("data", "model"),), ((4, 6),)),
    "reduce_max": (lambda x: jnp.max(x, axis=1), (P("data", "model"),), ((4, 6),)),
    # a replicated bias broadcast into a sharded array: its cotangent is summed back, replicated
    "broadcast_in_dim": (
        lambda b: lax.broadcast_in_dim(b, (4, 3), (1,), out_sharding=P("data", "model")),
        (P(None),),
        ((3,),),
    ),
    "reshape": (lambda x: lax.reshape(x, (24,), out_sharding=P(None)), (P("data", "model"),), ((4, 6),)),
    "conv_general_dilated": (
        lambda x, w: lax.conv_general_dilated(
            x, w, (1,), "SAME", dimension_numbers=("NWC", "WIO", "NWC"), out_sharding=P(None, "data", None)
        ),
        (P(None, "data", "model"), P(None, "model", None)),
        ((1, 4, 6), (1, 6, 3)),
    ),
    "dynamic_slice": (lambda x: lax.dynamic_slice(x, (1, 0), (2, 6)), (P(None, "model"),), ((4, 6),)),
    "gather": (lambda x: x[jnp.array([0, 2, 2])], (P(None, "model"),), ((4, 6),)),
}


@pytest.mark.parametrize("primitive", sorted(RULE_CASES))
def test_rule_gives_cotangents_their_primals_sharding(mesh, primitive):
    f, specs, shapes = RULE_CASES[primitive]
    rng = np.random.default_rng(1)
    with jax.set_mesh(mesh):
        args = [
            jax.device_put(rng.normal(size=shape).astype(np.float32), NamedSharding(mesh, spec))
            for shape, spec in zip(shapes, specs)
        ]
        graph = funcgrad.trace(f)(*args)
        env = evaluate(graph, args)
        (eqn,) = [e for e in graph.eqns if e.primitive == primitive]
        primals, out = read_all(env, eqn.inputs), env[eqn.outputs[0]]
        ct = jnp.ones_like(out)  # sharded as the output
        cts = registry.lookup_eqn(eqn).vjp(ct, *primals, out=out, **eqn.params)
        _, jax_vjp = jax.vjp(f, *args)
        jax_cts = jax_vjp(ct)
    by_input = dict(zip(map(id, primals), cts))
    for x, jax_ct in zip(args, jax_cts):
        ours = by_input[id(x)]  # the rule's cotangent of this argument, before the sweep touches it
        assert jax.typeof(ours).sharding.spec == jax.typeof(x).sharding.spec == jax.typeof(jax_ct).sharding.spec
        np.testing.assert_allclose(ours, jax_ct, rtol=2e-5, atol=2e-6)


def test_explicit_sharding_helper_sees_only_explicit_axes(mesh):
    auto = jax.make_mesh((1,), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
    assert jc.explicit_sharding(jnp.ones(3)) is None  # no mesh
    assert jc.explicit_sharding(1.5) is None  # a Python scalar a rule may get
    with jax.set_mesh(auto):
        assert jc.explicit_sharding(jax.device_put(jnp.ones(3), NamedSharding(auto, P("data")))) is None
    with jax.set_mesh(mesh):
        sharding = jc.explicit_sharding(jax.device_put(jnp.ones((2, 3)), NamedSharding(mesh, P(None, "model"))))
    assert sharding is not None and sharding.spec == P(None, "model")
    assert jc.out_sharding(lax.dot_general, None) == {}
    assert jc.out_sharding(lax.dot_general, sharding) == {"out_sharding": sharding}


def test_no_sharding_is_passed_without_explicit_axes():
    # without explicit axes the backward program is the one funcgrad always built: no out_sharding anywhere
    def f(x, w):
        return jnp.sum(jnp.tanh(x @ w + w[0]) * jnp.sum(x))

    jaxpr = str(jax.make_jaxpr(funcgrad.grad(f, (0, 1)))(jnp.ones((4, 6)), jnp.ones((6, 6))))
    assert "out_sharding=NamedSharding" not in jaxpr and "sharding=NamedSharding" not in jaxpr
