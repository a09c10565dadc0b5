"""No hidden state: repeated calls agree bit for bit, caches stay bounded and never go stale, threads are safe.

funcgrad keeps one piece of state between calls, the trace cache
(``funcgrad.core.cache``). These tests check that it changes nothing observable:
results are bitwise identical call after call and after clearing it, a
rebound global or closure variable is seen (as ``jax.grad`` sees it), memory
stays flat over 10,000 calls with changing shapes, and 8 threads computing
gradients at once get the same answers as one thread.
"""

from __future__ import annotations

import gc
import threading
import tracemalloc

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import funcgrad
from funcgrad.core import cache as fg_cache
from tests.fuzz.programs import RandomDraw, generate


def _mlp_loss(params, x, y):
    h = jnp.tanh(x @ params["w1"] + params["b1"])
    logits = h @ params["w2"]
    return jnp.mean((jax.nn.log_softmax(logits) - y) ** 2) + 1e-3 * sum(
        jnp.sum(p**2) for p in jax.tree_util.tree_leaves(params)
    )


def _mlp_args(seed=0):
    rng = np.random.default_rng(seed)
    params = {
        "w1": jnp.asarray(rng.normal(size=(5, 8)), jnp.float32),
        "b1": jnp.asarray(rng.normal(size=(8,)), jnp.float32),
        "w2": jnp.asarray(rng.normal(size=(8, 3)), jnp.float32),
    }
    x = jnp.asarray(rng.normal(size=(16, 5)), jnp.float32)
    y = jnp.asarray(rng.normal(size=(16, 3)), jnp.float32)
    return params, x, y


def _bits(tree) -> list[bytes]:
    return [np.asarray(leaf).tobytes() for leaf in jax.tree_util.tree_leaves(tree)]


# ---------------------------------------------------------------- repeatability


@pytest.mark.parametrize("hot", [False, True], ids=["eager", "hot-compiled"])
def test_repeated_calls_are_bitwise_identical(hot):
    """Each path repeats itself bit for bit: op by op (hot compilation off), and the compiled program
    that runs from a signature's second call on (whose first, eager, call agrees within rounding)."""
    args = _mlp_args()
    vg = funcgrad.value_and_grad(_mlp_loss)
    with funcgrad.hot_compilation(hot):
        eager_first = vg(*args)
        first = _bits(vg(*args))
        for _ in range(4):
            assert _bits(vg(*args)) == first
        assert _bits(funcgrad.value_and_grad(_mlp_loss)(*args)) == first  # a new wrapper, same cache entry
        funcgrad.clear_cache()
        vg(*args)  # the first call after clearing runs eagerly again
        assert _bits(vg(*args)) == first  # re-traced (and re-compiled) from scratch
    for a, b in zip(jax.tree_util.tree_leaves(eager_first), jax.tree_util.tree_leaves(vg(*args))):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # two separately traced and compiled programs give the same bits: no state rides on the trace
    jitted = _bits(jax.jit(vg)(*args))
    funcgrad.clear_cache()
    assert _bits(jax.jit(funcgrad.value_and_grad(_mlp_loss))(*args)) == jitted
    # and the compiled program computes what the eager one does (XLA may fuse, so not bit for bit)
    for a, b in zip(jax.tree_util.tree_leaves(jax.jit(vg)(*args)), jax.tree_util.tree_leaves(vg(*args))):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_repeated_vjp_jacobian_and_hessian_are_bitwise_identical():
    params, x, _ = _mlp_args(1)
    f = lambda w1: jnp.tanh(x[:3] @ w1)
    ct = jnp.ones((3, 8))
    runs = [
        lambda: funcgrad.vjp(f, params["w1"])[1](ct),
        lambda: funcgrad.jacrev(f)(params["w1"][:, :2]),
        lambda: funcgrad.hessian(lambda v: jnp.sum(jnp.sin(v) ** 3))(x[0]),
    ]
    for hot in (False, True):
        with funcgrad.hot_compilation(hot):
            for run in runs:
                run()  # the signature's first call (eager either way)
                first = _bits(run())
                assert all(_bits(run()) == first for _ in range(3))


@pytest.mark.parametrize("hot", [False, True], ids=["eager", "hot-compiled"])
@pytest.mark.parametrize("seed", [3, 17, 42])
def test_repeated_calls_on_random_programs_are_bitwise_identical(seed, hot):
    program = generate(RandomDraw(seed))
    f, args = program.function(), program.example_args()
    loss = lambda *a: sum(jnp.sum(leaf) for leaf in jax.tree_util.tree_leaves(f(*a)))
    vg = funcgrad.value_and_grad(loss, program.argnums)
    with funcgrad.hot_compilation(hot):
        vg(*args)
        first = _bits(vg(*args))
        assert _bits(vg(*args)) == first
        funcgrad.clear_cache()
        vg(*args)
        assert _bits(vg(*args)) == first


# ------------------------------------------------------------------ staleness

SCALE = 1.0


def _scaled_sum(x):
    return jnp.sum(x * SCALE)


def test_rebinding_a_global_is_seen_like_jax_grad():
    # the trace cache must not hand back a graph traced with an old value of SCALE (even when
    # CPython reuses the old object's id for the new one)
    global SCALE
    x = jnp.ones(3)
    try:
        for i in range(40):
            SCALE = i + 0.5
            np.testing.assert_array_equal(
                funcgrad.grad(_scaled_sum)(x), jax.grad(_scaled_sum)(x), err_msg=f"SCALE={SCALE}"
            )
    finally:
        SCALE = 1.0


def test_rebinding_a_closure_variable_is_seen_like_jax_grad():
    x = jnp.ones(3)
    scale = 0.0

    def loss(x):
        return jnp.sum(x * scale)

    for i in range(40):
        scale = i + 0.25
        np.testing.assert_array_equal(funcgrad.grad(loss)(x), jax.grad(loss)(x), err_msg=f"scale={scale}")


# --------------------------------------------------------------------- memory


def test_memory_stays_flat_over_10k_calls_with_changing_shapes(monkeypatch):
    monkeypatch.setattr(fg_cache.trace_cache, "maxsize", 64)  # a small bound, so 10^4 calls evict a lot
    funcgrad.clear_cache()

    def loss(x):
        return jnp.sum(x * x)

    grad = funcgrad.grad(loss)
    shapes = [(i % 12 + 1, i // 12 + 1) for i in range(96)]  # 96 signatures > 64 cache entries
    arrays = [np.zeros(s, np.float32) for s in shapes]
    small = [jnp.full((k,), 0.5) for k in (1, 2, 3)]
    expected = [jax.grad(loss)(v) for v in small]
    rng = np.random.default_rng(0)

    def calls(n):
        for i in range(n):
            if i % 4:  # tracing only: no compilation, so 10^4 calls stay fast
                funcgrad.trace(loss)(arrays[rng.integers(len(arrays))])
            else:
                k = (i // 4) % 3
                np.testing.assert_array_equal(grad(small[k]), expected[k])

    tracemalloc.start()
    try:
        calls(2_000)  # warm-up: every signature seen, JAX's own caches filled
        gc.collect()
        warm = tracemalloc.get_traced_memory()[0]
        calls(8_000)
        gc.collect()
        end = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
        funcgrad.clear_cache()
    info = funcgrad.cache_info()
    assert info.size <= 64
    # an unbounded cache would keep thousands more graphs here (several MB); allow 1.5 MB of noise
    assert end - warm < 1.5e6, f"traced memory grew by {(end - warm) / 1e6:.2f} MB over 8,000 calls"


# -------------------------------------------------------------------- threads


def test_eight_threads_get_the_same_gradients_as_one():
    """Op by op (hot compilation off) every thread gets one thread's bits; with it on, each call gets
    the bits of the eager run or of the compiled program, whichever path that call took."""
    cases = []
    for k in range(8):
        params, x, y = _mlp_args(k)
        cases.append((params, x[: 4 + k % 2], y[: 4 + k % 2]))  # two shapes: threads share cache entries
    with funcgrad.hot_compilation(False):
        expected = [_bits(funcgrad.value_and_grad(_mlp_loss)(*c)) for c in cases]
    reference = [jax.value_and_grad(_mlp_loss)(*c) for c in cases]
    for got, want in zip(expected, reference):
        for a, b in zip(got, _bits(want)):
            np.testing.assert_allclose(np.frombuffer(a, np.float32), np.frombuffer(b, np.float32), rtol=1e-5, atol=1e-6)
    compiled = [[_bits(funcgrad.value_and_grad(_mlp_loss)(*c)) for _ in range(2)][1] for c in cases]
    for hot in (False, True):
        allowed = [[e] + ([c] if hot else []) for e, c in zip(expected, compiled)]
        funcgrad.clear_cache()
        with funcgrad.hot_compilation(hot):
            results, errors = _in_eight_threads(cases)
        assert not errors, errors
        for k in range(8):
            assert all(r in allowed[k] for r in results[k][:5]), f"thread {k}, hot={hot}"
            assert results[k][5] in [a[1:] for a in allowed[(k + 1) % 8]], f"thread {k} (grad), hot={hot}"


def _in_eight_threads(cases):
    results: dict = {}
    errors: list = []
    barrier = threading.Barrier(8)

    def work(k):
        try:
            barrier.wait()
            results[k] = [_bits(funcgrad.value_and_grad(_mlp_loss)(*cases[k])) for _ in range(5)]
            results[k].append(_bits(funcgrad.grad(_mlp_loss)(*cases[(k + 1) % 8])))
        except Exception as err:  # noqa: BLE001 (reported below)
            errors.append((k, err))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, errors
