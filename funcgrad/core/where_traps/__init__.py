"""The where-lint: NaN traps in a gradient, found on the traced graph before anything runs.

``jnp.where(x > 0, jnp.sqrt(x), 0.)`` is finite in the forward pass, but the backward pass
differentiates both branches: the branch the where does not select still gets a cotangent, a zero
one, and the VJP rule of ``sqrt`` multiplies it by ``0.5 / sqrt(0) = inf``. ``0 * inf`` is NaN, and
``select_n``'s VJP adds it into ``x``'s gradient (JAX does the same). This package finds such traps
statically, on funcgrad's ``Graph``:

* **where traps**: a ``select_n`` (what ``jnp.where``/``lax.select`` become) one of whose cases is
  computed, through a chain of elementwise equations, by an operation of ``UNSAFE_OPS`` (an
  unbounded derivative at some inputs), whose unsafe operand can take an unsafe value at exactly
  the points where the ``select_n`` picks another case. "Can" means: the operand depends, through
  elementwise equations, on a value the where's condition tests (the condition and the operand meet
  point by point), and the range of values it can take there (a small interval analysis: the
  condition's comparison against a constant, affine maps, ``exp``, ``abs``, ...) meets the
  operation's unsafe values;
* **clip traps**: the unsafe operand is ``jnp.maximum``/``jnp.minimum`` (``jnp.clip``) of a
  differentiated value and a constant that is itself unsafe (``jnp.sqrt(jnp.maximum(x, 0.))``):
  wherever it clips, the clip's derivative 0 meets an infinite one.

Not traps (no report):

* the **double-where** fix, ``safe = jnp.where(mask, x, 1.); jnp.where(mask, jnp.sqrt(safe), 0.)``:
  the unsafe operand is itself a ``select_n`` on the same condition (the same computation, found by
  value numbering, or its negation), so at the masked points it is the substituted value, 1, and
  sqrt is smooth there. (Even an unsafe substitute, 0., gives a finite gradient: the inner where
  sends the rule's NaN only to the substitute, which has no gradient; it is not reported, but 1.
  keeps ``debug_nans`` quiet. For ``y / safe`` the NaN also reaches ``y``: that is reported.);
* anything the differentiated inputs do not reach (``funcgrad.core.activity``): no gradient, no trap;
* a mask that does not test a value the unsafe operand depends on (a causal mask, a padding mask);
* masked points where the tested value is non-finite (``jnp.where(jnp.isfinite(x), ...)``): the
  input is already inf/NaN there;
* ``lax.clamp`` and ``jax.nn.relu`` (their VJPs select, they do not multiply, so inf never meets 0),
  and the bodies of ``custom_jvp``/``custom_vjp`` functions (their own rules are differentiated, not
  their bodies: ``jax.nn.softplus``, ``jax.nn.log1mexp``, ``jnp.sinc``...).

Nested programs (``cond`` branches, ``scan`` bodies, ``checkpoint``) are searched too, with the
activity their outer equation gives them. The analysis is decided once per (graph, input flags).

Users meet it through ``funcgrad.check_differentiable`` (its warnings), the opt-in warning of
``funcgrad.grad``/``value_and_grad``/``vjp`` (``FUNCGRAD_WHERE_LINT=1``, or ``enable_where_lint()``:
a ``funcgrad.NaNTrapWarning`` the first time each traced graph is differentiated) and
``funcgrad.debug_nans`` (its report names the where that masked the NaN's source).
"""

from funcgrad.core.where_traps.lint import (
    ENV_VAR,
    enable_where_lint,
    note_differentiated,
    remembering,
    traps_at,
)
from funcgrad.core.where_traps.report import NaNTrap
from funcgrad.core.where_traps.search import find_traps
from funcgrad.core.where_traps.unsafe_ops import UNSAFE_OPS

__all__ = [
    "ENV_VAR",
    "UNSAFE_OPS",
    "NaNTrap",
    "enable_where_lint",
    "find_traps",
    "note_differentiated",
    "remembering",
    "traps_at",
]
