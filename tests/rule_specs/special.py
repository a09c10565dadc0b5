"""Rows for complex numbers and special functions (funcgrad/rules/special.py)."""

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from tests.rule_specs import RuleSpec, binary, fixed, unary

POS = dict(low=0.3, high=3.0)


def _complex(rng, dt, *shape):
    return (rng.normal(size=shape) + 1j * rng.normal(size=shape)).astype(np.result_type(dt, np.complex64))


def complex_unary(shape=(3, 4)):
    """Complex inputs of the test's precision (complex64 for float32, complex128 for float64); one case."""
    return fixed(lambda rng, dt: [_complex(rng, dt, *shape)])


def _shape_and_x(rng, dt):
    # x on both sides of the series / continued-fraction switch (x > 1 and x > a)
    return [rng.uniform(0.5, 3.0, (2, 3)).astype(dt), rng.uniform(0.2, 4.0, (2, 3)).astype(dt)]


def _gamma_sample(x):
    # a fixed key: the sample depends on the shape parameter only through the sampler
    return jax.random.gamma(jax.random.key(0), x)


SPECS = [
    # complex numbers: each row's output mixes real and complex parts so both transposes are exercised
    RuleSpec("real", lambda z: lax.real(z) * 2 + lax.imag(z), complex_unary()),
    RuleSpec("imag", lambda z: lax.imag(z) * lax.real(z), complex_unary()),
    RuleSpec("conj", lambda z: lax.conj(z) * z, complex_unary(), name="conj_complex"),
    RuleSpec("conj", lambda x: lax.conj(x), unary(), name="conj_real_input"),
    RuleSpec("complex", lambda x, y: lax.complex(x, y) * lax.complex(y, x), binary(), dtypes=("float64",)),
    RuleSpec("abs", lambda z: lax.abs(z), complex_unary(), name="abs_complex"),
    RuleSpec(
        "abs",
        lambda z: lax.abs(z),
        lambda rng, dt, case: None,
        name="abs_complex_zero",
        kinks=[(np.array([0.0, 1.0, -2.0]).astype(np.complex64),)],
        dtypes=("float32",),
    ),
    # special functions, on their domains
    # (igamma's series/continued fractions compile slowly op by op: one case each keeps the table fast)
    RuleSpec("igamma", lax.igamma, fixed(_shape_and_x), rtol=1e-4, atol=1e-6),
    RuleSpec("igammac", lax.igammac, fixed(_shape_and_x), rtol=1e-4, atol=1e-6),
    RuleSpec(
        "polygamma",
        lambda x: lax.polygamma(jnp.full_like(x, 2.0), x),
        unary(**POS),
        rtol=1e-4,
    ),
    RuleSpec(
        "regularized_incomplete_beta",
        lambda x: lax.betainc(jnp.full_like(x, 2.0), jnp.full_like(x, 3.0), x),
        fixed(lambda rng, dt: [rng.uniform(0.05, 0.95, (3, 4)).astype(dt)]),
        rtol=1e-4,
    ),
    RuleSpec("bessel_i0e", lax.bessel_i0e, unary(low=-4.0, high=4.0), kinks=[([0.0, 1e-9, -1.0],)]),
    RuleSpec("bessel_i1e", lax.bessel_i1e, unary(low=-4.0, high=4.0), kinks=[([0.0, 1e-9, -1.0],)], rtol=1e-4),
    RuleSpec(
        "random_gamma",
        _gamma_sample,
        fixed(lambda rng, dt: [rng.uniform(0.5, 3.0, (5,)).astype(dt)]),
        rtol=1e-4,
        atol=1e-6,
        dtypes=("float32",),
    ),
    RuleSpec(
        "random_gamma",
        lambda a: jax.random.loggamma(jax.random.key(1), a),
        fixed(lambda rng, dt: [rng.uniform(0.5, 3.0, (5,)).astype(dt)]),
        name="random_loggamma",
        rtol=1e-4,
        atol=1e-6,
        dtypes=("float64",),
    ),
    RuleSpec(
        "bitcast_convert_type",
        lambda x: x * lax.bitcast_convert_type(x, jnp.int32 if x.dtype == jnp.float32 else jnp.int64).astype(x.dtype),
        unary(),
    ),
]
