"""saved_residuals (what the backward pass reads) and cost_report (FLOPs and bytes per equation)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import funcgrad

RNG = np.random.default_rng(5)


def dense_tanh(w, x):
    return jnp.sum(jnp.tanh(x @ w))


def test_residuals_are_what_the_rules_read():
    w = jnp.asarray(RNG.normal(size=(6, 3)), jnp.float32)
    x = jnp.asarray(RNG.normal(size=(8, 6)), jnp.float32)
    res = funcgrad.saved_residuals(dense_tanh)(w, x)
    # dC/dw = x^T (ct * (1 - tanh^2)): the rules read x and tanh's output, not w
    assert [(r.kind, r.primitive) for r in res] == [("argument", None), ("intermediate", "tanh")]
    assert res.total_bytes == x.nbytes + (x @ w).nbytes
    assert res.intermediate_bytes == (x @ w).nbytes
    assert res.items[1].where.startswith("test_memory_cost.py:")
    # differentiating x too: dC/dx = (ct * (1 - tanh^2)) w^T also reads w
    both = funcgrad.saved_residuals(dense_tanh, argnums=(0, 1))(w, x)
    assert both.total_bytes == w.nbytes + x.nbytes + (x @ w).nbytes
    assert "total" in str(both) and "tanh" in str(both)


def test_residuals_of_an_mlp_are_its_inputs_and_activations():
    sizes = [(5, 4), (3, 5)]
    ws = [jnp.asarray(RNG.normal(size=s), jnp.float32) for s in sizes]
    x = jnp.asarray(RNG.normal(size=(4,)), jnp.float32)

    def f(ws, x):
        h = jnp.sin(ws[0] @ x)  # sin's rule reads its input (cos x)
        return jnp.sum(ws[1] @ h)

    res = funcgrad.saved_residuals(f)(ws, x)
    by_kind = {r.kind: [] for r in res}
    for r in res:
        by_kind[r.kind].append(r)
    # dC/dW1 reads h; dC/dh reads W2; sin's rule reads W1 @ x; dC/dW0 reads x
    expected = x.nbytes + ws[1].nbytes + (ws[0] @ x).nbytes + jnp.sin(ws[0] @ x).nbytes
    assert res.total_bytes == expected
    assert sorted(r.primitive for r in by_kind["intermediate"]) == ["dot_general", "sin"]


def test_cost_of_dense_layers_backward_is_twice_forward():
    ws = [jnp.asarray(RNG.normal(size=(16, 16)) / 4, jnp.float32) for _ in range(3)]
    x = jnp.asarray(RNG.normal(size=(32, 16)), jnp.float32)

    def f(ws, x):
        for w in ws:
            x = jnp.tanh(x @ w)
        return jnp.sum(x)

    report = funcgrad.cost_report(f, argnums=(0, 1))(ws, x)
    fwd_dot = [r for r in report.rows if r.phase == "forward" and r.primitive == "dot_general"]
    bwd_dot = [r for r in report.rows if r.phase == "backward" and r.primitive == "dot_general"]
    assert all(r.flops == 2 * 32 * 16 * 16 for r in fwd_dot) and len(fwd_dot) == 3
    assert sum(r.flops for r in bwd_dot) == 2 * sum(r.flops for r in fwd_dot)
    assert 1.9 < report.backward_flops / report.forward_flops < 2.3
    # bytes: an elementwise op reads and writes one activation each
    tanh = next(r for r in report.rows if r.phase == "forward" and r.primitive == "tanh")
    assert tanh.bytes == 2 * 32 * 16 * 4
    # XLA's totals agree with the model to within its extra bookkeeping
    assert abs(report.xla_forward["flops"] - report.forward_flops) / report.forward_flops < 0.1
    assert report.xla_forward_backward["flops"] > 2.5 * report.xla_forward["flops"]
    text = str(report)
    assert "backward:" in text and "x forward" in text


def test_cost_report_without_xla_inside_jit():
    w = jnp.ones((4, 4))
    flops = jax.jit(lambda w: funcgrad.cost_report(dense_tanh, xla=False)(w, w).forward_flops * 1.0 + w.sum())
    assert float(flops(w)) - 16.0 == 2 * 4 * 4 * 4 + 16 + 16


def test_a_custom_vjp_s_residuals_are_what_its_fwd_saved():
    @jax.custom_vjp
    def f(x):
        return jnp.sin(x)

    f.defvjp(lambda x: (jnp.sin(x), (jnp.cos(x), x[:2])), lambda res, g: (g * res[0],))
    res = funcgrad.saved_residuals(lambda x: f(x).sum())(jnp.ones(3))
    # fwd saved cos(x) and x[:2]; the bwd reads only cos(x), and not the argument x itself
    assert [(r.kind, r.type.shape) for r in res] == [("saved by custom_vjp_call", (3,))]
