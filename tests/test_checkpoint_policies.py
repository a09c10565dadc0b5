"""jax.checkpoint policies, honoured: the gradients are JAX's, and what funcgrad keeps is what JAX's
policy keeps (same values by shape, dtype and producer; same bytes), under jit too; the transformer
block's peak memory under jit is no more than JAX's for the same policy (XLA's memory analysis)."""

import collections
import contextlib
import io
import re

import jax
import jax.ad_checkpoint
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax
from jax.ad_checkpoint import checkpoint_name

import funcgrad
from benchmarks.workloads import make_workloads, transformer_block
from funcgrad.core.ir import type_str
from tests.conftest import x64
from tests.rule_specs.checkpoint import POLICIES, _args, _block

# everything_saveable keeps "every value the backward pass reads", and funcgrad's rules read other
# values than JAX's JVP rules (sin's rule reads x where JAX's linearization keeps cos x): the same
# policy, other residuals (fewer bytes: checked below). Every other policy selects primal values.
SELECTS_PRIMAL_VALUES = [k for k in POLICIES if k != "everything_saveable"]


def assert_trees_close(a, b, rtol=1e-6, atol=1e-12):
    jax.tree.map(lambda u, v: np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=rtol, atol=atol), a, b)


def _block_args(dtype=np.float32):
    return [jnp.asarray(a) for a in _args(np.random.default_rng(0), dtype)]


def _loss(policy, body=_block):
    def loss(x, w):
        y, s = jax.checkpoint(body, policy=policy)(x, w)
        return jnp.sum(jnp.cos(y)) + s

    return loss


@pytest.mark.parametrize("key", list(POLICIES))
def test_gradients_equal_jax_for_every_policy_eager_and_under_jit(key):
    loss = _loss(POLICIES[key])
    with x64():
        x, w = _block_args(np.float64)
        want = jax.jit(jax.grad(loss, (0, 1)))(x, w)  # (jax < 0.5 cannot offload outside jit)
        assert_trees_close(funcgrad.grad(loss, (0, 1))(x, w), want, rtol=1e-12)
        assert_trees_close(jax.jit(funcgrad.grad(loss, (0, 1)))(x, w), want, rtol=1e-12)
        # one argument differentiated: the plan keeps only what that gradient reads
        assert_trees_close(jax.jit(funcgrad.grad(loss, 1))(x, w), jax.jit(jax.grad(loss, 1))(x, w), rtol=1e-12)


@pytest.mark.parametrize("key", ["dots_saveable", "save_only_these_names", "offload_dot_with_no_batch_dims"])
def test_second_order_through_a_policy(key):
    loss = _loss(POLICIES[key])
    with x64():
        x, w = _block_args(np.float64)
        want = jax.jit(jax.hessian(loss, 1))(x, w)  # (jax < 0.5 cannot offload outside jit)
        assert_trees_close(funcgrad.hessian(loss, 1)(x, w), want, rtol=1e-9)
        v = jnp.ones_like(w)
        jvp_of_grad = funcgrad.jvp(lambda w: funcgrad.grad(loss, 1)(x, w), (w,), (v,))
        want = jax.jit(lambda w, v: jax.jvp(lambda w: jax.grad(loss, 1)(x, w), (w,), (v,)))(w, v)
        assert_trees_close(jvp_of_grad, want, rtol=1e-9)


def _jax_residuals(f, *args) -> collections.Counter:
    """JAX's own listing (jax.ad_checkpoint.print_saved_residuals) as (dtype, shape, producer) counts."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        jax.ad_checkpoint.print_saved_residuals(f, *args)
    found = collections.Counter()
    for line in out.getvalue().splitlines():
        dtype, host, shape, what = re.match(r"(\w+)(<host>)?\[([\d,]*)\] (.*)$", line).groups()
        if what.startswith("from the argument"):
            what = "argument"
        elif what.startswith("named "):
            what = "name " + what.split()[1]
        else:  # "output of dot_general from file:line"
            what = what.split()[2]
        found[(dtype + (host or ""), shape, what)] += 1
    return found


def _comparable(ours: collections.Counter, theirs: collections.Counter):
    """Both listings as comparable counts. JAX before 0.5 names every kept value "output of
    reduce_precision" and marks no host copy: there, only what it shows is compared."""

    def strip(counts, producer: bool):
        found = collections.Counter()
        for (dtype, shape, what), n in counts.items():
            found[(dtype.replace("<host>", ""), shape, what if producer or what == "argument" else "?")] += n
        return found

    if not any("<host>" in dtype for dtype, _, _ in theirs):
        ours = strip(ours, producer=True)
    if any(what == "reduce_precision" for _, _, what in theirs):
        ours, theirs = strip(ours, producer=False), strip(theirs, producer=False)
    return ours, theirs


def _funcgrad_residuals(f, *args) -> collections.Counter:
    found = collections.Counter()
    for r in funcgrad.saved_residuals(f, tuple(range(len(args))))(*args):
        dtype, shape = type_str(r.type, shapes=False), type_str(r.type, dtypes=False)[1:-1]
        what = "argument" if r.kind == "argument" else r.primitive
        if r.kind.startswith("offloaded to"):  # JAX lists the copy it made to host memory
            dtype, what = dtype + "<host>", "device_put"
        found[(dtype, shape, what)] += 1
    return found


def _nbytes(counts) -> int:
    sizes = {"f32": 4, "f64": 8, "f16": 2, "bf16": 2}
    total = 0
    for (dtype, shape, _), n in counts.items():
        total += n * sizes[dtype.replace("<host>", "")] * int(np.prod([int(d) for d in shape.split(",") if d]))
    return total


@pytest.mark.parametrize("key", SELECTS_PRIMAL_VALUES)
def test_residuals_are_the_ones_jax_policy_keeps(key):
    f = jax.checkpoint(_block, policy=POLICIES[key])
    args = _block_args()
    ours, theirs = _comparable(_funcgrad_residuals(f, *args), _jax_residuals(f, *args))
    assert ours == theirs


def test_everything_saveable_keeps_what_funcgrad_rules_read_no_more_than_jax():
    f = jax.checkpoint(_block, policy=jax.checkpoint_policies.everything_saveable)
    plain = lambda x, w: _block(x, w)  # noqa: E731
    args = _block_args()
    kept = _funcgrad_residuals(f, *args)
    assert _nbytes(kept) <= _nbytes(_jax_residuals(f, *args))
    # ... and exactly what funcgrad keeps without any checkpoint
    without = collections.Counter()
    for r in funcgrad.saved_residuals(plain, (0, 1))(*args):
        without[(type_str(r.type, shapes=False), type_str(r.type, dtypes=False)[1:-1], r.primitive or r.kind)] += 1
    assert kept == without


@pytest.mark.parametrize("key", ["dots_saveable", "dots_with_no_batch_dims_saveable", "nothing_saveable"])
def test_transformer_block_residuals_are_jax_policy_s(key):
    wl = make_workloads()["D"]
    f = jax.checkpoint(transformer_block, policy=POLICIES[key])
    ours, theirs = _comparable(_funcgrad_residuals(f, wl.params, *wl.batch), _jax_residuals(f, wl.params, *wl.batch))
    assert ours == theirs


def test_the_kept_values_are_the_vjp_functions_leaves_under_jit():
    f = jax.checkpoint(_block, policy=jax.checkpoint_policies.dots_saveable)
    x, w = _block_args()
    out, vjp_fn = jax.jit(lambda x, w: funcgrad.vjp(f, x, w))(x, w)
    values, saved = vjp_fn.args[0]
    (kept,) = saved  # the one checkpoint's saved values: its two products (x @ w and the batched einsum)
    assert [k.shape for k in kept] == [(3, 3), (1, 3, 3)]
    np.testing.assert_allclose(kept[0], x @ w, rtol=1e-6)
    assert_trees_close(vjp_fn((jnp.ones(3), jnp.float32(1))), jax.vjp(f, x, w)[1]((jnp.ones(3), jnp.float32(1))))


def test_what_a_policy_saves_is_not_recomputed():
    x, w = _block_args()
    nothing = funcgrad.saved_residuals(_loss(None), (0, 1))(x, w)
    dots = funcgrad.saved_residuals(_loss(jax.checkpoint_policies.dots_saveable), (0, 1))(x, w)
    assert "dot_general" in [r.primitive for r in nothing.recomputed]
    assert "dot_general" not in [r.primitive for r in dots.recomputed]
    assert dots.recomputed_flops < nothing.recomputed_flops
    assert "recomputed by the backward pass" in str(nothing)
    report = funcgrad.cost_report(_loss(None), (0, 1), xla=False)(x, w)
    assert report.recompute_flops == nothing.recomputed_flops > 0
    assert "recompute jax.checkpoint bodies" in str(report)


@pytest.mark.parametrize("key", ["nothing_saveable", "dots_saveable"])
def test_transformer_block_peak_memory_under_jit_is_no_more_than_jax(key):
    wl = make_workloads()["D"]

    def loss(p, x):
        return jnp.mean(jax.checkpoint(transformer_block, policy=POLICIES[key])(p, x) ** 2)

    def temp_bytes(grad):
        return jax.jit(grad(loss)).lower(wl.params, *wl.batch).compile().memory_analysis().temp_size_in_bytes

    assert temp_bytes(funcgrad.grad) <= temp_bytes(jax.grad)


def test_checkpoint_options_static_argnums_prevent_cse_and_nesting():
    def inner(x, n):
        return jnp.sin(x) ** n

    def loss(x):
        h = jax.checkpoint(inner, static_argnums=(1,), policy=jax.checkpoint_policies.dots_saveable)(x, 3)
        outer = jax.checkpoint(lambda h: jnp.tanh(jax.checkpoint(jnp.exp, prevent_cse=False)(h) @ h.T), policy=None)
        return outer(h).sum()

    with x64():
        x = jnp.linspace(-1, 1, 12).reshape(3, 4)
        assert_trees_close(funcgrad.grad(loss)(x), jax.grad(loss)(x), rtol=1e-12)
        assert_trees_close(jax.jit(funcgrad.grad(loss))(x), jax.grad(loss)(x), rtol=1e-12)
        xs = jnp.stack([x, 2 * x])
        assert_trees_close(jax.vmap(funcgrad.grad(loss))(xs), jax.vmap(jax.grad(loss))(xs), rtol=1e-12)


def _layer(h, w):
    return checkpoint_name(jnp.tanh(h @ w), "h") * 0.5 + h, jnp.sin(h).sum()


@pytest.mark.parametrize("key", ["none", "nothing_saveable", "dots_saveable", "save_only_these_names"])
def test_remat_on_a_scan_body(key):
    def loss(ws, h):
        h, ys = lax.scan(jax.remat(_layer, policy=POLICIES[key]), h, ws)
        return jnp.sum(h**2) + ys.sum()

    with x64():
        ws = jax.random.normal(jax.random.key(0), (5, 4, 4), jnp.float64) * 0.5
        h = jax.random.normal(jax.random.key(1), (3, 4), jnp.float64)
        want = jax.grad(loss, (0, 1))(ws, h)
        assert_trees_close(jax.jit(funcgrad.grad(loss, (0, 1)))(ws, h), want, rtol=1e-12)
        assert_trees_close(funcgrad.grad(loss, (0, 1))(ws, h), want, rtol=1e-12)
        if key == "dots_saveable":  # (second order once: the slowest case of this file)
            assert_trees_close(funcgrad.hessian(loss)(ws, h), jax.hessian(loss)(ws, h), rtol=1e-9)


@pytest.mark.parametrize("key", ["none", "dots_saveable", "save_only_these_names", "offload_dot_with_no_batch_dims"])
def test_remat_scan_stores_per_iteration_what_jax_policy_stores(key):
    # the scan stores, stacked over its iterations, the checkpoint's inputs and what its policy saves
    def layers(ws, h):
        return lax.scan(jax.remat(_layer, policy=POLICIES[key]), h, ws)

    ws, h = jnp.ones((5, 4, 4)) / 4, jnp.linspace(-1, 1, 12).reshape(3, 4)
    loss = lambda ws, h: layers(ws, h)[0].sum()  # noqa: E731
    assert_trees_close(jax.jit(funcgrad.grad(loss, (0, 1)))(ws, h), jax.jit(jax.grad(loss, (0, 1)))(ws, h))
    res = funcgrad.saved_residuals(layers, (0, 1))(ws, h)
    assert {r.kind for r in res} <= {"argument", "saved by scan"}
    ours = collections.Counter()
    for r in res:
        dtype, shape = type_str(r.type, shapes=False), type_str(r.type, dtypes=False)[1:-1]
        ours[(dtype, shape, "argument" if r.kind == "argument" else r.primitive)] += 1
    theirs = collections.Counter()
    for (dtype, shape, what), n in _jax_residuals(layers, ws, h).items():
        theirs[(dtype.replace("<host>", ""), shape, what if what == "argument" else "scan")] += n
    assert ours == theirs


def test_a_scan_without_checkpoint_keeps_only_its_arguments():
    # funcgrad's own trade for a plain scan: the backward pass runs the loop again for the carries
    res = funcgrad.saved_residuals(lambda ws, h: lax.scan(_layer, h, ws), (0, 1))(jnp.ones((5, 4, 4)), jnp.ones((3, 4)))
    assert {r.kind for r in res} == {"argument"}


def test_a_policy_that_returns_nonsense_raises_jax_s_type_error():
    def policy(prim, *avals, **params):
        return "yes"

    loss = _loss(policy)
    x, w = _block_args()
    with pytest.raises(TypeError, match="Value returned by a remat policy should be a bool") as ours:
        jax.jit(funcgrad.grad(loss))(x, w)
    with pytest.raises((TypeError, AssertionError)):  # jax < 0.5 raises a bare AssertionError
        jax.jit(jax.grad(loss))(x, w)
    note = "".join(getattr(ours.value, "__notes__", []))
    # the policy, and the user's line of the equation it was asked about (in _block)
    assert "jax.checkpoint policy" in note and "rule_specs/checkpoint.py:" in note


def test_a_named_value_is_not_recomputed_for_the_rule_that_reads_it_unnamed():
    # tanh's rule reads its own output, the value checkpoint_name names: saving the name spares the
    # layer's recomputation (JAX recomputes x @ w1 and tanh here; it keeps the same bytes)
    def mlp(w1, w2, x):
        return jnp.tanh(checkpoint_name(jnp.tanh(x @ w1), "hidden") @ w2)

    def loss(w1, w2, x):
        return jnp.mean(jax.checkpoint(mlp, policy=jax.checkpoint_policies.save_only_these_names("hidden"))(w1, w2, x))

    w1, w2, x = jnp.ones((6, 5)) / 6, jnp.ones((5, 2)) / 5, jnp.linspace(0, 1, 24).reshape(4, 6)
    res = funcgrad.saved_residuals(loss, (0, 1))(w1, w2, x)
    assert [r.primitive for r in res.recomputed] == ["dot_general", "tanh"]  # the second layer only
    assert [r.primitive for r in res if r.kind == "saved by checkpoint"] == ["name 'hidden'"]
    assert_trees_close(jax.jit(funcgrad.grad(loss, (0, 1)))(w1, w2, x), jax.grad(loss, (0, 1))(w1, w2, x))
