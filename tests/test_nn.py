"""funcgrad.nn: every layer's gradient equals jax.grad's; models, losses and pytrees behave as documented."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax import lax
from jax.flatten_util import ravel_pytree

import funcgrad
from funcgrad import nn
from tests.conftest import x64

KEY = jax.random.key(0)

# (id, layer factory, shape of one example)
LAYERS = [
    ("linear", lambda: nn.Linear(5), (7,)),
    ("linear-seq-nobias", lambda: nn.Linear(3, bias=False), (4, 6)),
    ("mlp-tanh", lambda: nn.MLP((8, 6, 3), activation=nn.Tanh), (5,)),
    ("mynet-3x10x20", lambda: nn.mynet(), (3, 10, 20)),
    ("conv-valid", lambda: nn.Conv2d(4, 3), (2, 7, 6)),
    ("conv-same-stride", lambda: nn.Conv2d(3, (3, 2), stride=(2, 1), padding="SAME"), (2, 9, 7)),
    ("maxpool", lambda: nn.MaxPool2d(2), (3, 6, 6)),
    ("maxpool-overlap-same", lambda: nn.MaxPool2d(3, stride=2, padding="SAME"), (2, 7, 5)),
    ("avgpool", lambda: nn.AvgPool2d((2, 3), stride=1, padding=1), (2, 5, 6)),
    ("layernorm", lambda: nn.LayerNorm(), (4, 6)),
    ("attention", lambda: nn.MultiHeadAttention(2), (5, 8)),
    ("attention-causal", lambda: nn.MultiHeadAttention(3, head_dim=2, causal=True), (4, 6)),
    ("linear-model", lambda: nn.LinearModel(), (6,)),
    (
        "cnn",
        lambda: nn.Serial(
            nn.Conv2d(3, 3, padding=1), nn.Relu(), nn.MaxPool2d(2), nn.Flatten(), nn.LayerNorm(), nn.Linear(4)
        ),
        (1, 8, 8),
    ),
]


def _init(layer, shape, dtype=jnp.float32, seed=0):
    """Random parameters with the structure ``layer.init`` returns (read by jax.eval_shape, no FLOPs).

    Compiling JAX's PRNG for every layer would dominate the test time; gradient checks need
    parameters of the right structure, not of a particular distribution.
    """
    structure = jax.eval_shape(lambda key: layer.init(shape, key=key), KEY)
    rng = np.random.default_rng(seed)
    return jax.tree_util.tree_map(lambda s: (0.5 * rng.normal(size=s.shape)).astype(dtype), structure)


def _inputs(shape, dtype=np.float32, seed=1):
    rng = np.random.default_rng(seed)
    return rng.normal(size=shape).astype(dtype)


def _scalarise(apply, out_shape, dtype=np.float32):
    """A scalar function of (w, x) whose cotangent on the layer output is random (not all ones)."""
    ct = np.random.default_rng(2).normal(size=out_shape).astype(dtype)

    def f(w, x):
        return jnp.sum(ct * jnp.tanh(apply(w, x)))

    return f


def _grads(f, *args, argnums=0):
    """(funcgrad.grad, jax.grad) of f at args, computed in one jitted call (one compilation)."""
    both = jax.jit(lambda *a: (funcgrad.grad(f, argnums)(*a), jax.grad(f, argnums)(*a)))
    return both(*args)


def _assert_trees_close(a, b, rtol, atol):
    assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        assert jnp.result_type(x) == jnp.result_type(y)
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol)


@pytest.mark.parametrize("make,shape", [pytest.param(m, s, id=i) for i, m, s in LAYERS])
def test_layer_grad_matches_jax_float32(make, shape):
    layer = make()
    params, x = _init(layer, shape), _inputs(shape)
    f = _scalarise(layer.apply, nn.out_shape(layer, params, shape))
    ours, theirs = _grads(f, params, x, argnums=(0, 1))
    _assert_trees_close(ours, theirs, rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize(
    "make,shape",
    [pytest.param(m, s, id=i) for i, m, s in LAYERS if i in ("conv-same-stride", "attention-causal")],
)
def test_layer_grad_matches_jax_float64(make, shape):
    with x64():
        layer = make()
        params, x = _init(layer, shape, jnp.float64), _inputs(shape, np.float64)
        f = _scalarise(layer.apply, nn.out_shape(layer, params, shape, jnp.float64), np.float64)
        ours, theirs = _grads(f, params, x, argnums=(0, 1))
        _assert_trees_close(ours, theirs, rtol=1e-10, atol=1e-12)


def test_layer_grad_through_vmap_batch():
    model = nn.mynet()
    params = _init(model, (1, 8, 8))
    xs = _inputs((6, 1, 8, 8), seed=2)

    def f(w, xs):
        return jnp.sum(nn.batched(model.apply)(w, xs) ** 2)

    _assert_trees_close(*_grads(f, params, xs), rtol=2e-5, atol=2e-6)


def test_mynet_takes_d0_from_the_input_shape():
    params = _init(nn.mynet(60, 40, 10), (3, 10, 20))
    shapes = jax.tree_util.tree_map(jnp.shape, params)
    assert shapes == {
        "m0": {"W": (60, 600), "b": (60,)},
        "m1": {"W": (40, 60), "b": (40,)},
        "m2": {"W": (10, 40), "b": (10,)},
    }
    image = _inputs((3, 10, 20), seed=3)
    out = nn.mynet().apply(params, image)
    assert out.shape == (10,)
    # the same computation written out by hand: flatten, W z + b, relu, ...
    z = image.reshape(-1)
    for name in ("m0", "m1"):
        z = jax.nn.relu(params[name]["W"] @ z + params[name]["b"])
    np.testing.assert_allclose(out, params["m2"]["W"] @ z + params["m2"]["b"], rtol=1e-5, atol=1e-6)
    # an example array works as well as its shape
    assert jax.tree_util.tree_map(jnp.shape, jax.eval_shape(lambda k: nn.mynet().init(image, key=k), KEY)) == shapes


@pytest.mark.parametrize("kernel,stride,padding", [(3, 1, "VALID"), ((3, 2), (2, 1), "SAME"), (2, 2, ((1, 0), (2, 1)))])
def test_conv_forward_equals_lax_conv(kernel, stride, padding):
    x = _inputs((3, 9, 8), seed=4)
    conv = nn.Conv2d(5, kernel, stride=stride, padding=padding)
    w = _init(conv, x.shape)
    s = (stride, stride) if isinstance(stride, int) else stride
    ref = lax.conv_general_dilated(x[None], w["W"], s, padding)[0] + w["b"][:, None, None]
    np.testing.assert_allclose(conv.apply(w, x), ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("window,stride,padding", [(2, None, "VALID"), (3, 2, "SAME"), ((2, 3), 1, "VALID")])
def test_pool_forward_equals_lax_reduce_window(window, stride, padding):
    x = _inputs((2, 7, 6), seed=5)
    win = (window, window) if isinstance(window, int) else window
    st = win if stride is None else (stride, stride)
    ref_max = lax.reduce_window(x, -jnp.inf, lax.max, (1, *win), (1, *st), padding)
    np.testing.assert_allclose(nn.MaxPool2d(window, stride, padding).apply({}, x), ref_max)
    if padding == "VALID":
        ref_sum = lax.reduce_window(x, 0.0, lax.add, (1, *win), (1, *st), padding)
        np.testing.assert_allclose(
            nn.AvgPool2d(window, stride, padding).apply({}, x), ref_sum / math.prod(win), rtol=1e-6
        )


def test_maxpool_ties_match_jax():
    # a constant image: every window is a 4-way tie; reduce_window_max (as jax.grad) sends each
    # window's whole cotangent to one tied entry, the first in the window
    x = jnp.ones((1, 4, 4))
    f = lambda x: jnp.sum(nn.MaxPool2d(2).apply({}, x) * jnp.arange(4.0).reshape(1, 2, 2))
    ours, theirs = _grads(f, x)
    np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_allclose(ours[0, :2, :2], [[0.0, 0.0], [0.0, 0.0]])
    np.testing.assert_allclose(ours[0, 2:, 2:], [[3.0, 0.0], [0.0, 0.0]])


def test_attention_causal_mask_blocks_the_future():
    layer = nn.MultiHeadAttention(2, causal=True)
    params, x = _init(layer, (4, 6)), _inputs((4, 6), seed=6)
    jacobians = jax.jit(lambda w, x: (funcgrad.jacrev(layer.apply, 1)(w, x), jax.jacrev(layer.apply, 1)(w, x)))
    jac, jac_jax = jacobians(params, x)  # (T, d, T, d)
    np.testing.assert_allclose(jac, jac_jax, rtol=1e-4, atol=1e-6)
    per_position = np.abs(np.asarray(jac)).sum(axis=(1, 3))  # [t, s]: does out[t] depend on x[s]?
    assert np.all(per_position[np.triu_indices(4, k=1)] == 0)
    assert np.all(per_position[np.tril_indices(4)] > 0)


def test_layernorm_output_is_normalised():
    layer = nn.LayerNorm()
    x = 3.0 + 2.0 * _inputs((5, 16), seed=7)
    y = layer.apply(layer.init(x.shape), x)
    np.testing.assert_allclose(jnp.mean(y, -1), 0.0, atol=1e-5)
    np.testing.assert_allclose(jnp.std(y, -1), 1.0, atol=1e-3)


# ------------------------------------------------------------- the lecture's models


def test_linear_model_with_squared_error_gradient():
    model = nn.LinearModel()
    w, x, y = _init(model, (5,)), _inputs((5,), seed=8), np.float32(1.5)
    loss = nn.per_sample_loss(model, nn.squared_error)
    g, g_jax = _grads(loss, w, x, y)
    # d/dw ‖y − Σ w_i x_i‖² = −2 (y − ȳ) x
    np.testing.assert_allclose(g["w"], -2 * (y - np.dot(w["w"], x)) * x, rtol=1e-5)
    _assert_trees_close(g, g_jax, rtol=1e-6, atol=1e-7)


def test_nearest_neighbour_index_has_zero_gradient_and_distance_only_moves_the_chosen_row():
    model = nn.NearestNeighbour(4)
    w = _init(model, (3,))
    x = w["W"][2] + 0.1 * _inputs((3,), seed=9)  # closest to row 2
    out = model.apply(w, x)
    assert int(out.index) == int(jnp.argmin(jnp.sum((x - w["W"]) ** 2, -1))) == 2
    np.testing.assert_allclose(out.distance, jnp.sum((x - w["W"][2]) ** 2), rtol=1e-6)

    # the index is piecewise constant: its gradient is zero (funcgrad and jax agree)
    index_as_float = lambda w, x: model.apply(w, x).index.astype(jnp.float32)
    for g in _grads(index_as_float, w, x):
        np.testing.assert_array_equal(g["W"], 0.0)

    # the distance's gradient is 2 (w_k − x) on the chosen row k and zero on every other row
    distance = lambda w, x: model.apply(w, x).distance
    (g, g_x), (g_jax, g_x_jax) = _grads(distance, w, x, argnums=(0, 1))
    g = g["W"]
    np.testing.assert_allclose(g[2], 2 * (w["W"][2] - x), rtol=1e-5)
    np.testing.assert_array_equal(np.delete(np.asarray(g), 2, axis=0), 0.0)
    np.testing.assert_allclose(g, g_jax["W"], rtol=1e-6)
    # and with respect to x: 2 (x − w_k)
    np.testing.assert_allclose(g_x, 2 * (x - w["W"][2]), rtol=1e-5)
    np.testing.assert_allclose(g_x, g_x_jax, rtol=1e-6)


def test_nearest_neighbour_tie_gives_the_gradient_to_the_first_row_only():
    w = {"W": jnp.array([[1.0, 0.0], [-1.0, 0.0], [5.0, 5.0]])}
    x = jnp.zeros(2)  # equidistant from rows 0 and 1
    model = nn.NearestNeighbour(3)
    distance = lambda w, x: model.apply(w, x).distance
    assert int(model.apply(w, x).index) == 0
    g, g_jax = (g["W"] for g in _grads(distance, w, x))
    np.testing.assert_array_equal(g, g_jax)
    np.testing.assert_allclose(g, [[2.0, 0.0], [0.0, 0.0], [0.0, 0.0]])


# ------------------------------------------------------------------------- losses


def test_cross_entropy_integer_and_one_hot_labels_agree_with_optax():
    logits = _inputs((10,), seed=10)
    label = jnp.int32(3)
    one_hot = jax.nn.one_hot(label, 10)
    ref = optax.softmax_cross_entropy_with_integer_labels(logits, label)
    np.testing.assert_allclose(nn.softmax_cross_entropy(label, logits), ref, rtol=1e-6)
    np.testing.assert_allclose(nn.softmax_cross_entropy(one_hot, logits), ref, rtol=1e-6)
    for y in (label, one_hot):
        ours, theirs = _grads(lambda z, y: nn.softmax_cross_entropy(y, z), logits, y)
        # d/dz −log softmax(z)[y] = softmax(z) − onehot(y)
        np.testing.assert_allclose(ours, jax.nn.softmax(logits) - one_hot, atol=1e-6)
        np.testing.assert_allclose(ours, theirs, atol=1e-7)
    with pytest.raises(ValueError, match="one-hot"):
        nn.softmax_cross_entropy(jnp.ones(3), logits)


def test_average_loss_is_the_mean_of_per_sample_losses():
    model = nn.MLP((5, 3))
    w = _init(model, (4,))
    xs = _inputs((7, 4), seed=11)
    ys = jnp.arange(7) % 3
    per_sample = nn.per_sample_loss(model, nn.softmax_cross_entropy)
    average = nn.average_loss(model, nn.softmax_cross_entropy)
    by_hand = sum(per_sample(w, xs[p], ys[p]) for p in range(7)) / 7
    np.testing.assert_allclose(average(w, xs, ys), by_hand, rtol=1e-6)
    g_avg, g_avg_jax = _grads(average, w, xs, ys)
    # ∂L(S, w)/∂w = (1/P) Σ_p ∂L(x[p], y[p], w)/∂w: per-sample gradients by funcgrad under jax.vmap, then averaged
    per_sample_grads = jax.jit(jax.vmap(funcgrad.grad(per_sample), in_axes=(None, 0, 0)))(w, xs, ys)
    mean_of_grads = jax.tree_util.tree_map(lambda g: jnp.mean(g, axis=0), per_sample_grads)
    _assert_trees_close(g_avg, mean_of_grads, rtol=1e-5, atol=1e-6)
    _assert_trees_close(g_avg, g_avg_jax, rtol=1e-5, atol=1e-7)
    assert 0.0 <= float(nn.accuracy(model, w, xs, ys)) <= 1.0


# ------------------------------------------------------------------------ pytrees


def test_params_are_readable_pytrees_that_round_trip():
    model = nn.Serial(("conv", nn.Conv2d(2, 3)), nn.Relu(), nn.Flatten(), ("head", nn.Linear(4)))
    params = _init(model, (1, 6, 6))
    assert set(params) == {"conv", "head"} and set(params["conv"]) == {"W", "b"}  # no entry for relu/flatten
    flat, unravel = ravel_pytree(params)
    assert flat.shape == (nn.count_params(params),) == (2 * 9 + 2 + 4 * 32 + 4,)
    _assert_trees_close(unravel(flat), params, rtol=0, atol=0)
    doubled = jax.tree_util.tree_map(lambda p: 2 * p, params)
    np.testing.assert_allclose(ravel_pytree(doubled)[0], 2 * flat)
    grads = jax.jit(funcgrad.grad(lambda w, x: jnp.sum(model.apply(w, x))))(params, np.ones((1, 6, 6), np.float32))
    assert jax.tree_util.tree_structure(grads) == jax.tree_util.tree_structure(params)
    assert "['conv']['W']" in nn.describe(params) and f"{nn.count_params(params)} parameters" in nn.describe(params)


def test_init_is_deterministic_in_the_key():
    keys = jnp.stack([jax.random.key(3), jax.random.key(3), jax.random.key(4)])
    batch = jax.jit(jax.vmap(lambda k: nn.Linear(60).init((64,), key=k)))(keys)  # one compilation
    a, b, c = (jax.tree_util.tree_map(lambda p, i=i: p[i], batch) for i in range(3))
    _assert_trees_close(a, b, rtol=0, atol=0)
    assert not np.allclose(a["W"], c["W"])
    # PyTorch's default scale: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = 64
    for p in (a["W"], a["b"]):
        assert 0.1 < float(jnp.max(jnp.abs(p))) <= 1 / 8


def test_wrong_example_shape_is_a_clear_error():
    with pytest.raises(ValueError, match="ONE example"):
        nn.Conv2d(2, 3).init((4, 1, 8, 8), key=KEY)
    with pytest.raises(ValueError, match="unique"):
        nn.Serial(("a", nn.Relu()), ("a", nn.Tanh()))


def test_a_layer_is_callable_as_the_lecture_writes_it():
    # G(w, x): calling a layer applies it (here the lecture's mynet)
    model = nn.mynet(6, 4, 3)
    w = model.init((6,), key=jax.random.key(0))
    x = jnp.linspace(-1.0, 1.0, 6)
    np.testing.assert_array_equal(model(w, x), model.apply(w, x))
    loss = lambda w: jnp.sum(model(w, x) ** 2)  # noqa: E731
    jax.tree.map(np.testing.assert_allclose, funcgrad.grad(loss)(w), jax.grad(loss)(w))
    init, apply, name = model  # still the (init, apply) pair it always was
    assert apply is model.apply and name == model.name
