"""Rows for placement primitives (funcgrad/rules/placement.py), on this process's one CPU device."""

import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from tests.rule_specs import RuleSpec, fixed

# placement does not depend on the shape: one random case per dtype
ARGS = fixed(lambda rng, dt: [rng.normal(size=(3, 4)).astype(dt)])
AUTO = jax.make_mesh((1,), ("i",), axis_types=(jax.sharding.AxisType.Auto,))
EXPLICIT = jax.make_mesh((1,), ("i",), axis_types=(jax.sharding.AxisType.Explicit,))


def _resharded(x):
    spec = P(*[None] * (x.ndim - 1), "i") if x.ndim else P()
    return jax.sharding.reshard(jnp.sin(x), NamedSharding(EXPLICIT, spec)) * 2


SPECS = [
    RuleSpec("device_put", lambda x: jax.device_put(jnp.sin(x), jax.devices()[0]), ARGS),
    RuleSpec(
        "sharding_constraint",
        lambda x: jax.lax.with_sharding_constraint(jnp.sin(x), NamedSharding(AUTO, P())),
        ARGS,
    ),
    RuleSpec("reshard", _resharded, ARGS),
]
