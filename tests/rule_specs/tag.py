"""Rows for funcgrad/rules/tag.py, the inspection marker: ``tag`` is the identity and passes its cotangent through."""

import jax.numpy as jnp

import funcgrad
from tests.rule_specs import RuleSpec, unary

SPECS = [
    RuleSpec("tag", lambda x: funcgrad.tag(jnp.sin(x), "s") * x, unary()),
]
