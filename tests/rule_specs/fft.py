"""Rows for ``fft`` (funcgrad/rules/fft.py): each FFT type, one or several axes, even and odd lengths.

Complex inputs are built from two real arrays with ``lax.complex``, so both
parts of the input cotangent are checked; complex outputs get complex cotangents.
"""

import jax.numpy as jnp
from jax import lax

from tests.rule_specs import RuleSpec, fixed

# variants of the primitive run in float64 only; its first row also runs in float32
F64 = ("float64",)


def parts(*shape):
    """Builder: the real and imaginary parts of a complex input."""
    return fixed(lambda rng, dt: [rng.normal(size=shape).astype(dt), rng.normal(size=shape).astype(dt)])


def real(*shape):
    return fixed(lambda rng, dt: [rng.normal(size=shape).astype(dt)])


SPECS = [
    RuleSpec("fft", lambda re, im: jnp.fft.fft(lax.complex(re, im)), parts(2, 5), name="fft_complex"),
    RuleSpec("fft", lambda x: jnp.fft.fft(x, axis=0), real(4, 3), name="fft_real_input", dtypes=F64),
    RuleSpec("fft", lambda re, im: jnp.fft.ifft(lax.complex(re, im)), parts(2, 4), name="ifft", dtypes=F64),
    RuleSpec("fft", lambda x: jnp.fft.rfft(x), real(2, 6), name="rfft_even"),
    RuleSpec("fft", lambda x: jnp.fft.rfft(x) * jnp.arange(1.0, 4.0), real(2, 5), name="rfft_odd", dtypes=F64),
    RuleSpec("fft", lambda re, im: jnp.fft.irfft(lax.complex(re, im)), parts(2, 4), name="irfft_even"),
    RuleSpec("fft", lambda re, im: jnp.fft.irfft(lax.complex(re, im), n=5), parts(2, 3), name="irfft_odd", dtypes=F64),
    RuleSpec("fft", lambda re, im: jnp.fft.fft2(lax.complex(re, im)), parts(3, 4), name="fft2", dtypes=F64),
    RuleSpec("fft", lambda x: jnp.fft.rfftn(x), real(2, 3, 4), name="rfftn", dtypes=F64),
    RuleSpec(
        "fft", lambda re, im: jnp.fft.irfftn(lax.complex(re, im), s=(3, 4)), parts(3, 3), name="irfftn", dtypes=F64
    ),
    RuleSpec("fft", lambda re, im: jnp.fft.ifftn(lax.complex(re, im)), parts(2, 2, 3), name="ifftn", dtypes=F64),
]
