"""VJP rules for collectives over named axes (``shard_map``, ``vmap(axis_name=...)``, ``pmap``).

Each collective is linear, so its VJP is its transpose, taken from JAX's
conventions (jax/_src/lax/parallel.py):

* ``psum`` is treated as psum + pbroadcast, so its transpose sums over the named
  axes again; positional axes (a plain reduction) broadcast back.
* with varying-manual-axes checking (``shard_map``'s default), ``psum`` is
  ``psum_invariant`` (varying -> invariant), whose transpose is ``pvary``
  (invariant -> varying), and the other way round.
* ``all_gather`` <-> ``psum_scatter``; ``ppermute`` -> the inverse permutation;
  ``all_to_all`` -> split and concat axes swapped.
* ``pbroadcast`` has no rule: JAX lowers it only on GPU and cannot batch it, so
  funcgrad could not test one here (docs/coverage.md lists it).
* ``axis_index`` has an integer output: no gradient flows.
"""

from __future__ import annotations

import jax
import numpy as np
from jax import lax

from funcgrad.core.nested import differentiated, float_only, graph_backward, scatter_back
from funcgrad.core.registry import defvjp


def _split_axes(axes):
    named = tuple(a for a in axes if not isinstance(a, int))
    positional = tuple(a for a in axes if isinstance(a, int))
    return named, positional


@defvjp("psum")
def psum_vjp(ct, x, *, out, axes, axis_index_groups=None, **params):
    """ct_x = broadcast(ct) over the summed array axes, psum(ct) over the named axes"""
    named, positional = _split_axes(axes)
    if positional:  # a reduction over array axes: broadcast back
        kept = tuple(a for a in range(np.ndim(x)) if a not in positional)
        ct = lax.broadcast_in_dim(ct, np.shape(x), kept)
    if named:
        ct = lax.psum(ct, named, axis_index_groups=axis_index_groups)
    return (ct,)


@defvjp("psum_invariant")
def psum_invariant_vjp(ct, x, *, out, axes, **params):
    """ct_x = pcast(ct, to varying) (the transpose of summing varying values to an invariant one)"""
    # varying -> invariant sum; its transpose makes the (invariant) cotangent varying again
    return (lax.pcast(ct, tuple(axes), to="varying"),)


@defvjp("pvary")
def pvary_vjp(ct, x, *, out, axes, **params):
    """ct_x = psum(ct) over the axes (the transpose of making an invariant value varying)"""
    # invariant -> varying; the transpose sums the varying cotangents into an invariant one
    return (lax.psum(ct, tuple(axes)),)


@defvjp("all_gather")
def all_gather_vjp(ct, x, *, out, all_gather_dimension, axis_name, axis_index_groups, tiled, **params):
    """ct_x = psum_scatter(ct) over the axis: each member gets the sum of its gathered slice"""
    return (
        lax.psum_scatter(
            ct, axis_name, scatter_dimension=all_gather_dimension, axis_index_groups=axis_index_groups, tiled=tiled
        ),
    )


@defvjp("all_gather_invariant")
def all_gather_invariant_vjp(ct, x, *, out, all_gather_dimension, axis_name, axis_size, tiled, **params):
    """ct_x = ct[my slice] (every member holds the whole result; its own slice is its cotangent)"""
    # every member holds the whole (invariant) result: member i's cotangent is its own slice of it
    size = np.shape(ct)[all_gather_dimension] // axis_size
    start = lax.axis_index(axis_name) * size
    ct_x = lax.dynamic_slice_in_dim(ct, start, size, axis=all_gather_dimension)
    return (ct_x if tiled else lax.squeeze(ct_x, [all_gather_dimension]),)


@defvjp("reduce_scatter")
def reduce_scatter_vjp(ct, x, *, out, scatter_dimension, axis_name, axis_index_groups, tiled, **params):
    """ct_x = all_gather(ct) along the scatter dimension"""
    return (lax.all_gather(ct, axis_name, axis_index_groups=axis_index_groups, axis=scatter_dimension, tiled=tiled),)


@defvjp("ppermute")
def ppermute_vjp(ct, x, *, out, axis_name, perm, **params):
    """ct_x = ppermute(ct) with the permutation inverted (each cotangent goes back to its sender)"""
    # send each cotangent back where its value came from
    return (lax.ppermute(ct, axis_name, [(dst, src) for src, dst in perm]),)


@defvjp("all_to_all")
def all_to_all_vjp(ct, x, *, out, axis_name, split_axis, concat_axis, axis_index_groups, tiled, **params):
    """ct_x = all_to_all(ct) with split and concat axes swapped"""
    return (lax.all_to_all(ct, axis_name, concat_axis, split_axis, axis_index_groups=axis_index_groups, tiled=tiled),)


# ------------------------------------------------------------------ shard_map


def _mentioned(spec) -> set:
    names = set()
    for part in spec:
        if part is None:
            continue
        names.update(part if isinstance(part, tuple) else (part,))
    return names


def _unmentioned(mesh, spec, manual_axes) -> tuple:
    """Manual mesh axes a spec does not shard over (the value is replicated across them)."""
    return tuple(a for a in mesh.axis_names if a in manual_axes and a not in _mentioned(spec))


@defvjp("shard_map", symbolic_zeros=True)
def shard_map_vjp(ct, *args, out, jaxpr, mesh, in_specs, out_specs, check_vma, **params):
    """ct_args = shard_map of the body's backward sweep: each shard differentiates its own piece"""
    # the backward pass is another shard_map: each shard differentiates its own piece of the body.
    # Without varying-axes checks (check_vma=False), JAX's transpose splits a replicated output's
    # cotangent evenly over the copies and sums a replicated input's cotangent over them.
    body = jaxpr
    manual = params.get("newly_manual_axes", params.get("manual_axes", frozenset(mesh.axis_names)))
    cts = float_only(ct, body.out_types)
    wrt = differentiated(body.in_types)
    if not any(wrt):
        return [None] * len(args)
    keep = [c is not None for c in cts]
    sizes = dict(zip(mesh.axis_names, mesh.axis_sizes))

    def backward(args, kept_cts):
        it = iter(kept_cts)
        full = [next(it) if k else None for k in keep]
        if not check_vma:
            # a Python int (weakly typed): the division stays in the cotangent's dtype, whatever the promotion mode
            full = [c if c is None else c / int(np.prod([sizes[a] for a in _unmentioned(mesh, s, manual)], dtype=int))
                    for c, s in zip(full, out_specs)]  # fmt: skip
        in_cts = graph_backward(body, args, full, wrt)
        if not check_vma:
            diff_specs = [s for s, w in zip(in_specs, wrt) if w]
            in_cts = [lax.psum(c, axes) if (axes := _unmentioned(mesh, s, manual)) else c
                      for c, s in zip(in_cts, diff_specs)]  # fmt: skip
        return in_cts

    kept = [c for c in cts if c is not None]
    ct_specs = tuple(s for s, k in zip(out_specs, keep) if k)
    ct_args = jax.shard_map(
        backward,
        mesh=mesh,
        in_specs=(list(in_specs), list(ct_specs)),
        out_specs=[s for s, w in zip(in_specs, wrt) if w],
        axis_names=set(manual),
        check_vma=check_vma,
    )(list(args), kept)
    return scatter_back(ct_args, wrt)
