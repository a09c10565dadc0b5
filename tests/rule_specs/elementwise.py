"""Rows for elementwise primitives (funcgrad/rules/elementwise.py)."""

import jax.numpy as jnp
import numpy as np
from jax import lax

from tests.rule_specs import RuleSpec, binary, unary

POS = dict(low=0.2, high=3.0)
UNIT = dict(low=-0.9, high=0.9)

SPECS = [
    RuleSpec("add", lax.add, binary()),
    RuleSpec("sub", lax.sub, binary()),
    RuleSpec("mul", lax.mul, binary()),
    RuleSpec("div", lax.div, binary(low2=0.5, high2=2.0)),
    RuleSpec("neg", lax.neg, unary()),
    RuleSpec("max", lax.max, binary(), kinks=[([1.0, 2.0, -1.0], [1.0, 0.0, -1.0])]),
    RuleSpec("min", lax.min, binary(), kinks=[([1.0, 2.0, -1.0], [1.0, 0.0, -1.0])]),
    RuleSpec("integer_pow", lambda x: lax.integer_pow(x, 3), unary(), kinks=[([0.0, 1.0],)]),
    RuleSpec("integer_pow", lambda x: lax.integer_pow(x, 0), unary(), name="integer_pow_0"),
    RuleSpec("integer_pow", lambda x: lax.integer_pow(x, -2), unary(**POS), name="integer_pow_neg"),
    RuleSpec("square", lax.square, unary()),
    RuleSpec("pow", lax.pow, binary(low=0.3, high=2.0), kinks=[([0.0, 2.0], [2.0, 0.0])]),
    RuleSpec("pow", lambda x: lax.pow(x, jnp.int32(3)), unary(), name="pow_int_exponent", kinks=[([0.0, -1.5],)]),
    RuleSpec("atan2", lax.atan2, binary(low=0.5, high=2.0)),
    RuleSpec("rem", lax.rem, binary(low2=0.7, high2=1.9)),
    RuleSpec(
        "clamp",
        lambda lo, x, hi: lax.clamp(lo, x, hi),
        lambda rng, dt, case: (
            None
            if case != "random"
            else [
                rng.uniform(-2, 0, (3, 4)).astype(dt),
                rng.uniform(-2, 2, (3, 4)).astype(dt),
                rng.uniform(0, 2, (3, 4)).astype(dt),
            ]
        ),
        kinks=[([-0.5, -0.5, -0.5, 1.0], [-0.5, 0.0, 0.5, 1.0], [0.5, 0.5, 0.5, 1.0])],
    ),
    RuleSpec("abs", lax.abs, unary(), kinks=[([0.0, -1.0, 1.0],)]),
    RuleSpec("sign", lax.sign, unary(), kinks=[([0.0, -1.0],)]),
    RuleSpec("exp", lax.exp, unary()),
    RuleSpec("exp2", lax.exp2, unary()),
    RuleSpec("log", lax.log, unary(**POS)),
    RuleSpec("log1p", lax.log1p, unary(**UNIT)),
    RuleSpec("expm1", lax.expm1, unary()),
    RuleSpec("sqrt", lax.sqrt, unary(**POS)),
    RuleSpec("rsqrt", lax.rsqrt, unary(**POS)),
    RuleSpec("cbrt", lax.cbrt, unary(**POS)),
    RuleSpec("logistic", lax.logistic, unary()),
    RuleSpec("tanh", lax.tanh, unary()),
    RuleSpec("sin", lax.sin, unary()),
    RuleSpec("cos", lax.cos, unary()),
    RuleSpec("tan", lax.tan, unary(low=-1.2, high=1.2)),
    RuleSpec("asin", lax.asin, unary(**UNIT)),
    RuleSpec("acos", lax.acos, unary(**UNIT)),
    RuleSpec("atan", lax.atan, unary()),
    RuleSpec("sinh", lax.sinh, unary()),
    RuleSpec("cosh", lax.cosh, unary()),
    RuleSpec("asinh", lax.asinh, unary()),
    RuleSpec("acosh", lax.acosh, unary(low=1.2, high=3.0)),
    RuleSpec("atanh", lax.atanh, unary(**UNIT)),
    RuleSpec("erf", lax.erf, unary()),
    RuleSpec("erfc", lax.erfc, unary()),
    RuleSpec("erf_inv", lax.erf_inv, unary(**UNIT)),
    RuleSpec("lgamma", lax.lgamma, unary(**POS)),
    RuleSpec("digamma", lax.digamma, unary(**POS), rtol=1e-4),
    RuleSpec(
        "select_n",
        lambda p, a, b: lax.select_n(p, a, b),
        lambda rng, dt, case: (
            None
            if case != "random"
            else [
                rng.uniform(size=(3, 4)) > 0.5,
                rng.normal(size=(3, 4)).astype(dt),
                rng.normal(size=(3, 4)).astype(dt),
            ]
        ),
    ),
    RuleSpec(
        "select_n",
        lambda p, a, b, c: lax.select_n(p, a, b, c),
        lambda rng, dt, case: (
            None
            if case != "random"
            else [rng.integers(0, 3, (3, 4)).astype(np.int32), *(rng.normal(size=(3, 4)).astype(dt) for _ in range(3))]
        ),
        name="select_n_3way",
    ),
    # zero by definition: the output depends on x only through a comparison or rounding
    *[
        RuleSpec(
            p,
            (lambda f: lambda x, y: x * f(x, y).astype(x.dtype))(f),
            binary(),
            name=p,
            kinks=[([1.0, 2.0], [1.0, 3.0])],
        )
        for p, f in [("eq", lax.eq), ("ne", lax.ne), ("lt", lax.lt), ("le", lax.le), ("gt", lax.gt), ("ge", lax.ge)]
    ],
    *[
        RuleSpec(p, (lambda f: lambda x: x * f(x))(f), unary(), name=p, kinks=[([0.5, -0.5, 0.0],)])
        for p, f in [("floor", lax.floor), ("ceil", lax.ceil), ("round", lax.round)]
    ],
    RuleSpec("is_finite", lambda x: x * lax.is_finite(x).astype(x.dtype), unary()),
    *[
        RuleSpec(p, (lambda f: lambda x: x * f(x > 0, x < 1).astype(x.dtype))(f), unary(), name=p)
        for p, f in [("and", lax.bitwise_and), ("or", lax.bitwise_or), ("xor", lax.bitwise_xor)]
    ],
    RuleSpec("not", lambda x: x * lax.bitwise_not(x > 0).astype(x.dtype), unary()),
    *[
        RuleSpec(p, (lambda f: lambda x: x * f(jnp.int32(7), jnp.int32(1)).astype(x.dtype))(f), unary(), name=p)
        for p, f in [
            ("shift_left", lax.shift_left),
            ("shift_right_logical", lax.shift_right_logical),
            ("shift_right_arithmetic", lax.shift_right_arithmetic),
        ]
    ],
    RuleSpec("population_count", lambda x: x * lax.population_count(jnp.int32(7)).astype(x.dtype), unary()),
    RuleSpec("clz", lambda x: x * lax.clz(jnp.int32(7)).astype(x.dtype), unary()),
]
