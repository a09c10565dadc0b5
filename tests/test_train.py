"""funcgrad.nn.train: the lecture's update rules, matrix step sizes, optax, determinism, and the main example."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree

import funcgrad
from funcgrad import nn

ROOT = Path(__file__).resolve().parents[1]
MODEL = nn.MLP((8, 3))


def _problem(num_examples=64, seed=0):
    """A small separable 3-class problem, random parameters of MLP((8, 3)) and its average loss."""
    rng = np.random.default_rng(seed)
    xs = rng.normal(size=(num_examples, 5)).astype(np.float32)
    ys = (np.argmax(xs[:, :3], axis=1)).astype(np.int32)
    structure = jax.eval_shape(lambda k: MODEL.init((5,), key=k), jax.random.key(0))
    params = jax.tree_util.tree_map(lambda s: (0.3 * rng.normal(size=s.shape)).astype(np.float32), structure)
    return params, xs, ys, nn.average_loss(MODEL, nn.softmax_cross_entropy)


def _assert_trees_close(a, b, rtol=1e-6, atol=1e-7):
    assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol)


def test_matrix_step_equals_scalar_step_when_eta_is_c_times_identity():
    params, xs, ys, loss = _problem()
    size = ravel_pytree(params)[0].size
    c = 0.3
    w_scalar, value_scalar = nn.gradient_step(loss, c)(params, xs, ys)
    w_matrix, value_matrix = nn.gradient_step(loss, c * jnp.eye(size))(params, xs, ys)
    _assert_trees_close(w_scalar, w_matrix)
    np.testing.assert_allclose(value_scalar, value_matrix)
    # and the scalar step is the lecture's w ← w − η ∂L(S, w)/∂w with jax.grad's gradient
    expected = jax.tree_util.tree_map(lambda w, g: w - c * g, params, jax.jit(jax.grad(loss))(params, xs, ys))
    _assert_trees_close(w_scalar, expected)


def test_preconditioned_step_scales_each_coordinate_and_descends():
    params, xs, ys, loss = _problem()
    flat_w, unravel = ravel_pytree(params)
    diag = np.random.default_rng(1).uniform(0.05, 0.5, flat_w.size).astype(np.float32)
    g = jax.jit(funcgrad.grad(loss))(params, xs, ys)
    stepped = jax.jit(nn.descend)(params, g, jnp.diag(diag))
    np.testing.assert_allclose(ravel_pytree(stepped)[0], flat_w - diag * ravel_pytree(g)[0], rtol=1e-6, atol=1e-7)
    before, after = jax.jit(jax.vmap(loss, (0, None, None)))(
        jax.tree_util.tree_map(lambda *p: jnp.stack(p), params, stepped), xs, ys
    )
    assert float(after) < float(before)


@pytest.mark.parametrize(
    "eta,message",
    [(-0.1, "positive"), (np.array([[1.0, 0.5], [0.0, 1.0]]), "symmetric"), (-np.eye(2), "positive definite")],
)
def test_bad_step_sizes_are_rejected(eta, message):
    with pytest.raises(ValueError, match=message):
        nn.check_step_size(eta)


def test_matrix_of_the_wrong_size_is_a_clear_error():
    params, xs, ys, loss = _problem()
    with pytest.raises(ValueError, match="ravel_pytree"):
        nn.descend(params, params, jnp.eye(3))


# one entry per update rule, plus optax's optimizers, plus a preconditioned (matrix η) full-batch GD
RUNS = [
    ("gd", {"eta": 1.0}),
    ("sgd", {"eta": 0.05}),
    ("minibatch", {"eta": 0.3}),
    ("minibatch", {"optimizer": optax.sgd(0.3)}),
    ("minibatch", {"optimizer": optax.sgd(0.1, momentum=0.9)}),
    ("minibatch", {"optimizer": optax.adam(0.03)}),
    ("gd", {"eta": "diagonal"}),
]


@pytest.mark.parametrize(
    "rule,kwargs", RUNS, ids=["gd", "sgd", "minibatch", "optax-sgd", "momentum", "adam", "gd-matrix"]
)
def test_training_lowers_the_loss(rule, kwargs):
    params, xs, ys, loss = _problem()
    if kwargs.get("eta") == "diagonal":
        size = ravel_pytree(params)[0].size
        kwargs = {"eta": np.diag(np.random.default_rng(2).uniform(0.5, 1.5, size)).astype(np.float32)}
    epochs = 5
    trained, history = nn.fit(loss, params, (xs, ys), rule=rule, epochs=epochs, batch_size=8, **kwargs)
    steps_per_epoch = {"gd": 1, "sgd": 64, "minibatch": 8}[rule]
    assert history.step_loss.shape == (epochs * steps_per_epoch,)
    assert history.epoch_loss.shape == (epochs + 1,)
    np.testing.assert_allclose(history.epoch_loss[0], loss(params, xs, ys), rtol=1e-6)
    np.testing.assert_allclose(history.epoch_loss[-1], loss(trained, xs, ys), rtol=1e-6)
    assert history.epoch_loss[-1] < 0.8 * history.epoch_loss[0]
    if rule == "gd":  # small enough steps: full-batch GD goes down at every step
        assert np.all(np.diff(history.epoch_loss) < 0)


def test_training_is_deterministic_given_the_seed():
    params, xs, ys, loss = _problem()

    def run(seed):
        return nn.fit(loss, params, (xs, ys), rule="minibatch", epochs=2, eta=0.3, batch_size=8, seed=seed)[0]

    _assert_trees_close(run(0), run(0), rtol=0, atol=0)
    assert not np.allclose(ravel_pytree(run(0))[0], ravel_pytree(run(1))[0])


def test_optimizer_step_equals_optax_fed_by_jax_grad():
    params, xs, ys, loss = _problem()
    opt = optax.adam(0.01)
    w, state, value = nn.optimizer_step(loss, opt)(params, opt.init(params), xs, ys)

    @jax.jit
    def expected(params):
        updates, _ = opt.update(jax.grad(loss)(params, xs, ys), opt.init(params), params)
        return optax.apply_updates(params, updates)

    _assert_trees_close(w, expected(params), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(value, loss(params, xs, ys), rtol=1e-6)


def test_fit_records_metrics_and_shows_progress(capsys):
    params, xs, ys, loss = _problem()
    _, history = nn.fit(
        loss,
        params,
        (xs, ys),
        rule="gd",
        epochs=4,
        eta=0.5,
        metrics=lambda w: {"acc": nn.accuracy(MODEL, w, xs, ys)},
        progress="demo",
    )
    assert len(history.metrics) == 4 and all(0.0 <= m["acc"] <= 1.0 for m in history.metrics)
    err = capsys.readouterr().err  # progress goes to stderr, so stdout stays parseable
    assert "demo: 100%" in err and "4/4" in err and "acc=" in err  # tqdm's bar, the metrics beside it


def test_progress_bar_prints_a_few_lines_when_not_a_terminal():
    stream = io.StringIO()
    bar = nn.ProgressBar(100, desc="run", stream=stream, lines=4)
    for _ in range(100):
        bar.update(1, loss=0.5)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 4  # whole lines, no carriage-return redraws, in a log
    assert lines[0].startswith("run:  25%") and "25/100" in lines[0]
    assert lines[-1].startswith("run: 100%") and "100/100" in lines[-1] and "loss=0.5" in lines[-1]
    assert "\r" not in stream.getvalue()


def test_bad_data_is_a_clear_error():
    params, xs, ys, loss = _problem()
    with pytest.raises(ValueError, match="leading axis"):
        nn.fit(loss, params, (xs, ys[:10]))
    with pytest.raises(ValueError, match="unknown rule"):
        nn.fit(loss, params, (xs, ys), rule="newton")


def test_train_mynet_example_end_to_end(tmp_path):
    """README command 1: step-0 gradient check, a PNG of the loss curves, and `test accuracy: X` last."""
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "train_mynet.py"), "--out", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    check = [line for line in lines if line.startswith("step-0 gradient check:")]
    assert len(check) == 1, result.stdout
    diff = float(re.search(r"max \|funcgrad - jax\.grad\| = (\S+)", check[0]).group(1))
    assert diff <= 1e-5
    png = tmp_path / "mynet_loss_curves.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    match = re.fullmatch(r"test accuracy: (\d\.\d{3})", lines[-1])
    assert match, f"last line was {lines[-1]!r}"
    assert float(match.group(1)) >= 0.95
