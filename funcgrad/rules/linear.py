"""VJP rules for contractions: ``dot_general`` (matmul, einsum, batched products).

For ``out = dot_general(x, y)`` the cotangent of ``x`` is ``ct`` contracted with
``y`` over ``y``'s kept axes, then transposed back into ``x``'s axis order
(the weighted-sum rule ``dC/dx = dC/ds . W`` of a linear layer, in general form).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax import lax

from funcgrad.rules.registry import defvjp


def _remaining(n, *removed):
    removed = set(a for r in removed for a in r)
    return [i for i in range(n) if i not in removed]


def _ranges_like(*xs):
    start = 0
    for x in xs:
        yield list(range(start, start + len(x)))
        start += len(x)


def _dot_general_ct_lhs(ct, x, y, dimension_numbers, precision, preferred, swap_ans=False):
    (x_contract, y_contract), (x_batch, y_batch) = dimension_numbers
    x_ndim, y_ndim = np.ndim(x), np.ndim(y)
    x_kept = _remaining(x_ndim, x_contract, x_batch)
    y_kept = _remaining(y_ndim, y_contract, y_batch)
    if swap_ans:
        ans_batch, ans_y, _ = _ranges_like(x_batch, y_kept, x_kept)
    else:
        ans_batch, _, ans_y = _ranges_like(x_batch, x_kept, y_kept)
    dims = ((ans_y, y_kept), (ans_batch, list(y_batch)))
    x_contract_sorted_by_y = list(np.take(np.asarray(x_contract, int), np.argsort(np.asarray(y_contract, int))))
    out_axes = np.argsort(list(x_batch) + x_kept + x_contract_sorted_by_y)
    ct_x = lax.dot_general(ct, y, dims, precision=precision, preferred_element_type=preferred)
    return lax.transpose(ct_x, tuple(int(a) for a in out_axes))


@defvjp("dot_general")
def dot_general_vjp(ct, x, y, *, out, dimension_numbers, precision=None, preferred_element_type=None, **params):
    preferred = (
        preferred_element_type
        if preferred_element_type is not None and jnp.issubdtype(preferred_element_type, jnp.inexact)
        else None
    )
    (x_contract, y_contract), (x_batch, y_batch) = dimension_numbers
    ct_x = _dot_general_ct_lhs(ct, x, y, dimension_numbers, precision, preferred)
    swapped = ((y_contract, x_contract), (y_batch, x_batch))
    ct_y = _dot_general_ct_lhs(ct, y, x, swapped, precision, preferred, swap_ans=True)
    return ct_x, ct_y
