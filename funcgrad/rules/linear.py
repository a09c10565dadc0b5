"""VJP rules for contractions: ``dot_general`` (matmul, einsum, batched products) and ``ragged_dot_general``.

For ``out = dot_general(x, y)`` the cotangent of ``x`` is ``ct`` contracted with
``y`` over ``y``'s kept axes, then transposed back into ``x``'s axis order
(the weighted-sum rule ``dC/dx = dC/ds . W`` of a linear layer, in general form).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax import lax

from funcgrad.core import jax_compat as jc
from funcgrad.core.registry import defvjp


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
    unsorted_axes = list(x_batch) + x_kept + x_contract_sorted_by_y
    out_axes = np.argsort(unsorted_axes)
    sharding = jc.out_sharding(lax.dot_general, _unsorted_sharding(x, ct, unsorted_axes))
    ct_x = lax.dot_general(ct, y, dims, precision=precision, preferred_element_type=preferred, **sharding)
    return lax.transpose(ct_x, tuple(int(a) for a in out_axes))


def _unsorted_sharding(x, ct, unsorted_axes):
    """Under explicit mesh axes, the sharding of the product that is transposed into x's cotangent: x's
    spec read in the product's axis order, so the cotangent is sharded as x is (JAX's
    ``_dot_general_transpose_lhs``; it must be given when contracted axes are sharded). None without
    explicit axes."""
    x_sharding = jc.cotangent_sharding(x, ct)
    if x_sharding is None:
        return None
    return jc.with_partitions(x_sharding, [x_sharding.spec[a] for a in unsorted_axes])


@defvjp("dot_general")
def dot_general_vjp(ct, x, y, *, out, dimension_numbers, precision=None, preferred_element_type=None, **params):
    """ct_x = ct · yᵀ, ct_y = xᵀ · ct (contracting ct with the other operand over its free axes)"""
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


def _ragged_noncontracting_dim(x_ndim, dims) -> int:
    """The lhs ragged dimension, which must be a non-contracting one (the only mode JAX can transpose)."""
    (x_contract, _), (x_batch, _) = dims.dot_dimension_numbers
    (ragged,) = dims.lhs_ragged_dimensions
    if ragged in x_contract or ragged in x_batch:
        kind = "contracting" if ragged in x_contract else "batch"
        raise NotImplementedError(
            f"ragged_dot_general with a ragged {kind} dimension of lhs has no VJP (JAX cannot transpose "
            "it either); only a ragged non-contracting dimension (lax.ragged_dot) is differentiable"
        )
    return ragged


@defvjp("ragged_dot_general")
def ragged_dot_general_vjp(
    ct, x, y, group_sizes, *, out, ragged_dot_dimension_numbers, precision=None, preferred_element_type=None,
    group_offset=None, **params,
):  # fmt: skip
    """ct_x = ct · y[group]ᵀ (ragged in m), ct_y[g] = x[rows of g]ᵀ · ct[rows of g]"""
    # ported from JAX's transpose rule: out[b, m, n] = sum_k x[b, m, k] y[g(m), b, k, n], where g(m) is the
    # group of row m; ct_x contracts ct with y over n (still ragged in m), ct_y contracts x with ct over m
    # (ragged in a contracting dimension: one result per group)
    if group_offset is not None:
        raise NotImplementedError("ragged_dot_general with group_offset has no VJP (JAX has none either)")
    dims = ragged_dot_dimension_numbers
    preferred = (
        preferred_element_type
        if preferred_element_type is not None and jnp.issubdtype(preferred_element_type, jnp.inexact)
        else None
    )
    (x_contract, y_contract), (x_batch, y_batch) = dims.dot_dimension_numbers
    ragged = _ragged_noncontracting_dim(np.ndim(x), dims)
    y_group = list(dims.rhs_group_dimensions)
    x_kept = _remaining(np.ndim(x), x_contract, x_batch)
    y_kept = _remaining(np.ndim(y), y_contract, y_batch, y_group)

    ans_batch, _, ans_y = _ranges_like(x_batch, x_kept, y_kept)
    ct_x_dims = lax.RaggedDotDimensionNumbers(
        dot_dimension_numbers=((ans_y, y_kept), (ans_batch, list(y_batch))),
        lhs_ragged_dimensions=[len(x_batch) + x_kept.index(ragged)],
        rhs_group_dimensions=y_group,
    )
    x_contract_sorted_by_y = list(np.take(np.asarray(x_contract, int), np.argsort(np.asarray(y_contract, int))))
    ct_x = lax.ragged_dot_general(ct, y, group_sizes, ct_x_dims, precision=precision, preferred_element_type=preferred)
    ct_x = lax.transpose(ct_x, tuple(int(a) for a in np.argsort(list(x_batch) + x_kept + x_contract_sorted_by_y)))

    ans_batch, ans_x, _ = _ranges_like(x_batch, x_kept, y_kept)
    ct_y_dims = lax.RaggedDotDimensionNumbers(
        dot_dimension_numbers=((x_kept, ans_x), (list(x_batch), ans_batch)),
        lhs_ragged_dimensions=[ragged],
        rhs_group_dimensions=[],
    )
    y_contract_sorted_by_x = list(np.take(np.asarray(y_contract, int), np.argsort(np.asarray(x_contract, int))))
    ct_y = lax.ragged_dot_general(x, ct, group_sizes, ct_y_dims, precision=precision, preferred_element_type=preferred)
    ct_y = lax.transpose(
        ct_y, tuple(int(a) for a in np.argsort(y_group + list(y_batch) + y_contract_sorted_by_x + y_kept))
    )
    return ct_x, ct_y, None
