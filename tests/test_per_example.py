"""Per-example gradient norms and clipping, against ``vmap(grad)`` over single-example batches.

The reference forms every per-example gradient with JAX (``jax.vmap`` of ``jax.grad`` of the loss on
a batch holding one example) and takes norms; funcgrad's versions form none where a layer allows
(``funcgrad.api.per_example``). Tolerances are float32's: the ghost norms sum in another order.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import funcgrad
from benchmarks.workloads import make_workloads
from funcgrad.api import per_example

WORKLOADS = make_workloads()
# (workload, examples used): mynet, the MLP, the CNN, the transformer block (sequence: the Gram form)
CASES = [("A128", 8), ("B", 8), ("C", 4), ("D", 2)]


def _batch(name, n):
    w = WORKLOADS[name]
    return w.loss, jax.tree.map(jnp.asarray, w.params), tuple(jnp.asarray(b[:n]) for b in w.batch)


def _vmapped_grads(loss, params, batch):
    return jax.vmap(lambda *ex: jax.grad(loss)(params, *[e[None] for e in ex]))(*batch)


def _norms(per, n):
    leaf = jax.tree.map(lambda g: jnp.sqrt(jnp.sum(jnp.reshape(g, (n, -1)) ** 2, axis=1)), per)
    return jnp.sqrt(sum(x**2 for x in jax.tree.leaves(leaf))), leaf


@pytest.mark.parametrize("name, n", CASES)
def test_norms_equal_those_of_vmapped_gradients(name, n):
    loss, params, batch = _batch(name, n)
    ours = jax.jit(funcgrad.per_example_grad_norms(loss))(params, *batch)
    total, leaf = _norms(_vmapped_grads(loss, params, batch), n)
    np.testing.assert_allclose(ours.total, total, rtol=2e-4)
    assert jax.tree.structure(ours.per_leaf) == jax.tree.structure(params)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-3, atol=1e-6), ours.per_leaf, leaf)


@pytest.mark.parametrize("name, n", CASES)
def test_clipped_grad_equals_the_sum_of_clipped_vmapped_gradients(name, n):
    loss, params, batch = _batch(name, n)
    per = _vmapped_grads(loss, params, batch)
    total, _ = _norms(per, n)
    max_norm = float(jnp.median(total))  # half the examples are clipped
    ours, norms = jax.jit(funcgrad.clipped_grad(loss, max_norm, return_norms=True))(params, *batch)
    scale = jnp.minimum(1.0, max_norm / total)
    expected = jax.tree.map(lambda g: jnp.tensordot(scale, g, 1), per)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-3, atol=1e-5), ours, expected)
    np.testing.assert_allclose(norms.total, total, rtol=2e-4)


def test_dense_weights_take_the_ghost_path_and_the_rest_the_rule_path():
    # the mechanism, not only the numbers: the dense weights' norms never form their per-example gradient
    loss, params, batch = _batch("D", 2)
    b = per_example._Batch(loss, (params, *batch), 0, 0)
    plan = per_example._plan_of(b.traced(), len(b.param_leaves))
    paths = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(params)[0]]
    ghost = {p for p, k in zip(paths, plan.leaves) if isinstance(k, per_example._Ghost)}
    assert ghost == {f"['{n}']" for n in ("W1", "W2", "Wq", "Wk", "Wv", "Wo")}
    loss, params, batch = _batch("C", 2)
    b = per_example._Batch(loss, (params, *batch), 0, 0)
    plan = per_example._plan_of(b.traced(), len(b.param_leaves))
    kinds = {
        jax.tree_util.keystr(p): type(k).__name__
        for (p, _), k in zip(jax.tree_util.tree_flatten_with_path(params)[0], plan.leaves)
    }
    assert kinds["['conv1']"] == kinds["['conv2']"] == kinds["['W']"] == "_Ghost"  # W through a transpose
    assert kinds["['cb1']"] == "_Direct"


@pytest.mark.parametrize(
    "layout, strides, padding, lhs_dilation, rhs_dilation",
    [
        (("NCHW", "OIHW", "NCHW"), (1, 1), "SAME", (1, 1), (1, 1)),
        (("NHWC", "HWIO", "NHWC"), (2, 1), ((1, 2), (0, 1)), (1, 1), (2, 1)),
        (("NHWC", "OHWI", "NCHW"), (1, 2), ((0, 0), (1, 1)), (2, 1), (1, 1)),
    ],
)
def test_convolution_kernels_in_any_layout(layout, strides, padding, lhs_dilation, rhs_dilation):
    lhs, rhs, _ = layout
    k_shape = {"OIHW": (4, 3, 2, 3), "HWIO": (2, 3, 3, 4), "OHWI": (4, 2, 3, 3)}[rhs]
    x_shape = {"NCHW": (5, 3, 7, 6), "NHWC": (5, 7, 6, 3)}[lhs]
    k1, k2 = jax.random.split(jax.random.key(4))
    params = {"k": jax.random.normal(k1, k_shape) * 0.3}
    x = jax.random.normal(k2, x_shape)

    def loss(p, x):
        y = jax.lax.conv_general_dilated(
            x, p["k"], strides, padding, lhs_dilation, rhs_dilation, dimension_numbers=layout
        )
        return jnp.mean(jnp.tanh(y) ** 2)

    per = _vmapped_grads(loss, params, (x,))
    total, _ = _norms(per, 5)
    ours = jax.jit(funcgrad.per_example_grad_norms(loss))(params, x)
    np.testing.assert_allclose(ours.total, total, rtol=2e-4)
    clipped = funcgrad.clipped_grad(loss, float(jnp.median(total)))(params, x)
    scale = jnp.minimum(1.0, jnp.median(total) / total)
    np.testing.assert_allclose(clipped["k"], jnp.tensordot(scale, per["k"], 1), rtol=2e-3, atol=1e-6)


def test_a_weight_used_twice_and_one_seen_through_a_transpose():
    # tied weights: the per-example gradient is the sum over both uses (not a ghost norm of either)
    def loss(p, x, y):
        h = jnp.tanh(x @ p["w"])
        return jnp.mean((h @ p["w"].T @ p["v"] - y) ** 2)

    k1, k2, k3, k4 = jax.random.split(jax.random.key(0), 4)
    params = {"w": jax.random.normal(k1, (5, 5)), "v": jax.random.normal(k2, (5, 3))}
    x, y = jax.random.normal(k3, (6, 5)), jax.random.normal(k4, (6, 3))
    ours = funcgrad.per_example_grad_norms(loss)(params, x, y)
    total, leaf = _norms(_vmapped_grads(loss, params, (x, y)), 6)
    np.testing.assert_allclose(ours.total, total, rtol=2e-4)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-4), ours.per_leaf, leaf)


def test_argnums_tuple_batch_axis_per_argument_and_a_recurrent_scan():
    # an RNN over a time axis (batch on axis 1 of xs), a weight used in every step of a scan
    def loss(w_in, w_h, xs, h0):
        def step(h, x):
            h = jnp.tanh(x @ w_in + h @ w_h)
            return h, jnp.sum(h**2)

        _, out = jax.lax.scan(step, jnp.broadcast_to(h0, (xs.shape[1], h0.shape[0])), xs)
        return jnp.mean(out)

    k1, k2, k3 = jax.random.split(jax.random.key(1), 3)
    w_in, w_h = jax.random.normal(k1, (3, 4)) * 0.5, jax.random.normal(k2, (4, 4)) * 0.5
    xs, h0 = jax.random.normal(k3, (7, 5, 3)), jnp.zeros(4)
    ours = funcgrad.per_example_grad_norms(loss, argnums=(0, 1), batch_axis=(None, None, 1, None))(w_in, w_h, xs, h0)
    per = jax.vmap(lambda x: jax.grad(loss, (0, 1))(w_in, w_h, x[:, None], h0), in_axes=1)(xs)
    total, leaf = _norms(per, 5)
    np.testing.assert_allclose(ours.total, total, rtol=2e-4)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-4), ours.per_leaf, leaf)


def test_clipped_grad_drives_optax_dp_sgd():
    # DP-SGD's step: clip per example, sum, add Gaussian noise, average, and let optax apply it
    loss, params, batch = _batch("A128", 16)
    opt = optax.sgd(0.1)
    state = opt.init(params)
    clipped = funcgrad.clipped_grad(loss, 1.0)(params, *batch)
    noise = jax.tree.map(lambda g, k: 1.1 * 1.0 * jax.random.normal(k, g.shape), clipped, _keys(clipped))
    noisy = jax.tree.map(lambda g, z: (g + z) / 16, clipped, noise)
    updates, state = opt.update(noisy, state, params)
    new = optax.apply_updates(params, updates)
    assert jax.tree.structure(new) == jax.tree.structure(params)
    # each clipped gradient has norm <= 1, so their sum has norm <= the batch size
    assert float(optax.tree.norm(clipped)) <= 16 + 1e-4


def _keys(tree):
    leaves, treedef = jax.tree.flatten(tree)
    return jax.tree.unflatten(treedef, list(jax.random.split(jax.random.key(2), len(leaves))))


def test_bad_inputs_say_how_to_fix_them():
    def loss(p, x):
        return jnp.mean(x @ p)

    with pytest.raises(funcgrad.InputError, match="batch size"):
        funcgrad.per_example_grad_norms(lambda p, x, y: loss(p, x) + jnp.mean(y))(
            jnp.ones(3), jnp.ones((4, 3)), jnp.ones(5)
        )
    with pytest.raises(funcgrad.InputError, match="one real scalar"):
        funcgrad.per_example_grad_norms(lambda p, x: x @ p)(jnp.ones(3), jnp.ones((4, 3)))


def test_the_dp_sgd_example_trains():
    import pathlib
    import re
    import subprocess
    import sys

    script = pathlib.Path(__file__).resolve().parents[1] / "examples" / "dp_sgd_mynet.py"
    run = subprocess.run([sys.executable, str(script), "--epochs", "5"], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    accuracy = float(re.search(r"test accuracy ([0-9.]+)$", run.stdout.strip()).group(1))
    assert accuracy >= 0.7, run.stdout  # 0.822 after 5 epochs when written; chance is 0.1
