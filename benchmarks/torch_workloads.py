"""The workloads of ``benchmarks.workloads`` in PyTorch (eager or ``torch.compile``), same math, same numbers.

``torch_step(workload)`` returns ``(step, grads)``: ``step()`` runs forward and
backward once and returns the loss; ``grads()`` the parameter gradients as NumPy
arrays (used to check that the two versions agree before timing them). Only
``workload.name``, ``.params`` and ``.batch`` (NumPy arrays) are read, so this
module never imports JAX: ``benchmarks.peer_worker`` runs it in a process of its own.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def _mlp_logits(p, x, n_layers):
    for i in range(n_layers):
        x = x @ p[f"W{i}"].T + p[f"b{i}"]
        if i < n_layers - 1:
            x = torch.relu(x)
    return x


def mynet_mse(p, x, y):
    h = x.reshape(-1)
    h = torch.relu(p["W0"] @ h + p["b0"])
    h = torch.relu(p["W1"] @ h + p["b1"])
    return torch.mean((p["W2"] @ h + p["b2"] - y) ** 2)


def mynet_xent(p, x, labels):
    return F.cross_entropy(_mlp_logits(p, x.reshape(x.shape[0], -1), 3), labels)


def mlp_xent(p, x, labels):
    return F.cross_entropy(_mlp_logits(p, x, 3), labels)


def cnn_xent(p, x, labels):
    h = F.max_pool2d(torch.relu(F.conv2d(x, p["conv1"], p["cb1"])), 2)
    h = F.max_pool2d(torch.relu(F.conv2d(h, p["conv2"], p["cb2"])), 2)
    return F.cross_entropy(h.reshape(h.shape[0], -1) @ p["W"].T + p["b"], labels)


def _layer_norm(x, scale, bias, eps=1e-5):
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) * torch.rsqrt(var + eps) * scale + bias


def transformer_mse(p, x, heads=4):
    b, s, d = x.shape
    h = _layer_norm(x, p["ln1_scale"], p["ln1_bias"])
    split = lambda t: t.reshape(b, s, heads, d // heads).transpose(1, 2)
    q, k, v = split(h @ p["Wq"]), split(h @ p["Wk"]), split(h @ p["Wv"])
    scores = q @ k.transpose(-1, -2) / float(np.sqrt(d // heads))
    mask = torch.tril(torch.ones(s, s, dtype=torch.bool, device=x.device))
    probs = torch.softmax(scores.masked_fill(~mask, -1e9), dim=-1)
    x = x + (probs @ v).transpose(1, 2).reshape(b, s, d) @ p["Wo"]
    h = _layer_norm(x, p["ln2_scale"], p["ln2_bias"])
    h = F.gelu(h @ p["W1"] + p["b1"], approximate="tanh")
    return torch.mean((x + h @ p["W2"] + p["b2"]) ** 2)


LOSSES = {"A1": mynet_mse, "A128": mynet_xent, "B": mlp_xent, "C": cnn_xent, "D": transformer_mse}


def _tensor(a, device="cpu"):
    t = torch.from_numpy(np.ascontiguousarray(a))
    return (t.long() if t.dtype == torch.int32 else t).to(device)


def torch_step(workload, device: str = "cpu", compile: bool = False):
    """(step, grads) for ``workload`` in PyTorch on ``device``: eager, or the loss under ``torch.compile``
    (autograd then runs the backward graph that AOTAutograd compiled with it)."""
    loss = torch.compile(LOSSES[workload.name]) if compile else LOSSES[workload.name]
    params = {k: _tensor(v, device).requires_grad_(True) for k, v in workload.params.items()}
    batch = [_tensor(b, device) for b in workload.batch]

    def step():
        for t in params.values():
            t.grad = None
        out = loss(params, *batch)
        out.backward()
        return out

    def grads():
        return {k: t.grad.cpu().numpy().copy() for k, t in params.items()}

    return step, grads


def saved_bytes(workload) -> int:
    """Bytes of the tensors autograd saves for the backward pass (each storage counted once, leaves excluded)."""
    loss = LOSSES[workload.name]
    params = {k: _tensor(v).requires_grad_(True) for k, v in workload.params.items()}
    batch = [_tensor(b) for b in workload.batch]
    leaves = {t.untyped_storage().data_ptr() for t in [*params.values(), *batch]}
    seen: dict[int, int] = {}

    def pack(t):
        ptr = t.untyped_storage().data_ptr()
        if ptr not in leaves:
            seen[ptr] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss(params, *batch)
    return sum(seen.values())
