"""Rows for custom_jvp / custom_vjp functions: funcgrad must use the user's rule, not the primal body."""

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from tests.rule_specs import RuleSpec, unary


@jax.custom_jvp
def clip_gradient(x):
    return x


@clip_gradient.defjvp
def _clip_gradient_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return x, t * 0.5  # a rule that differs from the body's derivative (1)


@jax.custom_jvp
def pow_n(x, n):
    return x**n


@pow_n.defjvp
def _pow_n_jvp(primals, tangents):
    x, n = primals
    return pow_n(x, n), n * x ** (n - 1) * tangents[0]


@jax.custom_vjp
def scaled_sin(x, y):
    return jnp.sin(x) * y


def _scaled_sin_fwd(x, y):
    return scaled_sin(x, y), (jnp.cos(x), y, jnp.sin(x))


def _scaled_sin_bwd(res, g):
    cos_x, y, sin_x = res
    return g * cos_x * y * 2.0, g * sin_x  # deliberately not the true derivative in x: bwd must be used


scaled_sin.defvjp(_scaled_sin_fwd, _scaled_sin_bwd)


@jax.custom_vjp
def two_outputs(x):
    return jnp.exp(x), x * 3


two_outputs.defvjp(lambda x: (two_outputs(x), x), lambda x, g: (g[0] * x + g[1],))


_WEIGHTS = np.array([1.0, 2.0, 3.0], np.float32)


@jax.custom_vjp
def weighted_sin(x):
    # the body closes over a NumPy array: the equation gets consts (JAX >= 0.7 hoists array constants)
    return jnp.sin(x) * _WEIGHTS


# fwd returns its input x as a residual: JAX forwards it instead of outputting it (`input_fwds`, an
# index into consts + args since JAX 0.7); funcgrad once indexed args only (IndexError; found on
# jax.experimental.ode.odeint)
weighted_sin.defvjp(
    lambda x: (weighted_sin(x), (x, jnp.cos(x))),
    lambda res, g: (g * res[1] * _WEIGHTS * 2.0,),  # not the body's derivative: bwd must be used
)


def custom_vjp3(fun):
    """``jax.custom_vjp`` as JAX's next implementation makes it (``jax_custom_vjp3=True``, jax >= 0.10):
    the function binds ``call_hi_primitive``, a "hijax" primitive that carries its own VJP interface."""
    from jax._src import config

    if not hasattr(config, "custom_vjp3"):
        return jax.custom_vjp(fun)
    with config.custom_vjp3(True):
        return jax.custom_vjp(fun)


scaled_sin3 = custom_vjp3(lambda x, y: jnp.sin(x) * y)
scaled_sin3.defvjp(_scaled_sin_fwd, _scaled_sin_bwd)


def _symbolic_fwd(x, y):
    # symbolic_zeros=True: fwd gets CustomVJPPrimal pairs (value, perturbed)
    return _scaled_sin_fwd(x.value, y.value)


scaled_sin3_symbolic = custom_vjp3(lambda x, y: jnp.sin(x) * y)
scaled_sin3_symbolic.defvjp(_symbolic_fwd, _scaled_sin_bwd, symbolic_zeros=True)


def _two_args(rng, dt, case):
    return None if case != "random" else [rng.normal(size=(3,)).astype(dt), rng.normal(size=(3,)).astype(dt)]


SPECS = [
    RuleSpec("call_hi_primitive", scaled_sin3, _two_args, name="custom_vjp3", min_jax=(0, 10)),
    RuleSpec(
        "call_hi_primitive", scaled_sin3_symbolic, _two_args, argnums=(1,), name="custom_vjp3_symbolic", min_jax=(0, 10)
    ),
    RuleSpec("custom_jvp_call", jax.nn.relu, unary(), name="relu", kinks=[([0.0, -1.0, 1.0],)]),
    RuleSpec("custom_jvp_call", clip_gradient, unary(), name="custom_jvp_rule_differs"),
    RuleSpec("custom_jvp_call", lambda x: pow_n(x, 3), unary(), name="custom_jvp_int_arg"),
    RuleSpec(
        "custom_vjp_call",
        scaled_sin,
        _two_args,
        name="custom_vjp",
    ),
    RuleSpec("custom_vjp_call", lambda x: sum(two_outputs(x)), unary(), name="custom_vjp_two_outputs"),
    RuleSpec(
        "custom_vjp_call",
        weighted_sin,
        lambda rng, dt, case: None if case == "scalar" else unary(shape=(4, 3))(rng, dt, case),  # last axis 3
        name="custom_vjp_consts_forwarded_residual",
    ),
    RuleSpec(
        "add_any",
        lambda x: (
            lax.add_any_p.bind(x, x * 2) if hasattr(lax, "add_any_p") else jax._src.ad_util.add_jaxvals_p.bind(x, x * 2)
        ),
        unary(),
    ),
]
