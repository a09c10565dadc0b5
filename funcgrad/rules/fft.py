"""VJP rule for ``fft`` (``jnp.fft.fft``/``ifft``/``rfft``/``irfft``/``fft2``/``fftn``, ``lax.fft``).

Each FFT type is linear, so its VJP is its transpose, applied to the cotangent
(JAX's convention for complex values: the transpose, not the adjoint). Ported
from JAX's transpose rules (``jax/_src/lax/fft.py``):

* FFT, IFFT: the DFT matrix is symmetric, so each is its own transpose.
* RFFT keeps only the non-negative frequencies of a real signal; its transpose
  is ``N * irfft(conj(ct) / mask)``, where the mask (1 at DC and Nyquist, 2
  elsewhere) undoes the Hermitian doubling that ``irfft`` applies.
* IRFFT reads the kept frequencies as a Hermitian spectrum; its transpose is
  ``conj(mask * rfft(ct) / N)``, counting each duplicated frequency twice.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
from jax import lax

from funcgrad.core.registry import defvjp


def _hermitian_mask(m: int, n_last: int, dtype, ndim: int):
    """1 for the DC (and, for even ``n_last``, Nyquist) entry of ``m`` kept frequencies, 2 for the others,
    shaped to broadcast along the last axis of an ``ndim``-d array."""
    mask = jnp.full((m,), 2.0, dtype).at[0].set(1.0)
    if n_last % 2 == 0:
        mask = mask.at[m - 1].set(1.0)
    return lax.expand_dims(mask, tuple(range(ndim - 1)))


def _rfft_transpose(ct, fft_lengths):
    n = math.prod(fft_lengths)
    mask = _hermitian_mask(ct.shape[-1], fft_lengths[-1], ct.dtype, ct.ndim)
    return n * lax.fft(lax.conj(ct) / mask, lax.FftType.IRFFT, fft_lengths)


def _irfft_transpose(ct, fft_lengths):
    spectrum = lax.fft(ct, lax.FftType.RFFT, fft_lengths)
    mask = _hermitian_mask(spectrum.shape[-1], fft_lengths[-1], spectrum.dtype, spectrum.ndim)
    scale = 1 / math.prod(fft_lengths)
    # JAX's convention for complex gradients (jax-ml/jax#6223): conjugate
    return lax.conj(scale * mask * spectrum)


@defvjp("fft")
def fft_vjp(ct, x, *, out, fft_type, fft_lengths, **params):
    """ct_x = fft(ct) (the DFT matrix is symmetric); rfft and irfft transpose with the halved spectrum weighted"""
    fft_lengths = tuple(fft_lengths)
    if fft_type == lax.FftType.RFFT:
        return (_rfft_transpose(ct, fft_lengths),)
    if fft_type == lax.FftType.IRFFT:
        return (_irfft_transpose(ct, fft_lengths),)
    # the DFT (and inverse DFT) matrix is symmetric: its own transpose
    return (lax.fft(ct, fft_type, fft_lengths),)
