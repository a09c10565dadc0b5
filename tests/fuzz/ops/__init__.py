"""The operations random programs are built from: one ``Op`` per jax.numpy / jax.lax / jax.nn call.

The table is data. Each ``Op`` has a name, a family and a ``build(builder)``
that appends one line (or a few) to the program and returns the new value, or
``None`` when it does not apply to the values at hand. ``enabled_ops()``
probes each operation once with funcgrad and drops those that hit a primitive
without a VJP rule (``UnsupportedPrimitiveError``), so operations switch
themselves on as rules land; ``disabled_ops()`` says which are off and why.
``DISABLED`` switches an operation off by hand, with the reason.
"""

from __future__ import annotations

import functools

import jax

from tests.fuzz.ops import control, elementwise, index, linalg, linear, reduce, shape, window  # noqa: F401 (fill OPS)
from tests.fuzz.ops.table import FAMILIES, OPS, Op
from tests.fuzz.programs import RandomDraw, generate

OPS.sort(key=lambda o: FAMILIES.index(o.family))  # stable: definition order within a family

# operation name -> why it is switched off by hand (a funcgrad bug being fixed, a JAX limitation, ...)
DISABLED: dict[str, str] = {}

__all__ = ["DISABLED", "OPS", "Op", "disabled_ops", "enabled_ops"]


# -------------------------------------------------------------------- probing


def _probe_program(o: Op, seed: int):
    draw = RandomDraw(seed)
    return generate(draw, ops=[o], steps=1)


@functools.cache
def _probe(name: str) -> str | None:
    """Why operation ``name`` cannot be used now (a primitive without a VJP rule), or None."""
    import funcgrad
    from tests.conftest import x64

    o = next(o for o in OPS if o.name == name)
    for seed in range(40):
        program = _probe_program(o, seed)
        if o.name not in program.ops:
            continue
        try:
            with x64():
                f, args = program.function(), program.example_args()
                loss = lambda *a: sum(jax.numpy.sum(x) for x in jax.tree_util.tree_leaves(f(*a)))
                # abstractly (no compilation): the forward and backward sweeps hit every rule they need
                jax.make_jaxpr(funcgrad.grad(loss, program.argnums))(*args)
        except (funcgrad.UnsupportedPrimitiveError, funcgrad.NonDifferentiableError) as err:
            return str(err).splitlines()[0]
        except Exception:  # noqa: BLE001 (other errors are findings of the fuzz run, not a reason to switch off)
            return None
        return None
    return None


def enabled_ops() -> list[Op]:
    """Operations whose primitives all have VJP rules (probed once per process), minus ``DISABLED``."""
    return [o for o in OPS if o.name not in DISABLED and _probe(o.name) is None]


def disabled_ops() -> dict[str, str]:
    """Operation name -> why it is switched off."""
    off = {o.name: DISABLED[o.name] for o in OPS if o.name in DISABLED}
    off.update({o.name: _probe(o.name) for o in OPS if o.name not in DISABLED and _probe(o.name) is not None})
    return off
