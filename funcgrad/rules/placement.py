"""VJP rules for placement primitives: where a value lives, not what it is.

Each is the identity on values, so its VJP moves the cotangent back: to the
device the value came from (``device_put``), under the same sharding
constraint (``sharding_constraint``, as JAX's transpose does), or back to the
operand's sharding (``reshard``).
"""

from __future__ import annotations

import jax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from funcgrad.core import jax_compat as jc
from funcgrad.core.registry import defvjp


@defvjp("device_put", symbolic_zeros=True)
def device_put_vjp(ct, *xs, out, devices, srcs, **params):
    """ct_x = device_put(ct, x's source) (each cotangent goes back where its operand came from)"""
    # several operands may be moved at once; each cotangent goes back to its operand's source
    return [c if c is None or src is None else jax.device_put(c, src) for c, src in zip(ct, srcs)]


@defvjp("sharding_constraint")
def sharding_constraint_vjp(ct, x, *, out, sharding, **params):
    """ct_x = with_sharding_constraint(ct, sharding)"""
    return (jax.lax.with_sharding_constraint(ct, sharding),)


@defvjp("reshard")
def reshard_vjp(ct, x, *, out, **params):
    """ct_x = reshard(ct, x's sharding)"""
    # back to the operand's own sharding; an operand outside any mesh was replicated
    sharding = jax.typeof(x).sharding
    if sharding.mesh.empty:
        sharding = NamedSharding(jax.typeof(out).sharding.mesh, P())
    elif jc.has_reduced_axes(sharding):
        sharding = jc.cotangent_type(sharding)  # an unreduced operand's cotangent is reduced, and back
    return (jax.sharding.reshard(ct, sharding),)
