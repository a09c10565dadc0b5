"""Parametrised models as pure functions of a parameter pytree, losses, and gradient-descent training.

A model is a ``Layer``: an ``(init, apply)`` pair. ``init(in_shape, *, key)``
returns the parameters ``w`` (nested dicts of arrays: ``{'m0': {'W': ..., 'b': ...}}``);
``apply(w, x)`` is the lecture's G(x, w) for one example (batch it with ``jax.vmap``).
Gradients of every loss are computed by ``funcgrad.grad`` / ``value_and_grad``.
See docs/models.md.
"""

from funcgrad.nn.activations import Flatten, Relu, Sigmoid, Tanh
from funcgrad.nn.attention import MultiHeadAttention
from funcgrad.nn.conv import Conv2d
from funcgrad.nn.layer import Layer, Serial, batched, count_params, describe, out_shape, stateless
from funcgrad.nn.lecture import LinearModel, Nearest, NearestNeighbour
from funcgrad.nn.linear import MLP, Linear, affine
from funcgrad.nn.losses import (
    accuracy,
    average_loss,
    per_sample_loss,
    softmax_cross_entropy,
    softmax_cross_entropy_int,
    softmax_cross_entropy_onehot,
    squared_error,
)
from funcgrad.nn.models import mynet
from funcgrad.nn.norm import LayerNorm
from funcgrad.nn.patches import extract_patches
from funcgrad.nn.pool import AvgPool2d, MaxPool2d
from funcgrad.nn.progress import ProgressBar
from funcgrad.nn.train import History, check_step_size, descend, epoch_batches, fit, gradient_step, optimizer_step

__all__ = [
    "AvgPool2d",
    "Conv2d",
    "Flatten",
    "History",
    "Layer",
    "LayerNorm",
    "Linear",
    "LinearModel",
    "MLP",
    "MaxPool2d",
    "MultiHeadAttention",
    "Nearest",
    "NearestNeighbour",
    "ProgressBar",
    "Relu",
    "Serial",
    "Sigmoid",
    "Tanh",
    "accuracy",
    "affine",
    "average_loss",
    "batched",
    "check_step_size",
    "count_params",
    "descend",
    "describe",
    "epoch_batches",
    "extract_patches",
    "fit",
    "gradient_step",
    "mynet",
    "optimizer_step",
    "out_shape",
    "per_sample_loss",
    "softmax_cross_entropy",
    "softmax_cross_entropy_int",
    "softmax_cross_entropy_onehot",
    "squared_error",
    "stateless",
]
