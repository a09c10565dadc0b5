"""Workloads A (mynet) and B (MLP) in HIPS autograd (NumPy, eager), same math, same numbers."""

from __future__ import annotations

import autograd.numpy as anp
from autograd import grad
from autograd.scipy.special import logsumexp


def _mlp_logits(p, x, n_layers):
    for i in range(n_layers):
        x = anp.dot(x, p[f"W{i}"].T) + p[f"b{i}"]
        if i < n_layers - 1:
            x = anp.maximum(x, 0.0)
    return x


def _cross_entropy(logits, labels):
    logp = logits - logsumexp(logits, axis=1, keepdims=True)
    return -anp.mean(logp[anp.arange(len(labels)), labels])


def mynet_mse(p, x, y):
    h = anp.reshape(x, (-1,))
    h = anp.maximum(anp.dot(p["W0"], h) + p["b0"], 0.0)
    h = anp.maximum(anp.dot(p["W1"], h) + p["b1"], 0.0)
    return anp.mean((anp.dot(p["W2"], h) + p["b2"] - y) ** 2)


def mynet_xent(p, x, labels):
    return _cross_entropy(_mlp_logits(p, anp.reshape(x, (x.shape[0], -1)), 3), labels)


def mlp_xent(p, x, labels):
    return _cross_entropy(_mlp_logits(p, x, 3), labels)


LOSSES = {"A1": mynet_mse, "A128": mynet_xent, "B": mlp_xent}


def autograd_step(workload):
    """(step, grads) for ``workload``, or None if it has no autograd version."""
    if workload.name not in LOSSES:
        return None
    g = grad(LOSSES[workload.name])
    state = {}

    def step():
        state["grads"] = g(workload.params, *workload.batch)
        return state["grads"]

    return step, lambda: state["grads"]
