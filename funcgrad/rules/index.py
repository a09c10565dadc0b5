"""VJP rules for indexing: dynamic slices, ``gather`` and the ``scatter`` family.

``x[i]``, ``x[:, idx]``, ``jnp.take`` and ``jnp.take_along_axis`` become a
``gather``; ``x.at[i].set/add/multiply/min/max`` become ``scatter``,
``scatter-add``, ``scatter-mul``, ``scatter-min``, ``scatter-max``. Gather and
scatter-add are each other's transposes (same dimension numbers, read the other
way), so duplicate indices add up their cotangents and out-of-bounds indices
follow the equation's ``mode`` (``clip`` clamps, ``fill``/``drop`` drops).

The rules are JAX's JVP rules transposed (``jax/_src/lax/slicing.py``), written
with public ``jax.lax`` calls, so ties and duplicates resolve as in JAX:
``scatter`` with colliding indices gives the cotangent to the update that won;
``scatter-min/max`` split it evenly among the operand and updates that attain the
result. ``x.at[i].apply(f)`` (a ``scatter`` carrying ``f`` as its ``update_jaxpr``) has
no derivative in JAX and is refused (``NonDifferentiableError``, a ``NotImplementedError``
as JAX's is).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax import lax

from funcgrad.core.accumulation import zeros_like_primal
from funcgrad.core.registry import defvjp
from funcgrad.errors import NonDifferentiableError

# ---------------------------------------------------------------- dynamic slices


def _clamped(starts, operand_shape, sizes):
    """The starts the primitive actually used: each clamped to [0, operand_dim - size], as lax does.

    The equation's starts are the primitive's operands, already wrapped once by ``lax.dynamic_slice``
    (a negative start has the dimension added). ``lax.dynamic_slice``/``dynamic_update_slice`` in the
    rule would wrap a start that is still negative a second time and read elsewhere (-7 on a
    dimension of 5 becomes -2, which the forward clamped to 0 but a second wrap makes 3), so the rule
    clamps first, as the primitive does; clamped starts are non-negative and in range, which neither
    wrapping nor clamping changes again."""
    return [jnp.clip(s, 0, d - n) for s, d, n in zip(starts, operand_shape, sizes)]


@defvjp("dynamic_slice")
def dynamic_slice_vjp(ct, x, *starts, out, slice_sizes, **params):
    """ct_x = zeros with ct written at the (clamped) start; starts get none"""
    # write the slice's cotangent into zeros at the same (clamped) start the forward read from
    zeros = zeros_like_primal(x, jnp.result_type(ct))
    starts_used = _clamped(starts, np.shape(x), slice_sizes)
    return (lax.dynamic_update_slice(zeros, ct, starts_used), *[None] * len(starts))


@defvjp("dynamic_update_slice")
def dynamic_update_slice_vjp(ct, x, update, *starts, out, **params):
    """ct_x = ct with the updated window zeroed, ct_update = ct[window]"""
    # the overwritten window (at the clamped start) goes to the update, the rest to the operand
    starts_used = _clamped(starts, np.shape(x), np.shape(update))
    ct_x = lax.dynamic_update_slice(ct, zeros_like_primal(update, jnp.result_type(ct)), starts_used)
    ct_update = lax.dynamic_slice(ct, starts_used, np.shape(update))
    return (ct_x, ct_update, *[None] * len(starts))


# ------------------------------------------------------------------------ gather


# (gather field, scatter field): the same axes, seen from a gather and from the scatter that undoes it
_GATHER_SCATTER_FIELDS = (
    ("offset_dims", "update_window_dims"),
    ("collapsed_slice_dims", "inserted_window_dims"),
    ("start_index_map", "scatter_dims_to_operand_dims"),
    ("operand_batching_dims", "operand_batching_dims"),
    ("start_indices_batching_dims", "scatter_indices_batching_dims"),
)


@defvjp("gather")
def gather_vjp(
    ct, x, indices, *, out, dimension_numbers, slice_sizes, unique_indices, indices_are_sorted, mode, **params
):
    """ct_x = scatter_add(zeros, indices, ct) (duplicate indices add up)"""
    # transpose of gather: scatter-add the cotangent back; duplicates add up, dropped indices add nothing
    scatter_dn = lax.ScatterDimensionNumbers(**{s: getattr(dimension_numbers, g) for g, s in _GATHER_SCATTER_FIELDS})
    zeros = zeros_like_primal(x, jnp.result_type(ct))
    ct_x = lax.scatter_add(
        zeros, indices, ct, scatter_dn, indices_are_sorted=indices_are_sorted, unique_indices=unique_indices, mode=mode
    )
    return ct_x, None


# ---------------------------------------------------------------------- scatters


def _inverse_gather(dn, x_shape, updates_shape):
    """Gather dimension numbers and slice sizes that read back what a scatter wrote."""
    gather_dn = lax.GatherDimensionNumbers(**{g: getattr(dn, s) for g, s in _GATHER_SCATTER_FIELDS})
    window = iter(dn.update_window_dims)
    slice_sizes = tuple(
        1 if i in dn.inserted_window_dims or i in dn.operand_batching_dims else updates_shape[next(window)]
        for i in range(len(x_shape))
    )
    return gather_dn, slice_sizes


def _gather_back(ct, indices, updates, dn, mode, **kw):
    """The cotangent at each update's target (0 for dropped updates): the transpose of scatter-add."""
    gather_dn, slice_sizes = _inverse_gather(dn, np.shape(ct), np.shape(updates))
    return lax.gather(ct, indices, gather_dn, slice_sizes, mode=mode, **kw)


@defvjp("scatter-add")
def scatter_add_vjp(ct, x, indices, updates, *, out, dimension_numbers, mode, **params):
    """ct_x = ct, ct_updates = ct[indices]"""
    return ct, None, _gather_back(ct, indices, updates, dimension_numbers, mode, fill_value=0)


@defvjp("scatter-sub")
def scatter_sub_vjp(ct, x, indices, updates, *, out, dimension_numbers, mode, **params):
    """ct_x = ct, ct_updates = -ct[indices]"""
    return ct, None, -_gather_back(ct, indices, updates, dimension_numbers, mode, fill_value=0)


@defvjp("scatter-mul")
def scatter_mul_vjp(
    ct, x, indices, updates, *, out, dimension_numbers, indices_are_sorted, unique_indices, mode, **params
):
    """ct_x = scatter_mul(ct, updates), ct_updates[k] = ct[j] · x[j] · Π(other updates on j)"""
    # out[j] = x[j] * prod of the updates landing on j
    dn = dimension_numbers
    kw = dict(indices_are_sorted=indices_are_sorted, unique_indices=unique_indices, mode=mode)
    ct_x = lax.scatter_mul(ct, indices, updates, dn, **kw)
    if unique_indices:  # JAX's rule (it has none for colliding indices)
        return ct_x, None, _gather_back(ct * x, indices, updates, dn, mode, fill_value=0)
    # d out[j] / d u_k = x[j] * prod of the *other* updates on j; no division by u_k, so zeros are exact:
    # with P = prod of the nonzero updates on j and Z = how many are zero,
    # others_k = P / u_k if Z == 0, P if u_k is the only zero, else 0.
    zero = updates == 0
    one = jnp.ones_like(updates)
    nonzero_prod = lax.scatter_mul(jnp.ones_like(x), indices, jnp.where(zero, one, updates), dn, **kw)
    n_zeros = lax.scatter_add(jnp.zeros_like(x), indices, zero.astype(x.dtype), dn, **kw)
    prod_at, zeros_at = (_gather_back(a, indices, updates, dn, mode, fill_value=0) for a in (nonzero_prod, n_zeros))
    others = jnp.where(
        zero, jnp.where(zeros_at == 1, prod_at, 0), jnp.where(zeros_at == 0, prod_at / jnp.where(zero, one, updates), 0)
    )
    return ct_x, None, _gather_back(ct * x, indices, updates, dn, mode, fill_value=0) * others


def _scatter_extremal_vjp(
    ct, x, indices, updates, *, out, dimension_numbers, indices_are_sorted, unique_indices, mode, **params
):
    """ct_x, ct_updates = ct shared equally among the entries (operand and updates) attaining each max/min"""
    # JAX's JVP: out_dot = x_dot + scatter_add(x_dot[i] * (keep_x - 1) / refs + u_dot * win_u); its transpose.
    # Entries attaining the result share the cotangent equally (operand included), as JAX's max does.
    dn = dimension_numbers
    gather_dn, slice_sizes = _inverse_gather(dn, np.shape(x), np.shape(updates))
    at = lambda a: lax.gather(a, indices, gather_dn, slice_sizes)  # noqa: E731  (JAX's default mode)
    add_at = lambda a: lax.scatter_add(jnp.zeros_like(x), indices, a, dn)  # noqa: E731
    initial, target = at(x), at(out)
    update_wins, operand_kept = updates == target, initial == target
    one, zero = jnp.ones_like(updates), jnp.zeros_like(updates)
    n_wins = at(add_at(jnp.where(update_wins, one, zero)))
    n_refs = at(add_at(one))
    update_coef = jnp.where(update_wins, jnp.where(operand_kept, 1 / (n_wins + 1), 1 / n_wins), zero)
    operand_coef = (-1.0 + jnp.where(operand_kept, 1 / (n_wins + 1), zero)) / n_refs
    ct_at = _gather_back(ct, indices, updates, dn, mode, fill_value=0)
    ct_x = ct + add_at(ct_at * operand_coef)
    return ct_x, None, ct_at * update_coef


defvjp("scatter-max", _scatter_extremal_vjp)
defvjp("scatter-min", _scatter_extremal_vjp)


_SCATTER_APPLY_REFUSAL = (
    "cannot reverse-differentiate 'scatter' with an applied function (x.at[i].apply(f), lax.scatter_apply): "
    "scatter_apply JVP not implemented, in JAX either (it raises NotImplementedError); funcgrad refuses "
    "it too rather than return a zero gradient for the entries f was applied to.\n  fix: write the update "
    "out, x.at[i].set(f(x[i])), which is differentiable (a gather, f, and a scatter)."
)


@defvjp("scatter")
def scatter_vjp(ct, x, indices, updates, *, out, dimension_numbers, indices_are_sorted, unique_indices, mode, **params):
    """ct_x = ct where no update wrote, ct_updates = ct[indices] for the update that wrote each entry"""
    if params.get("update_jaxpr") is not None:
        # lax.scatter binds no update_jaxpr; scatter_apply binds the applied function as one, and
        # JAX's scatter JVP refuses exactly then
        raise NonDifferentiableError(_SCATTER_APPLY_REFUSAL)
    dn = dimension_numbers
    kw = dict(indices_are_sorted=indices_are_sorted, unique_indices=unique_indices, mode=mode)
    ct_updates = _gather_back(ct, indices, updates, dn, mode, fill_value=0)
    if unique_indices:  # overwritten entries get nothing; each update gets its target's cotangent
        return lax.scatter(ct, indices, jnp.zeros_like(ct_updates), dn, **kw), None, ct_updates
    # colliding indices (JAX's scheme): scatter each update's id, read the ids back; an update whose
    # id survived is the one that wrote the output, and operand entries never written keep their cotangent
    ids_shape = list(np.shape(updates))
    for d in dn.update_window_dims:
        ids_shape[d] = 1
    ids = lax.broadcast_in_dim(
        lax.reshape(lax.iota(np.uint32, int(np.prod(ids_shape))) + np.uint32(1), ids_shape),
        np.shape(updates),
        tuple(range(len(ids_shape))),
    )
    written = lax.scatter(jnp.zeros(np.shape(x), np.uint32), indices, ids, dn, **kw)
    gather_dn, slice_sizes = _inverse_gather(dn, np.shape(x), np.shape(updates))
    won = ids == lax.gather(written, indices, gather_dn, slice_sizes)
    ct_x = jnp.where(written == 0, ct, jnp.zeros_like(ct))
    return ct_x, None, jnp.where(won, ct_updates, jnp.zeros_like(ct_updates))
