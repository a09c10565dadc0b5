"""VJP rules for windowed reductions: sum/avg pooling, max/min pooling, and their helpers.

* ``reduce_window_sum`` is linear; its transpose (JAX's rule) pads the cotangent
  with the strides as interior padding and sums it over the same windows.
* ``reduce_window_max``/``min``: each window's cotangent goes to *one* entry, the
  first maximum (minimum) in the window's row-major order, as XLA's
  ``select_and_scatter`` does in JAX's rule. Ties are not split.
* ``select_and_scatter_add`` and ``select_and_gather_add`` are the primitives JAX's
  own gradient and JVP of max pooling emit; they are linear in their first
  argument and are each other's transposes. With rules for them, funcgrad can
  differentiate functions that call ``jax.grad`` of a pooling layer. (One known
  difference: at ties in a window that overlaps padding, XLA:CPU's
  ``select_and_gather_add`` may visit the window in another order and pick another
  of the tied entries; funcgrad always picks the first in row-major order.)

Instead of XLA's select-and-scatter (not in the public API) the rules list the
window's entries as strided slices of the padded operand (one per window offset)
and pick the winner by comparisons, so the backward pass is made of slices,
pads and selects that funcgrad can differentiate again.

Generic ``reduce_window`` (a custom reducer) has no VJP in JAX either.
"""

from __future__ import annotations

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from funcgrad.core.registry import defnovjp, defvjp
from funcgrad.rules.conv import vjp_lhs_padding


@defvjp("reduce_window_sum")
def reduce_window_sum_vjp(
    ct, x, *, out, window_dimensions, window_strides, padding, base_dilation, window_dilation, **params
):
    """ct_x[i] = Σ ct[w] over the windows w containing x[i]"""
    x_shape = np.shape(x)
    pads = vjp_lhs_padding(
        x_shape, window_dimensions, window_strides, np.shape(ct), padding, base_dilation, window_dilation
    )
    zero = np.zeros((), jnp.result_type(ct))  # a concrete 0, so lax.reduce_window emits reduce_window_sum again
    padded = lax.pad(ct, zero, [(lo, hi, s - 1) for (lo, hi), s in zip(pads, window_strides)])
    # every input entry collects the cotangents of the windows that contain it
    ct_x = lax.reduce_window(
        padded,
        zero,
        lax.add,
        window_dimensions,
        base_dilation,
        [(0, 0)] * len(x_shape),
        window_dilation=window_dilation,
    )
    return (ct_x,)


class _Windows:
    """The entries of every window, one strided slice of the padded, base-dilated operand per window offset."""

    def __init__(self, x_shape, window_dimensions, window_strides, padding, base_dilation, window_dilation):
        self.x_shape = tuple(x_shape)
        self.pad_config = [(lo, hi, b - 1) for (lo, hi), b in zip(padding, base_dilation)]
        # sizes after base dilation (1 + b (n - 1) entries) and padding; a window spans 1 + d (w - 1) entries
        self.padded_shape = [
            lo + hi + (1 + b * (n - 1) if n else 0) for n, (lo, hi), b in zip(x_shape, padding, base_dilation)
        ]
        spans = [1 + d * (w - 1) for w, d in zip(window_dimensions, window_dilation)]
        self.out_shape = tuple(
            (p - span) // s + 1 if p >= span else 0 for p, span, s in zip(self.padded_shape, spans, window_strides)
        )
        self.strides = tuple(window_strides)
        self.window_dimensions, self.window_dilation = tuple(window_dimensions), tuple(window_dilation)
        # window offsets in row-major order: the order XLA's select visits a window
        self.starts = [
            tuple(o * wd for o, wd in zip(offset, window_dilation))
            for offset in itertools.product(*(range(w) for w in window_dimensions))
        ]

    @property
    def tiles(self) -> bool:
        """Whether the windows tile the operand (window = stride, no padding or dilation: 2x2 pooling
        with stride 2), so each entry is in at most one window."""
        return (
            self.window_dimensions == self.strides
            and all(lo == hi == i == 0 for lo, hi, i in self.pad_config)
            and all(d == 1 for d in self.window_dilation)
        )

    def _scatter_tiles(self, ct, best_k):
        # each window's cotangent goes to its selected entry, built in operand space: the operand's covered
        # part seen as (window, offset) pairs per axis, (o0, w0, o1, w1, ...), is a reshape of it that
        # moves no data, so one select writes the result in place; entries past the last whole window
        # get zero. (The general scatter pads one operand-sized array per offset and adds them: on XLA:CPU
        # the largest op of the CNN's backward program. A select over (windows, offsets) followed by a
        # transpose that interleaves them runs as fast, with one more op: docs/speed.md, "Backward programs".)
        n = len(self.out_shape)
        pairs = [d for t, w in zip(self.out_shape, self.window_dimensions) for d in (t, w)]
        window_axes = tuple(range(0, 2 * n, 2))
        offset = None  # row-major index of each entry's offset in its window, the numbering of `starts`
        for axis, w in enumerate(self.window_dimensions):
            along = lax.broadcasted_iota(best_k.dtype, pairs, 2 * axis + 1)
            offset = along if offset is None else offset * w + along
        hot = lax.broadcast_in_dim(best_k, pairs, window_axes) == offset
        spread = lax.broadcast_in_dim(ct, pairs, window_axes)
        picked = jnp.where(hot, spread, jnp.zeros((), jnp.result_type(ct)))
        covered = [t * w for t, w in zip(self.out_shape, self.window_dimensions)]
        tiled = picked.reshape(covered)
        return lax.pad(tiled, jnp.zeros((), tiled.dtype), [(0, x - c, 0) for x, c in zip(self.x_shape, covered)])

    @property
    def empty(self):
        return 0 in self.out_shape or 0 in self.x_shape or not self.starts

    def _limits(self, start):
        return [st + (n - 1) * s + 1 for st, n, s in zip(start, self.out_shape, self.strides)]

    def entries(self, x, fill):
        """One array shaped like the output per window offset: that offset's entry of every window."""
        padded = lax.pad(x, jnp.asarray(fill, jnp.result_type(x)), self.pad_config)
        return [lax.slice(padded, start, self._limits(start), self.strides) for start in self.starts]

    def winner(self, x, select_ge):
        """Index (into ``starts``) of each window's selected entry: the first maximum (ge) or minimum (le)."""
        dtype = jnp.result_type(x)
        fill = -jnp.inf if select_ge else jnp.inf
        if not jnp.issubdtype(dtype, jnp.floating):
            fill = jnp.iinfo(dtype).min if select_ge else jnp.iinfo(dtype).max
        entries = self.entries(x, fill)
        best, best_k = entries[0], jnp.zeros(self.out_shape, np.int32)
        for k, e in enumerate(entries[1:], start=1):
            # the current choice stays unless it fails select(current, e), as in XLA's select_and_scatter
            keep = (best >= e) if select_ge else (best <= e)
            best = jnp.where(keep, best, e)
            best_k = jnp.where(keep, best_k, k)
        return best_k

    def gather(self, t, best_k):
        """Each window's entry of ``t`` at its selected position."""
        out = None
        for k, e in enumerate(self.entries(t, 0)):
            term = jnp.where(best_k == k, e, jnp.zeros_like(e))
            out = term if out is None else out + term
        return out

    def scatter(self, ct, best_k):
        """Transpose of ``gather``: add each window's cotangent into its selected position."""
        if self.tiles:
            return self._scatter_tiles(ct, best_k)
        zero = jnp.zeros((), jnp.result_type(ct))
        total = None
        for k, start in enumerate(self.starts):
            term = jnp.where(best_k == k, ct, jnp.zeros_like(ct))
            config = [
                (st, p - lim, s - 1)
                for st, p, lim, s in zip(start, self.padded_shape, self._limits(start), self.strides)
            ]
            term = lax.pad(term, zero, config)
            total = term if total is None else total + term
        # undo the operand's padding and base dilation
        unpadded = lax.pad(total, zero, [(-lo, -hi, 0) for lo, hi, _ in self.pad_config])
        return lax.slice(unpadded, [0] * len(self.x_shape), np.shape(unpadded), [i + 1 for _, _, i in self.pad_config])


@functools.partial(jax.jit, static_argnames=("to_operand", "select_ge", "window"))
def _route(ct, operand, *, to_operand, select_ge, window):
    """Send cotangents between windows and each window's selected entry of ``operand``.

    Args:
      ct: window-shaped (``to_operand``) or operand-shaped cotangent.
      operand: the array whose window maxima (``select_ge``) or minima are selected.
      to_operand: True to add each window's ``ct`` into its selected entry, False to read ``ct`` there.
      window: (window_dimensions, window_strides, padding, base_dilation, window_dilation).

    Returns:
      An operand-shaped (``to_operand``) or window-shaped array. Jitted: the many small
      slices and pads compile once per configuration instead of one by one.
    """
    windows = _Windows(np.shape(operand), *window)
    if windows.empty:
        return jnp.zeros(windows.x_shape if to_operand else windows.out_shape, jnp.result_type(ct))
    chosen = windows.winner(operand, select_ge)
    return windows.scatter(ct, chosen) if to_operand else windows.gather(ct, chosen)


def _chooser_vjp(select_ge):
    def rule(ct, x, *, out, window_dimensions, window_strides, padding, base_dilation, window_dilation, **params):
        """ct_x[i] = Σ ct[w] over the windows w whose max (min) x[i] is"""
        window = (window_dimensions, window_strides, padding, base_dilation, window_dilation)
        return (_route(ct, x, to_operand=True, select_ge=select_ge, window=window),)

    return rule


defvjp("reduce_window_max", _chooser_vjp(select_ge=True))
defvjp("reduce_window_min", _chooser_vjp(select_ge=False))


def _is_ge(select_prim):
    name = getattr(select_prim, "name", str(select_prim))
    if name not in ("ge", "le"):
        raise NotImplementedError(f"select_prim={name!r}: only ge (max pooling) and le (min pooling) are supported")
    return name == "ge"


@defvjp("select_and_scatter_add")
def select_and_scatter_add_vjp(
    ct, source, operand, *, out, select_prim, window_dimensions, window_strides, padding, **params
):
    """ct_source = ct read back at each window's selected entry; the operand gets none"""
    # out = scatter of source into each window's selected entry; the transpose reads ct back there.
    # The selection depends on operand only through comparisons: no gradient for it, as in JAX.
    ones = (1,) * len(window_dimensions)
    window = (window_dimensions, window_strides, padding, ones, ones)
    return _route(ct, operand, to_operand=False, select_ge=_is_ge(select_prim), window=window), None


@defvjp("select_and_gather_add")
def select_and_gather_add_vjp(
    ct,
    tangents,
    operand,
    *,
    out,
    select_prim,
    window_dimensions,
    window_strides,
    padding,
    base_dilation,
    window_dilation,
    **params,
):
    """ct_tangents = ct scattered back to each window's selected entry; the operand gets none"""
    # out = tangents at each window's selected entry; the transpose scatters ct back there
    window = (window_dimensions, window_strides, padding, base_dilation, window_dilation)
    return _route(ct, operand, to_operand=True, select_ge=_is_ge(select_prim), window=window), None


defnovjp(
    "reduce_window",
    "Linearization failed to produce known values for all output primals (JAX's error): "
    "lax.reduce_window with a custom reducer has no reverse-mode derivative, in JAX either.\n  fix: "
    "reduce with lax.add, lax.max or lax.min and a 0 / -inf / +inf init value (these become "
    "reduce_window_sum/max/min), or write the window product as a product of strided slices (lax.slice) "
    "of the padded input.",
)
