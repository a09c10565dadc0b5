"""VJP rules for user-defined derivatives: ``custom_jvp`` and ``custom_vjp`` functions.

``custom_jvp``: JAX's answer comes from the user's JVP rule, not from the primal
body (``jax.nn.relu`` at 0 has derivative 0 because its rule says so). That
rule is linear in the tangents, so its transpose, the VJP we need, is the VJP
of a linear map: funcgrad traces the rule into a graph and runs its own reverse
sweep over it with respect to the tangent inputs, at tangent zero.

``custom_vjp``: the user's ``fwd`` is run again on the primal inputs to get the
residuals (a recomputation that XLA merges with the forward pass under jit),
then the user's ``bwd`` maps the output cotangents to input cotangents.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from funcgrad.core.interpret import eval_graph
from funcgrad.core.nested import graph_vjp
from funcgrad.core.registry import defvjp
from funcgrad.errors import InputError


# symbolic_zeros: an output nobody used keeps a None cotangent, and the transpose of the rule's
# graph skips the tangent equations only it reaches (JAX's transpose does the same)
@defvjp("custom_jvp_call", symbolic_zeros=True)
def custom_jvp_call_vjp(ct, *primals, out, call, jvp, num_consts, **params):
    args = primals[num_consts:]
    arg_types = [v.type for v in call.inputs[num_consts:]]
    tangent_is_zero = [not t.is_float for t in arg_types]
    rule, out_zeros = jvp.graph(tangent_is_zero)
    # zeros_like keeps each primal's placement (inside shard_map: the axes it varies over),
    # which the rule's graph was traced with
    tangents = [jnp.zeros_like(a, dtype=t.dtype) for a, t, z in zip(args, arg_types, tangent_is_zero) if not z]
    wrt = [False] * len(args) + [True] * len(tangents)
    tangent_cts = [c for c, z in zip(ct, out_zeros) if not z]
    in_cts = graph_vjp(rule, [*args, *tangents], wrt, [None] * len(out_zeros) + tangent_cts)[len(args) :]
    it = iter(in_cts)
    return [None] * num_consts + [None if z else next(it) for z in tangent_is_zero]


@defvjp("custom_vjp_call")
def custom_vjp_call_vjp(ct, *primals, out, call, vjp, num_consts, **params):
    args = primals[num_consts:]
    arg_types = [v.type for v in call.inputs[num_consts:]]
    fwd = vjp.fwd_graph([t.is_float for t in arg_types])
    residuals, _ = vjp.residuals(eval_graph(fwd, *args), primals[:num_consts], args)
    # an integer or boolean output's cotangent is a float0 zero, JAX's convention for the user's bwd
    ct = [c if t.is_float else np.zeros(t.shape, jax.dtypes.float0) for c, t in zip(ct, call.out_types)]
    cts_in = vjp.bwd(residuals, ct)
    if len(cts_in) != len(args):
        raise InputError(
            f"the custom_vjp backward rule of {vjp.name!r} returned {len(cts_in)} cotangents for "
            f"{len(args)} primal inputs\n  fix: return a tuple with one entry per primal input (None for no gradient)"
        )
    return [None] * num_consts + [c if t.is_float else None for c, t in zip(cts_in, arg_types)]
