"""``funcgrad.tag(x, "name")``: name an intermediate value so funcgrad's graphs can show it.

A tag is the identity in the math. It is built only from public JAX API: the
value passes through a ``jax.jit``-wrapped identity function whose name is
``funcgrad_tag:<name>``. JAX keeps that call in its jaxprs (under ``jit``,
``vmap`` and ``grad`` too) and XLA compiles it away, so a tag costs nothing in
compiled code. ``funcgrad.trace`` recognises the name and emits a ``tag``
equation whose output variable carries the label, instead of inlining the call.

Outside any transformation (concrete arrays) ``tag`` returns its argument
unchanged: there is nothing to record.
"""

from __future__ import annotations

import functools

import jax

# The jit name that marks a tag; ``funcgrad.trace`` looks for it.
TAG_PREFIX = "funcgrad_tag:"


def tag(x, name: str):
    """Mark ``x`` (an array or a pytree of arrays) as the named intermediate ``name``.

    Args:
      x: the value to name. Every array leaf is tagged; with several leaves each
        gets ``name`` followed by its pytree path, e.g. ``"h['W']"``.
      name: the label shown by ``Graph.format``, ``funcgrad.draw`` and used as the
        key of ``funcgrad.sensitivities``.

    Returns:
      ``x`` itself (the identity), so ``h = funcgrad.tag(relu(s), "h1")`` reads naturally.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"funcgrad.tag needs a non-empty string name, got {name!r}")
    leaves, tree = jax.tree_util.tree_flatten_with_path(x)
    if len(leaves) == 1 and not leaves[0][0]:
        return _tag_leaf(leaves[0][1], name)
    tagged = [_tag_leaf(leaf, name + jax.tree_util.keystr(path)) for path, leaf in leaves]
    return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(x), tagged)


def _tag_leaf(leaf, name: str):
    if not isinstance(leaf, jax.core.Tracer):
        return leaf  # concrete value: no graph is being built, so no marker is needed
    return _identity_named(name)(leaf)


@functools.cache
def _identity_named(name: str):
    def identity(x):
        return x

    identity.__name__ = identity.__qualname__ = TAG_PREFIX + name
    return jax.jit(identity)


def tag_name(jit_name: str) -> str | None:
    """The tag's label if ``jit_name`` is a tag's jit name, else None."""
    if isinstance(jit_name, str) and jit_name.startswith(TAG_PREFIX):
        return jit_name[len(TAG_PREFIX) :]
    return None
