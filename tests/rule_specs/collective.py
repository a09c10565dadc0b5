"""Rows for collectives and shard_map (funcgrad/rules/collective.py).

Collectives only appear inside a mapped context, so each row wraps its body in
``shard_map`` over this process's single CPU device (axis size 1). That checks
the rules' code paths and types; tests/test_collectives.py checks the values on
4 simulated devices, where the collectives actually move data.
"""

import jax
import jax.numpy as jnp
from jax import lax
from jax.sharding import PartitionSpec as P

from tests.rule_specs import RuleSpec, fixed

MESH = jax.make_mesh((1,), ("i",), axis_types=(jax.sharding.AxisType.Auto,))
SHARDED = P("i")


def on_mesh(body, check_vma=True, in_specs=SHARDED, out_specs=SHARDED):
    return lambda x: jax.shard_map(body, mesh=MESH, in_specs=in_specs, out_specs=out_specs, check_vma=check_vma)(x)


def matrix(rng, dt):
    return [rng.normal(size=(4, 3)).astype(dt)]


def row(primitive, body, name, **kw):
    return RuleSpec(primitive, on_mesh(body, **kw), fixed(matrix), name=name)


SPECS = [
    # with varying-axes checks (shard_map's default) psum is psum_invariant, and invariant inputs get pvary
    row("psum_invariant", lambda x: lax.psum(jnp.sin(x), "i"), "psum_invariant", out_specs=P()),
    row("pvary", lambda x: lax.psum(jnp.sin(x), "i"), "pvary", in_specs=P(), out_specs=P()),
    row("psum", lambda x: lax.psum(jnp.sin(x), "i"), "psum", check_vma=False, out_specs=P()),
    row("psum", lambda x: lax.pmean(x**2, "i"), "pmean", check_vma=False),
    RuleSpec("psum", lambda x: lax.psum(jnp.sin(x), 0), fixed(matrix), name="psum_positional_axis"),
    row("all_gather", lambda x: lax.all_gather(jnp.sin(x), "i", axis=1), "all_gather"),
    row("all_gather", lambda x: lax.all_gather(x * 2, "i", axis=0, tiled=True), "all_gather_tiled"),
    row(
        "all_gather_invariant",
        lambda x: lax.all_gather(jnp.sin(x), "i", axis=1, to="invarying"),
        "all_gather_invariant",
        out_specs=P(),
    ),
    row(
        "all_gather_invariant",
        lambda x: lax.all_gather(x * 2, "i", tiled=True, to="invarying"),
        "all_gather_invariant_tiled",
        out_specs=P(),
    ),
    row("reduce_scatter", lambda x: lax.psum_scatter(jnp.sin(x), "i", scatter_dimension=1, tiled=True), "psum_scatter"),
    row("ppermute", lambda x: lax.ppermute(jnp.sin(x), "i", [(0, 0)]), "ppermute"),
    row("all_to_all", lambda x: lax.all_to_all(jnp.sin(x), "i", 0, 1, tiled=True), "all_to_all"),
    row("shard_map", lambda x: jnp.tanh(x) * 2, "shard_map"),
    row("shard_map", lambda x: jnp.tanh(x).sum(0, keepdims=True), "shard_map_unchecked", check_vma=False),
]
