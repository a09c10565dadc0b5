"""Rows for ``checkpoint`` and ``name`` (funcgrad/rules/checkpoint.py): one per policy of
``jax.checkpoint_policies``, each on a body where the policy saves something different."""

import jax
import jax.numpy as jnp
from jax.ad_checkpoint import checkpoint_name

from tests.rule_specs import RuleSpec, fixed, unary

policies = jax.checkpoint_policies


def _block(x, w):
    # two products (one batched), named values, transcendentals whose rules read inputs or outputs,
    # and a second output that no cotangent may reach
    h = checkpoint_name(jnp.tanh(x @ w), "h")
    b = jnp.einsum("bij,bjk->bik", h[None], h.T[None])[0]
    y = checkpoint_name(jnp.sin(b) * h[:, :1], "y")
    return jnp.exp(y).sum(axis=0) + h.sum(), x.sum()


def _args(rng, dt):
    return [rng.normal(size=(3, 4)).astype(dt) * 0.5, rng.normal(size=(4, 3)).astype(dt) * 0.5]


POLICIES = {
    "none": None,
    "everything_saveable": policies.everything_saveable,
    "nothing_saveable": policies.nothing_saveable,
    "dots_saveable": policies.dots_saveable,
    "dots_with_no_batch_dims_saveable": policies.dots_with_no_batch_dims_saveable,
    "save_only_these_names": policies.save_only_these_names("h"),
    "save_any_names_but_these": policies.save_any_names_but_these("h"),
    "save_from_both_policies": policies.save_from_both_policies(
        policies.dots_with_no_batch_dims_saveable, policies.save_only_these_names("y")
    ),
    "offload_dot_with_no_batch_dims": policies.offload_dot_with_no_batch_dims("device", "pinned_host"),
    "save_and_offload_only_these_names": policies.save_and_offload_only_these_names(
        names_which_can_be_saved=["h"],
        names_which_can_be_offloaded=["y"],
        offload_src="device",
        offload_dst="pinned_host",
    ),
}

SPECS = [
    RuleSpec("checkpoint", jax.checkpoint(lambda x: jnp.sin(jnp.sin(x)) * x), unary()),
    *(
        RuleSpec(
            "checkpoint",
            jax.checkpoint(_block, policy=policy),
            fixed(_args),
            name=f"checkpoint_{key}",
            # JAX before 0.6 offloads only under jit (its eager jax.vjp refuses): JAX differentiates it jitted
            reference=jax.jit(jax.checkpoint(_block, policy=policy)) if "offload" in key else None,
        )
        for key, policy in POLICIES.items()
    ),
    RuleSpec(
        "checkpoint",
        jax.checkpoint(lambda x, y: (jnp.tanh(x @ y), x.sum()), prevent_cse=False, policy=policies.dots_saveable),
        fixed(lambda rng, dt: [rng.normal(size=(2, 3)).astype(dt), rng.normal(size=(3, 2)).astype(dt)]),
        name="checkpoint_no_prevent_cse",
    ),
    RuleSpec(
        "name",
        jax.checkpoint(lambda x: jnp.sin(checkpoint_name(x * 2, "h")), policy=policies.save_only_these_names("h")),
        fixed(lambda rng, dt: [rng.uniform(-1.0, 1.0, (4,)).astype(dt)]),
        name="checkpoint_name",
    ),
]
