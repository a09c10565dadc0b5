"""VJP rule for the generic ``reduce`` (``lax.reduce`` with a custom computation or several operands).

JAX differentiates it (``_reduce_jvp`` in ``jax/_src/lax/lax.py``) as a tree:
move the reduced axes to the front and flatten them, then repeatedly split the
entries into halves (padding an odd second half with the init values) and
combine the halves with the reducer, vmapped over every axis. To match JAX
exactly (ties in a max-like reducer share as its tree shares them), the rule
traces that same tree, with the reducer graph, into a funcgrad graph and runs
funcgrad's reverse sweep over it.

JAX refuses non-zero tangents for the init values; funcgrad differentiates the
same tree with respect to them too (they enter through the padding, and are the
output of an empty reduction).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from funcgrad.core.interpret import eval_graph
from funcgrad.core.nested import traced_vjp
from funcgrad.core.registry import defvjp


def _reduce_tree(reducer_graph, dimensions, n_operands):
    """JAX's tree reduction of ``operands`` over ``dimensions``, as a function of (*operands, *init_values)."""

    def tree(*args):
        xs, init_values = list(args[:n_operands]), list(args[n_operands:])
        shape = np.shape(xs[0])
        kept = [d for d in range(len(shape)) if d not in dimensions]
        n = int(np.prod([shape[d] for d in dimensions], dtype=int))
        # the reduced axes first, flattened into one
        xs = [lax.reshape(x, (n, *[shape[d] for d in kept]), (*dimensions, *kept)) for x in xs]
        reducer = lambda *a: eval_graph(reducer_graph, *a)  # noqa: E731
        for _ in range(len(kept) + 1):
            reducer = jax.vmap(reducer)
        while xs[0].shape[0] > 1:
            size = xs[0].shape[0]
            n1 = (size + 1) // 2
            xs1 = [lax.slice_in_dim(x, 0, n1) for x in xs]
            xs2 = [lax.slice_in_dim(x, n1, None) for x in xs]
            if size - n1 != n1:
                padding = [(0, 1, 0)] + [(0, 0, 0)] * len(kept)
                xs2 = [lax.pad(x2, i, padding) for x2, i in zip(xs2, init_values)]
            xs = list(reducer(*xs1, *xs2))
        if xs[0].shape[0] == 0:
            return [jnp.full(tuple(shape[d] for d in kept), i) for i in init_values]
        return [lax.squeeze(x, (0,)) for x in xs]

    return tree


@defvjp("reduce", symbolic_zeros=True)
def reduce_vjp(ct, *args, out, jaxpr, dimensions, **params):
    """ct_operands = the backward sweep of ct through the reduction written as a tree of the reducer"""
    n_operands = len(args) // 2
    tree = _reduce_tree(jaxpr, tuple(dimensions), n_operands)
    specs = [jax.ShapeDtypeStruct(np.shape(a), jnp.result_type(a)) for a in args]
    wrt = [jnp.issubdtype(jnp.result_type(a), jnp.inexact) for a in args]
    return traced_vjp(tree, args, wrt, ct, specs=specs)
