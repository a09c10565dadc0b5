"""Rows for control flow (funcgrad/rules/control.py); checkpoint's are in checkpoint.py.

``while`` and the host callbacks are refused (``defnovjp``), so they have no
rows here; tests/test_control_flow.py checks their error messages.
"""

import jax.numpy as jnp
import numpy as np
from jax import lax

from tests.rule_specs import RuleSpec, fixed, unary


def vector(n):
    return lambda rng, dt: [rng.uniform(-1.0, 1.0, (n,)).astype(dt)]


def _rnn_step(c, x):
    # a carry, a stacked output and an integer carry passed through untouched
    h, i = c
    h = jnp.tanh(h * 0.9 + x)
    return (h, i + 1), jnp.sin(h) * x


def _scan(reverse=False, unroll=1):
    def fn(x):
        (h, _), ys = lax.scan(_rnn_step, (x[0], jnp.int32(0)), x, reverse=reverse, unroll=unroll)
        return h, ys

    return fn


def _scan_with_consts(w, x):
    # w is closed over by the body: a const of the scan, whose cotangent is summed over iterations
    return lax.scan(lambda c, xi: (jnp.tanh(w @ c + xi), c.sum()), jnp.zeros_like(w[0]), x)


def _cond_two_outputs(x):
    # several operands and outputs, one of them an integer
    return lax.cond(
        x.sum() > 0,
        lambda a, b: (jnp.sin(a) * b, jnp.int32(1), a),
        lambda a, b: (jnp.cos(a), jnp.int32(2), a * b),
        x,
        x * 2,
    )


SPECS = [
    RuleSpec("cond", lambda x: lax.cond(x.sum() > 0, lambda a: jnp.sin(a) * 2, jnp.cos, x), unary()),
    RuleSpec("cond", _cond_two_outputs, fixed(vector(4)), name="cond_several_outputs"),
    RuleSpec(
        "cond",
        lambda i, x: lax.switch(i, [jnp.sin, jnp.cos, lambda a: a**3], x),
        lambda rng, dt, case: None if case != "random" else [np.int32(2), rng.normal(size=(3,)).astype(dt)],
        argnums=(1,),
        name="switch",
    ),
    RuleSpec("scan", _scan(), fixed(vector(5))),
    RuleSpec("scan", _scan(reverse=True), fixed(vector(5)), name="scan_reverse"),
    RuleSpec("scan", _scan(unroll=2), fixed(vector(5)), name="scan_unroll"),
    RuleSpec(
        "scan",
        _scan_with_consts,
        fixed(lambda rng, dt: [rng.normal(size=(3, 3)).astype(dt) * 0.5, rng.normal(size=(4, 3)).astype(dt)]),
        name="scan_consts",
    ),
    RuleSpec(
        "scan", lambda x: lax.fori_loop(0, 3, lambda i, v: jnp.sin(v) * (i + 1), x), fixed(vector(4)), name="fori_loop"
    ),
    RuleSpec(
        "scan",
        lambda x: lax.scan(lambda c, _: (c * 1.5, None), x, None, length=0)[0],
        fixed(vector(3)),
        name="scan_length_0",
    ),
]
