"""Per-module Jacobians of a multi-stage model, and backprop written as their product.

For a chain ``z[k+1] = f_k(w_k, z[k])`` (the lecture's multi-stage graph, with
stax's argument order: parameters first), each module has two Jacobians:

* the state Jacobian ``dz[k+1]/dz[k]``, shape ``z[k+1].shape + z[k].shape``;
* the weight Jacobian ``dz[k+1]/dw_k``, one array per leaf of ``w_k``, shape
  ``z[k+1].shape + leaf.shape``.

Backprop is the product of the row vector dc/dz[k+1] with them::

    dc/dz[k] = dc/dz[k+1] . dz[k+1]/dz[k]        dc/dw_k = dc/dz[k+1] . dz[k+1]/dw_k

``module_jacobians`` computes the Jacobians with ``funcgrad.jacrev``;
``backprop_jacobians`` carries out those products. A real reverse sweep never
forms the Jacobians (a VJP rule multiplies by them implicitly); this module is
for seeing and checking the formulas on small models.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from funcgrad.api import jacrev


class ModuleJacobian(NamedTuple):
    """One module ``z_out = f(w, z_in)`` at a point, with its two Jacobians (a pytree: works under ``jax.jit``)."""

    z_in: Any
    z_out: Any
    d_state: Any  # dz_out/dz_in: z_out.shape + z_in.shape
    d_weights: Any  # pytree like w, each leaf z_out.shape + leaf.shape; None for a parameter-free module


def module_jacobians(stages: Sequence[tuple[Callable, Any]]) -> Callable[[Any], list[ModuleJacobian]]:
    """The state and weight Jacobians of each module of a chain, at the point reached from ``z0``.

    Args:
      stages: ``[(apply_fn, params), ...]``; module ``k`` computes ``z[k+1] = apply_fn(params, z[k])``.
        ``params=None`` marks a parameter-free module (e.g. a ReLU), called as ``apply_fn(None, z)``.

    Returns:
      A function of the input ``z0`` returning one ``ModuleJacobian`` per module, in order.
    """

    def run(z0) -> list[ModuleJacobian]:
        out, z = [], z0
        for apply_fn, params in stages:
            z_next = apply_fn(params, z)
            if params is None:
                d_state, d_weights = jacrev(apply_fn, argnums=1)(None, z), None
            else:
                d_weights, d_state = jacrev(apply_fn, argnums=(0, 1))(params, z)
            out.append(ModuleJacobian(z, z_next, d_state, d_weights))
            z = z_next
        return out

    return run


def backprop_jacobians(jacobians: Sequence[ModuleJacobian], dc_dz_out) -> tuple[list, list]:
    """Multiply the row vector dc/dz[K] down through the modules' Jacobians.

    Args:
      jacobians: the output of ``module_jacobians``.
      dc_dz_out: dc/dz[K], the cost's gradient with respect to the last module's output.

    Returns:
      ``(dc_dz, dc_dw)``: ``dc_dz[k]`` is dc/dz[k] for ``k = 0..K`` (so ``dc_dz[-1] is dc_dz_out``);
      ``dc_dw[k]`` is dc/dw_k, a pytree like module ``k``'s parameters (None if it has none).
    """
    dc_dz = [dc_dz_out]
    dc_dw = []
    for jac in reversed(jacobians):
        row = dc_dz[0]
        n = np.ndim(jac.z_out)
        # [1 x d_out] . [d_out x d_in]: contract the row vector with the Jacobian's leading (output) axes
        dc_dz.insert(0, jnp.tensordot(row, jac.d_state, axes=n))
        dc_dw.insert(
            0, None if jac.d_weights is None else jax.tree.map(lambda j: jnp.tensordot(row, j, axes=n), jac.d_weights)
        )
    return dc_dz, dc_dw
