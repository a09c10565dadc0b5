"""A model is two pure functions: ``init(in_shape, *, key) -> w`` and ``apply(w, x) -> y``.

This is the lecture's parametrised model ``ȳ = G(x, w)`` written with the
parameters first, ``G(w, x)``, so ``funcgrad.grad(loss)(w, x, y)`` differentiates
with respect to ``w`` (argnums=0). ``w`` is a plain pytree (nested dicts of
arrays with readable names such as ``{'W': ..., 'b': ...}``); nothing is stored
in the model, nothing is mutated. ``apply`` maps ONE example; batch it with
``jax.vmap(model.apply, in_axes=(None, 0))`` (see ``batched``).

Composite models run each part inside ``jax.named_scope(<its name>)`` (``Serial``: the parameter
key, ``linear0``, ``relu1``, ...), as Flax and Equinox name their modules: the scope costs nothing
in compiled code, and ``funcgrad.explore``, ``funcgrad.draw(collapse=...)`` and
``Graph.format(scopes=True)`` group the equations by it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

Params = Any  # a pytree of arrays
Shape = tuple[int, ...]


class Layer(NamedTuple):
    """A parametrised model ``G`` as an ``(init, apply)`` pair, as in ``jax.example_libraries.stax``;
    calling it, ``layer(w, x)``, applies it.

    Attributes:
      init: ``init(in_shape, *, key) -> params``; ``in_shape`` is the shape of one example
        (a tuple, or an example array whose shape is used).
      apply: ``apply(params, x) -> y`` for one example ``x``; pure, jit/vmap/grad-able.
      name: a short name, used for the parameter keys of ``Serial``.
    """

    init: Callable[..., Params]
    apply: Callable[[Params, jax.Array], jax.Array]
    name: str

    def __call__(self, params: Params, x: jax.Array) -> jax.Array:
        """``layer(w, x)`` is ``layer.apply(w, x)``: the model ``G(w, x)`` of the lecture."""
        return self.apply(params, x)


def shape_of(in_shape) -> Shape:
    """The shape of one example: ``in_shape`` itself if it is a tuple of ints, else ``in_shape.shape``."""
    if hasattr(in_shape, "shape"):
        return tuple(int(d) for d in np.shape(in_shape))
    if isinstance(in_shape, int):
        return (in_shape,)
    return tuple(int(d) for d in in_shape)


def out_shape(layer: Layer, params: Params, in_shape, dtype=jnp.float32) -> Shape:
    """The shape of ``layer.apply(params, x)`` for an example of shape ``in_shape`` (no FLOPs spent)."""
    x = jax.ShapeDtypeStruct(shape_of(in_shape), dtype)
    return tuple(jax.eval_shape(layer.apply, params, x).shape)


def stateless(fn: Callable[[jax.Array], jax.Array], name: str) -> Layer:
    """A layer without parameters (an activation, a reshape): ``init`` returns ``{}``."""

    def init(in_shape, *, key=None):
        return {}

    def apply(params, x):
        return fn(x)

    return Layer(init, apply, name)


def Serial(*layers: Layer | tuple[str, Layer]) -> Layer:
    """Compose layers left to right: ``G(w, x) = G_n(w_n, ... G_1(w_1, x))``.

    Args:
      *layers: ``Layer`` values, or ``(name, Layer)`` pairs to choose the parameter key.
        Unnamed layers are keyed ``f"{layer.name}{i}"`` (``linear0``, ``relu1``, ...).

    Returns:
      A ``Layer`` whose parameters are ``{name: params}`` for every layer that has
      parameters (parameter-free layers such as ``Relu`` have no entry).
    """
    named = []
    for i, item in enumerate(layers):
        name, layer = (f"{item.name}{i}", item) if isinstance(item, Layer) else item
        if not isinstance(layer, Layer):
            raise TypeError(
                f"Serial: item {i} is a {type(layer).__name__}, not a Layer; pass Layer values or (name, Layer) pairs."
            )
        named.append((name, layer))
    names = [n for n, _ in named]
    if len(set(names)) != len(names):
        raise ValueError(f"Serial: layer names must be unique, got {names}.")

    def init(in_shape, *, key):
        params, shape = {}, shape_of(in_shape)
        for (name, layer), k in zip(named, jax.random.split(key, len(named)), strict=True):
            p = layer.init(shape, key=k)
            if jax.tree_util.tree_leaves(p):
                params[name] = p
            shape = out_shape(layer, p, shape)
        return params

    def apply(params, x):
        for name, layer in named:
            with jax.named_scope(name):  # the layer's block in funcgrad.explore and draw(collapse=...)
                x = layer.apply(params.get(name, {}), x)
        return x

    return Layer(init, apply, "serial")


def batched(apply: Callable[[Params, jax.Array], jax.Array]) -> Callable[[Params, jax.Array], jax.Array]:
    """``apply`` over a leading batch axis of ``x`` with shared parameters: ``jax.vmap(apply, (None, 0))``."""
    return jax.vmap(apply, in_axes=(None, 0))


def count_params(params: Params) -> int:
    """The number of scalars in a parameter pytree."""
    return int(sum(np.size(p) for p in jax.tree_util.tree_leaves(params)))


def describe(params: Params) -> str:
    """One line per parameter leaf: its path, shape and dtype (a readable summary of ``w``)."""
    lines = []
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        lines.append(f"{jax.tree_util.keystr(path):<24} {jnp.result_type(leaf).name}{list(np.shape(leaf))}")
    lines.append(f"{'total':<24} {count_params(params)} parameters")
    return "\n".join(lines)


def check_in_shape(layer_name: str, shape: Shape, ndim: int | Sequence[int], what: str) -> None:
    """Raise a clear error if one example's shape does not have the expected rank."""
    ndims = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    if len(shape) not in ndims:
        raise ValueError(
            f"{layer_name}: expected one example of rank {' or '.join(map(str, ndims))} ({what}), got shape {shape}.\n"
            "  fix: pass the shape of ONE example (no batch axis); batch with jax.vmap(model.apply, (None, 0))."
        )
