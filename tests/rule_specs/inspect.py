"""Rows for funcgrad's inspection markers: ``tag`` is the identity and passes its cotangent through."""

import jax.numpy as jnp

import funcgrad
from tests.rule_specs import RuleSpec, unary

SPECS = [
    RuleSpec("tag", lambda x: funcgrad.tag(jnp.sin(x), "s") * x, unary()),
]
