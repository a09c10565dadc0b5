"""funcgrad.explore: the grouping, the numbers, the sweep's steps, the diagnostics and the page.

The numbers are checked against JAX: every value's cotangent dC/dv is ``jax.grad`` of the loss with
respect to a zero perturbation added at v (the graph evaluated by its equations' own JAX
primitives, v replaced by v + p_v, differentiated by JAX at p = 0), and every value against the same
evaluation's forward values.
"""

from __future__ import annotations

import importlib.util
import json
import math
import pathlib
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import funcgrad
from funcgrad import nn
from funcgrad.core import registry
from funcgrad.core.ir import Literal, Var
from funcgrad.inspect.explorer import diagnostics as diag
from funcgrad.inspect.explorer.recording import SEED
from funcgrad.inspect.grouping import Block, frontier

ROOT = pathlib.Path(__file__).resolve().parents[1]
RNG = np.random.default_rng(11)


def _lecture_mynet():
    spec = importlib.util.spec_from_file_location("lecture_mynet", ROOT / "examples" / "lecture" / "mynet.py")
    import sys

    sys.path.insert(0, str(ROOT / "examples" / "lecture"))
    try:
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(ROOT / "examples" / "lecture"))
    return module


MYNET = _lecture_mynet()
PARAMS = MYNET.init_params(0)
IMAGE = jnp.asarray(RNG.normal(size=(3, 10, 20)), jnp.float32)


@pytest.fixture(scope="module")
def mynet_x():
    return funcgrad.explore(MYNET.loss)(PARAMS, IMAGE, 3)


# ----------------------------------------------------------------- the reference: jax.grad of perturbations


def reference(x) -> tuple[dict, dict]:
    """(value, dC/dvalue) for every floating top-level value of the exploration's graph, by name: the
    graph evaluated with its equations' JAX primitives, each output v replaced by v + p_v, and
    ``jax.grad`` taken with respect to the p's at 0."""
    graph = x.graph
    inputs = [x.recording.backward.env[v] for v in graph.inputs]
    targets = [v for e in graph.eqns for v in e.outputs if v.type.is_float]
    slot = {id(v): k for k, v in enumerate(targets)}
    values = {}

    def run(perts, keep=False):
        env = dict(zip(graph.constvars, graph.consts))
        env.update(zip(graph.inputs, inputs))
        for e in graph.eqns:
            outs = e.impl(*[a.value if isinstance(a, Literal) else env[a] for a in e.inputs])
            for v, out in zip(e.outputs, outs):
                env[v] = out + perts[slot[id(v)]] if id(v) in slot else out
                if keep:
                    values[x.names[id(v)]] = out
        out = graph.outputs[0]
        return out.value if isinstance(out, Literal) else env[out]

    zeros = [jnp.zeros(v.type.shape, v.type.dtype) for v in targets]
    run(zeros, keep=True)
    grads = jax.grad(run)(zeros)
    cts = {x.names[id(v)]: g for v, g in zip(targets, grads)}
    # the arguments' cotangents: jax.grad with respect to the differentiated inputs
    return values, cts


def assert_summary(summary, array, what):
    a = np.asarray(array, np.float64)
    scale = float(np.sqrt(np.mean(a * a))) + 1e-30
    for stat, want in (("mean", a.mean()), ("std", a.std()), ("min", a.min()), ("max", a.max())):
        np.testing.assert_allclose(getattr(summary, stat), want, rtol=1e-4, atol=1e-5 * scale, err_msg=f"{what} {stat}")
    np.testing.assert_allclose(summary.l2, np.linalg.norm(a), rtol=1e-4, err_msg=f"{what} l2")
    assert summary.zeros == pytest.approx(np.mean(a == 0), abs=1e-3), what
    assert summary.nan == int(np.isnan(a).sum()) and summary.inf == int(np.isinf(a).sum()), what
    assert summary.shape == a.shape and sum(summary.hist) == summary.hist_of > 0, what


# ------------------------------------------------------------------------------ grouping


def _labels(items):
    return [i.label if isinstance(i, Block) else i.primitive for i in items]


def test_mynet_opens_at_the_lectures_block_diagram(mynet_x):
    root = mynet_x.grouping.root
    assert [b.label for b in root.items if isinstance(b, Block)] == ["mynet", "log_softmax"]
    visible, opened = frontier(root)
    assert [b.label for b in opened] == ["mynet"]  # the model opens: its layers are the diagram
    assert _labels(visible)[:8] == [
        "reshape",
        "linear",
        "custom_jvp_call",
        "tag",
        "linear",
        "custom_jvp_call",
        "tag",
        "linear",
    ]
    linear = [b for b in visible if isinstance(b, Block) and b.label == "linear"]
    assert [b.detail for b in linear] == [
        "s1 = linear(params[0], z0)",
        "s2 = linear(params[1], z1)",
        "return linear(params[2], z2)",
    ]  # three calls of one jitted function are three blocks, each with the line that called it
    assert all([e.primitive for e in b.eqns()] == ["dot_general", "add"] for b in linear)
    view = mynet_x.views[root.id]
    tags = [n.label for n in view.nodes if n.kind == "tag"]
    assert tags == ["z1", "z2"] and sum(n.kind == "param" for n in view.nodes) == 6
    assert [n.kind for n in view.nodes].count("cost") == 1 and [n.kind for n in view.nodes].count(
        "observed"
    ) == 1  # the label 3 is a Python int: not traced


def _transformer():
    from benchmarks.workloads import make_workloads, transformer_mse

    w = make_workloads()["D"]
    params = {k: jnp.asarray(v) for k, v in w.params.items()}
    return transformer_mse, params, jnp.asarray(w.batch[0][:2, :8])


def test_a_transformer_block_opens_as_at_most_15_boxes():
    fun, params, x = _transformer()
    ex = funcgrad.explore(fun)(params, x)
    (block,) = ex.find("transformer_block")
    assert len(block.items) <= 15
    labels = _labels(block.items)
    assert labels[:5] == ["layer_norm", "q, k, v", "scores", "mask", "probs"] and labels.count("layer_norm") == 2
    # the top view shows the block's lines (it opens: it holds almost every equation), then the loss
    visible, opened = frontier(ex.grouping.root)
    assert opened == [block] and len(visible) <= 15
    boxes = [n for n in ex.views[block.id].nodes if n.kind in ("block", "eqn", "body", "tag")]
    assert len(boxes) <= 15
    (norm,) = [b for b in block.items if isinstance(b, Block) and b.label == "layer_norm"][:1]
    assert _labels(norm.items) == ["mean", "var", "return (x - mean) * lax.r…"]  # opens into its lines


def test_layers_of_funcgrad_nn_equinox_and_flax_are_blocks():
    import equinox as eqx
    import flax.linen as linen
    from flax import nnx

    model = nn.Serial(nn.Linear(8), nn.Relu(), nn.Linear(3))
    params = model.init((5,), key=jax.random.key(0))
    serial = funcgrad.explore(nn.average_loss(model, nn.squared_error))(params, jnp.ones((4, 5)), jnp.zeros((4, 3)))
    assert {"linear0", "linear2"} <= {b.label for b in serial.grouping.blocks()}

    mlp = eqx.nn.MLP(4, 2, 8, 2, key=jax.random.key(0))
    arrays, static = eqx.partition(mlp, eqx.is_array)
    ex = funcgrad.explore(lambda p, x: jnp.sum(eqx.combine(p, static)(x)))(arrays, jnp.ones(4))
    assert [b.label for b in ex.find("Linear")] == ["Linear"] * 3 and ex.find("MLP")

    class Net(linen.Module):
        @linen.compact
        def __call__(self, x):
            return linen.Dense(2)(linen.relu(linen.Dense(8)(x)))

    net = Net()
    variables = net.init(jax.random.key(0), jnp.ones(4))
    ex = funcgrad.explore(lambda v, x: jnp.sum(net.apply(v, x)))(variables, jnp.ones(4))
    assert ex.find("Dense_0") and ex.find("Dense_1")

    class Nnx(nnx.Module):
        def __init__(self, rngs):
            self.l1, self.l2 = nnx.Linear(4, 8, rngs=rngs), nnx.Linear(8, 2, rngs=rngs)

        def __call__(self, x):
            return self.l2(nnx.relu(self.l1(x)))

    graphdef, state = nnx.split(Nnx(nnx.Rngs(0)))
    ex = funcgrad.explore(lambda s, x: jnp.sum(nnx.merge(graphdef, s)(x)))(state, jnp.ones(4))
    assert len(ex.find("Linear")) == 2


def test_named_scopes_nest_and_nested_programs_are_bodies():
    def loss(w, xs):
        with jax.named_scope("encoder"):
            with jax.named_scope("inner"):
                h = jnp.tanh(xs @ w)
            h = h * 2.0

        def step(c, x):
            c = jnp.sin(c * x)
            return c, funcgrad.tag(c, "c")

        _, cs = jax.lax.scan(step, jnp.zeros(3), h)
        y = jax.lax.cond(cs.sum() > 0, lambda a: a * 2, lambda a: -a, cs)
        z = jax.checkpoint(lambda a: jnp.cos(a) ** 2)(y)
        return jnp.sum(z)

    w, xs = jnp.asarray(RNG.normal(size=(3, 3)), jnp.float32), jnp.asarray(RNG.normal(size=(5, 3)), jnp.float32)
    ex = funcgrad.explore(loss)(w, xs)
    (encoder,) = ex.find("encoder")
    assert [b.label for b in encoder.items if isinstance(b, Block)] == ["inner"]
    bodies = {ex.graph.eqns[k].primitive: v for k, v in enumerate(ex.graph.eqns) if id(v) in ex.grouping.bodies}
    assert {"scan", "cond", "checkpoint"} <= set(bodies)
    cond = bodies["cond"]
    assert [b.label for b in ex.grouping.bodies[id(cond)]] == ["branches[0]", "branches[1]"]
    view = ex.views[f"e{ex.index.eqn_ids[id(cond)]}"]
    assert len(view.clusters) == 2 and any(n.label == "neg" for n in view.nodes)  # a branch each
    scan_view = ex.views[f"e{ex.index.eqn_ids[id(bodies['scan'])]}"]
    assert {n.label for n in scan_view.nodes} >= {"sin", "c"}  # the body, with its tag
    # the scan's stacked values have numbers; a body's values (per iteration) do not
    data = ex.data()
    scan_out = data["values"][ex.index.value_ids[id(bodies["scan"].outputs[1])]]
    assert scan_out["s"]["shape"] == [5, 3] and "ct" in scan_out


# ------------------------------------------------------------------------------ the numbers


def _case(name):
    if name == "mynet":
        return MYNET.loss, (PARAMS, IMAGE, 3)
    if name == "fanout":
        return _fanout, _FANOUT_ARGS
    fun, params, x = _transformer()
    return fun, (params, x)


@pytest.mark.parametrize("case", ["mynet", "fanout", "transformer"])
def test_every_value_and_cotangent_matches_jax(case):
    fun, args = _case(case)
    ex = funcgrad.explore(fun)(*args)
    values, cts = reference(ex)
    assert len(cts) > 5
    active = ex.recording.backward.activity.is_active
    for name, ct in cts.items():
        assert_summary(ex.value(name), values[name], f"value {name}")
        if not active(ex.var(name)):  # it depends on no differentiated argument: the sweep skips it
            assert ex.cotangent(name) is None
        elif np.any(np.asarray(ct) != 0):
            assert_summary(ex.cotangent(name), ct, f"dC/d{name}")
    # the arguments' cotangents are the gradient: the graph's first inputs are the leaves of args[0]
    grads = jax.tree_util.tree_leaves(jax.grad(fun)(*args))
    for v, g in zip(ex.graph.inputs, grads):
        assert_summary(ex.recording.ct[id(v)], g, f"dC/d{ex.names[id(v)]}")


def _fanout(w, x):
    s = funcgrad.tag(x @ w, "s")
    z = funcgrad.tag(jnp.tanh(s), "z")
    # z fans out into three uses: dC/dz = sum of the three contributions (the weighted-sum rule)
    return jnp.sum(z * 3.0) + jnp.sum(jnp.sin(z)) + jnp.mean(z @ w.T)


_FANOUT_ARGS = (jnp.asarray(RNG.normal(size=(4, 4)), jnp.float32), jnp.asarray(RNG.normal(size=(6, 4)), jnp.float32))


def test_tagged_cotangents_equal_sensitivities(mynet_x):
    sens = funcgrad.sensitivities(MYNET.loss)(PARAMS, IMAGE, 3)
    for name in ("z1", "z2"):
        assert_summary(mynet_x.cotangent(name), sens[name], name)


def test_fan_out_is_the_sum_of_its_contributions():
    ex = funcgrad.explore(_fanout)(*_FANOUT_ARGS)
    parts = ex.contributions("z")
    assert len(parts) == 3 and SEED not in [s for s, _ in parts]
    total = ex.cotangent("z")
    # the mean is linear: the mean of the sum is the sum of the parts' means
    assert total.mean == pytest.approx(sum(p.mean for _, p in parts), rel=1e-5)
    consumers = sorted(ex.steps[s].eqn.primitive for s, _ in parts)
    assert consumers == ["dot_general", "mul", "sin"]
    # each part comes before the step of z's producer, which sees the complete sum
    (producer_step,) = [s for s in ex.steps if ex.names[id(s.eqn.outputs[0])] == "z"]
    assert all(s < producer_step.index for s, _ in parts)
    data = ex.data()
    z = data["values"][ex.index.value_ids[id(ex.var("z"))]]
    assert len(z["parts"]) == 3 and z["ctStep"] == producer_step.index
    loss_var = ex.graph.outputs[0]
    assert ex.recording.parts[id(loss_var)][0][0] == SEED  # the seed dC/dC = 1


def test_backward_steps_follow_the_sweep_and_show_each_rules_maths(mynet_x):
    active = mynet_x.recording.backward.activity.eqns
    ran = [s.eqn for s in mynet_x.steps]
    assert ran == [e for e in reversed(active) if e in ran]  # the sweep's order: reversed program order
    assert len(ran) == len(mynet_x.steps) > 10
    data = mynet_x.data()
    for step in data["backward"]:
        assert data["eqns"][step["eqn"]]["math"]
    dots = [e for e in data["eqns"] if e["prim"] == "dot_general"]
    assert dots[0]["math"] == registry.lookup("dot_general").math == inspect_doc(registry.lookup("dot_general").vjp)


def inspect_doc(fn):
    import inspect

    return inspect.getdoc(fn).splitlines()[0]


def test_every_registered_rule_documents_its_maths():
    """Each rule's docstring starts with its maths (``RuleRecord.math``): what funcgrad.explore shows."""
    missing = []
    for name, record in registry.records().items():
        if not record.owner.startswith("funcgrad.rules"):
            continue
        math_line = record.math
        if not math_line or (record.kind == "rule" and "ct" not in math_line):
            missing.append(name)
    assert not missing, f"rules without a maths line in their docstring: {missing}"
    assert registry.lookup("sin").math == "ct_x = ct · cos(x)"
    assert registry.lookup("tanh").math == "ct_x = ct · (1 - tanh(x)²)"


# ------------------------------------------------------------------------------ diagnostics


def _mlp(bias1: float, scale: float = 1.0, act=jax.nn.relu):
    w1 = jnp.asarray(RNG.normal(size=(16, 8)) / np.sqrt(8), jnp.float32)
    w2 = jnp.asarray(RNG.normal(size=(4, 16)) / 4, jnp.float32)
    params = {"w1": w1, "b1": jnp.full((16,), bias1, jnp.float32), "w2": w2}

    def loss(p, x):
        h = act(scale * (x @ p["w1"].T) + p["b1"])
        return jnp.mean((h @ p["w2"].T) ** 2)

    return loss, params, jnp.asarray(RNG.normal(size=(32, 8)), jnp.float32)


def test_a_dead_relu_layer_is_flagged_and_a_healthy_one_is_not():
    loss, params, x = _mlp(bias1=-100.0)
    dead = funcgrad.explore(loss)(params, x)
    (found,) = [d for d in dead.diagnostics if d.kind == "dead units"]
    assert found.amount == 1.0 and "16 of 16" in found.message and found.eqn.params.get("name") == "relu"
    # what "dead" means: no gradient reaches the layer's weights (jax.grad agrees)
    assert float(jnp.abs(jax.grad(loss)(params, x)["w1"]).max()) == 0.0
    loss, params, x = _mlp(bias1=0.0)
    healthy = funcgrad.explore(loss)(params, x)
    assert not [d for d in healthy.diagnostics if d.kind == "dead units"]
    # the units counted dead are those whose weights get no gradient
    g = np.asarray(jax.grad(loss)(params, x)["w1"])
    n_dead, units, examples = diag.dead_units(healthy.recording.backward.env[found_relu_out(healthy)])
    assert (units, examples) == (16, 32) and n_dead == int(np.sum(np.all(g == 0, axis=1)))


def found_relu_out(ex):
    (eqn,) = [e for e in ex.graph.eqns if diag.activation(e) == "relu"]
    return eqn.outputs[0]


def test_saturated_tanh_is_flagged():
    loss, params, x = _mlp(bias1=0.0, scale=100.0, act=jnp.tanh)
    ex = funcgrad.explore(loss)(params, x)
    (found,) = [d for d in ex.diagnostics if d.kind == "saturated"]
    h = ex.recording.backward.env[found.var]
    assert found.amount == pytest.approx(float(np.mean(np.abs(np.asarray(h)) > 0.99)))
    loss, params, x = _mlp(bias1=0.0, scale=0.5, act=jax.nn.sigmoid)
    assert not [d for d in funcgrad.explore(loss)(params, x).diagnostics if d.kind == "saturated"]


def _deep(scale: float, depth: int = 8):
    ws = [jnp.asarray(scale * RNG.normal(size=(16, 16)), jnp.float32) for _ in range(depth)]

    def loss(ws, x):
        h = x
        for i, w in enumerate(ws):
            with jax.named_scope(f"layer{i}"):
                h = jnp.tanh(h @ w)
        return jnp.sum(h**2)

    return loss, ws, jnp.asarray(RNG.normal(size=(4, 16)), jnp.float32)


def test_vanishing_gradients_across_depth_are_flagged_where_they_happen():
    loss, ws, x = _deep(0.05)
    ex = funcgrad.explore(loss)(ws, x)
    # the loop's line holds the 8 layers (one named scope each); the top view opens it
    layers = [b for b in frontier(ex.grouping.root)[0] if isinstance(b, Block)]
    assert [b.label for b in layers] == [f"layer{i}" for i in range(8)]
    norms = [ex.norm(b) for b in layers]
    # the norm is |dC/d(the layer's output)|: jax.grad of a zero perturbation at that output
    _, cts = reference(ex)
    for b, n in zip(layers, norms):
        (out,) = list(b.eqns())[-1].outputs
        assert n == pytest.approx(float(np.linalg.norm(cts[ex.names[id(out)]])), rel=1e-4)
    flagged = [d for d in ex.diagnostics if d.kind == "vanishing gradient"]
    assert flagged and {d.block.label for d in flagged} <= {f"layer{i}" for i in range(7)}
    assert flagged[0].block is layers[0] and all(d.amount < diag.DEPTH_RATIO for d in flagged)
    loss, ws, x = _deep(1.0 / 4.0)  # weights of norm about 1: the gradient keeps its size
    assert not [d for d in funcgrad.explore(loss)(ws, x).diagnostics if "gradient" in d.kind]


def _rnn(scale: float, steps: int = 30):
    rng = np.random.default_rng(5)  # its own: the same numbers whichever tests ran before
    w = jnp.asarray(scale * rng.normal(size=(4, 4)), jnp.float32)
    xs = jnp.asarray(rng.normal(size=(steps, 4)), jnp.float32)

    def rnn(w, xs, perturbation=None):
        # with ``perturbation`` (steps, 4): h_t + p_t, whose jax.grad at p = 0 is dC/dh_t
        ps = jnp.zeros_like(xs) if perturbation is None else perturbation

        def step(h, x_p):
            x, p = x_p
            h = funcgrad.tag(jnp.tanh(w @ h + x), "h") + p
            return h, h

        h, _ = jax.lax.scan(step, jnp.zeros(4), (xs, ps))
        return jnp.sum(h**2)

    return rnn, w, xs


def test_a_tag_in_a_loop_body_has_one_cotangent_per_iteration():
    rnn, w, xs = _rnn(0.05)
    ex = funcgrad.explore(rnn)(w, xs)
    inner = ex.inner_cotangent("h")
    want = np.asarray(jax.grad(rnn, argnums=2)(w, xs, jnp.zeros_like(xs)), np.float64)  # dC/dh_t, every t
    assert inner.summary.shape == want.shape == (30, 4)
    np.testing.assert_allclose(inner.per_iteration, np.linalg.norm(want, axis=1), rtol=1e-4, atol=1e-30)
    for stat in ("mean", "std", "min", "max", "l2"):
        np.testing.assert_allclose(getattr(inner.summary, stat), getattr(ex.cotangent("h"), stat), rtol=0)
    np.testing.assert_allclose(inner.summary.l2, np.linalg.norm(want), rtol=1e-4)
    np.testing.assert_allclose(inner.summary.mean, want.mean(), rtol=1e-4, atol=1e-9)
    # small recurrent weights: dC/dh_t shrinks geometrically going back in time, and is flagged at the scan
    (flagged,) = [d for d in ex.diagnostics if d.kind == "vanishing gradient"]
    assert flagged.eqn.primitive == "scan" and flagged.var is inner.var and flagged.amount < diag.DEPTH_RATIO
    # the page carries the same numbers, complete once the scan's rule has run
    entry = ex.data()["values"][ex.index.value_ids[id(inner.var)]]
    assert entry["ctIter"] == pytest.approx(list(inner.per_iteration))
    assert ex.steps[entry["ctStep"]].eqn is inner.holder
    # recurrent weights of norm about 1 over a short sequence: nothing vanishes
    rnn, w, xs = _rnn(0.5, steps=6)
    assert not [d for d in funcgrad.explore(rnn)(w, xs).diagnostics if "gradient" in d.kind]


def test_tags_in_branches_and_checkpoints_have_their_cotangents():
    def loss(w, x):
        y = jax.lax.cond(jnp.sum(x) > 0, lambda a: funcgrad.tag(jnp.sin(a * w), "taken"), lambda a: a, x)
        z = jax.checkpoint(lambda a: funcgrad.tag(jnp.cos(a), "inside") ** 2)(y)
        return jnp.sum(z)

    w, x = jnp.float32(0.7), jnp.abs(jnp.asarray(RNG.normal(size=(5,)), jnp.float32))
    ex = funcgrad.explore(loss)(w, x)
    sens = funcgrad.sensitivities(loss)(w, x)
    for label in ("taken", "inside"):
        inner = ex.inner_cotangent(label)
        assert inner.per_iteration is None  # one value, not one per iteration
        np.testing.assert_allclose(inner.summary.l2, np.linalg.norm(sens[label]), rtol=1e-5)
    with pytest.raises(KeyError, match="those reached are"):
        ex.inner_cotangent("nowhere")


def test_a_tag_in_a_while_loop_says_why_it_has_no_numbers():
    def loss(w, x):
        def body(c):  # only the data flows through the loop: w is differentiated after it
            return c[0] + 1, funcgrad.tag(jnp.tanh(c[1]), "wh")

        return jnp.sum(jax.lax.while_loop(lambda c: c[0] < 3, body, (0, x))[1] @ w)

    w, x = jnp.eye(3, dtype=jnp.float32) * 0.5, jnp.ones((2, 3), jnp.float32)
    ex = funcgrad.explore(loss)(w, x)
    assert ex.inner == {}
    (why,) = ex.unreached.values()
    assert "while_loop" in why and "'wh'" in why
    (entry,) = [v for v in ex.data()["values"] if v.get("why")]
    assert entry["why"] == why and "ct" not in entry
    with pytest.raises(KeyError):
        ex.inner_cotangent("wh")


def test_the_first_nan_forward_and_backward_is_found_at_its_equation():
    def forward_nan(w, x):
        s = x @ w
        return jnp.sum(jnp.exp(jnp.log(s - 10.0)))  # log of a negative number: NaN

    w, x = jnp.ones((3, 2)), jnp.ones((4, 3))
    found = [d for d in funcgrad.explore(forward_nan)(w, x).diagnostics if d.kind == "non-finite"]
    assert "forward" in found[0].message and found[0].eqn.primitive == "log" and found[0].amount == 8
    assert all("forward" not in d.message for d in found[1:])  # the backward pass only carries it on

    def backward_nan(w, x):
        s = x @ w - 3.5
        # the forward pass is finite (where picks 0 for s < 0); sqrt's rule at negative s is not
        return jnp.sum(jnp.where(s > 0, jnp.sqrt(s), 0.0))

    x = jnp.asarray(RNG.normal(size=(4, 3)), jnp.float32)
    ex = funcgrad.explore(backward_nan)(w, x)
    forward, backward = [d for d in ex.diagnostics if d.kind == "non-finite"]
    # sqrt makes NaN where s < 0, which where hides from the loss but not from sqrt's rule: 0 · NaN
    assert forward.eqn is backward.eqn and forward.eqn.primitive == "sqrt" and "backward" in backward.message
    assert np.isfinite(float(ex.loss))
    assert bool(jnp.isnan(jax.grad(backward_nan)(w, x)).any())  # JAX's gradient is NaN too


def test_bytes_kept_per_block_add_up_to_saved_residuals(mynet_x):
    residuals = funcgrad.saved_residuals(MYNET.loss)(PARAMS, IMAGE, 3)
    root = mynet_x.grouping.root
    assert mynet_x.kept_bytes(root) == residuals.intermediate_bytes > 0
    per_item = sum(mynet_x.kept_bytes(i) for i in root.items)
    assert per_item == residuals.intermediate_bytes
    for block in root.blocks():
        made = {mynet_x.names[id(v)] for e in block.eqns() for v in e.outputs}
        assert mynet_x.kept_bytes(block) == sum(
            r.nbytes for r in residuals if r.kind == "intermediate" and r.name in made
        )


# ------------------------------------------------------------------------------ the page


def test_the_page_is_one_self_contained_file(mynet_x, tmp_path):
    path = mynet_x.save(tmp_path / "mynet.html")
    page = path.read_text()
    assert page.startswith("<!DOCTYPE html>") and "<script>" in page and "<style>" in page
    # nothing is fetched: no external scripts, styles, images or fonts
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert not re.search(r"@import|url\(\s*['\"]?https?:", page)
    assert set(re.findall(r"https?://[^\s\"'<>]+", page)) <= {"http://www.w3.org/2000/svg"}
    data = json.loads(re.search(r'<script type="application/json" class="fg-data">(.*?)</script>', page, re.S).group(1))
    assert data["root"] == "b0" and set(data["views"]) >= {"b0"} and data["engine"] in ("dot", "python")
    for view in data["views"].values():
        assert set(view["layout"]["nodes"]) == {n["id"] for n in view["nodes"]}
        assert len(view["layout"]["edges"]) == len(view["edges"])
    html = mynet_x._repr_html_()
    assert html.startswith("<iframe srcdoc=") and "&lt;!DOCTYPE html&gt;" in html
    with pytest.raises(ValueError, match="saved as .html"):
        mynet_x.save(tmp_path / "mynet.svg")


@pytest.mark.parametrize("engine", ["python", "dot"])
def test_both_layout_engines_place_every_box(engine):
    if engine == "dot" and funcgrad.inspect.drawing.dot.dot_program() is None:
        pytest.fail("Graphviz's dot is not installed: apt-get install graphviz (.ci/run installs it)")
    fun, params, x = _transformer()
    ex = funcgrad.explore(fun, layout=engine)(params, x)
    assert ex.engine == engine
    for view in ex.views.values():
        lay = view.layout
        assert set(lay["nodes"]) == {n.id for n in view.nodes}
        for cx, cy, w, h in lay["nodes"].values():
            assert w / 2 <= cx <= lay["w"] - w / 2 + 1 and h / 2 <= cy <= lay["h"] - h / 2 + 1
        for block_id, (bx, by, bw, bh) in lay["clusters"].items():  # a cluster holds its boxes
            members = [n for n in view.nodes if n.cluster == block_id]
            assert members and all(
                bx <= lay["nodes"][n.id][0] <= bx + bw and by <= lay["nodes"][n.id][1] <= by + bh for n in members
            )


def test_explore_needs_concrete_values_and_works_on_python_control_flow():
    def branchy(w, x):
        y = x @ w
        if y.sum() > 0:  # Python control flow on a value: recorded concretely, as jax.grad does
            y = jnp.tanh(y)
        return jnp.sum(y**2)

    w, x = jnp.ones((3, 2)), jnp.ones((4, 3))
    ex = funcgrad.explore(branchy)(w, x)
    assert "tanh" in [e.primitive for e in ex.graph.eqns]
    assert_summary(ex.recording.ct[id(ex.graph.inputs[0])], jax.grad(branchy)(w, x), "dC/dw")
    with pytest.raises(funcgrad.InputError, match="concrete arrays"):
        jax.jit(lambda w: funcgrad.explore(branchy)(w, x).loss)(w)


def test_traces_keep_no_call_stacks_unless_asked():
    graph = funcgrad.trace(MYNET.loss)(PARAMS, IMAGE, 3)
    assert all(e.source.info is None and e.source.caller is None for e in graph.eqns)


def test_explore_cost_is_small_next_to_a_gradient_step(mynet_x):
    # not a timing test (benchmarks/explorer.py measures that): the page stays small
    assert len(mynet_x.to_html()) < 1_000_000
    assert math.isfinite(mynet_x.norm(mynet_x.grouping.root))
    assert isinstance(mynet_x.graph.outputs[0], Var)
