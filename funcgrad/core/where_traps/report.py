"""The report of one trap: ``NaNTrap``, and the message and fix of a where trap and of a clip trap."""

from __future__ import annotations

import dataclasses

from funcgrad.core.ir import Eqn
from funcgrad.core.where_traps.unsafe_ops import UnsafeOp


@dataclasses.dataclass(frozen=True)
class NaNTrap:
    """One NaN trap: where the gradient will be NaN although the forward pass is finite."""

    kind: str  # "where" (a select_n masks the value) or "clip" (jnp.maximum/jnp.minimum pins it)
    primitive: str  # the operation with the unbounded derivative, e.g. "sqrt"
    op_where: str  # its file:line
    mask_primitive: str  # "select_n", "max" or "min"
    mask_where: str  # the where's (or the clip's) file:line
    message: str
    fix: str
    function: str | None = None  # the user's function holding the unsafe operation

    def __str__(self) -> str:
        return f"NaN trap: {self.kind} at {self.mask_where}: {self.message}\n     fix: {self.fix}"


def where_trap(sel: Eqn, unsafe: Eqn, row: UnsafeOp) -> NaNTrap:
    op_line, mask_line = unsafe.source.where(), sel.source.where()
    safe = f"safe = jnp.where(mask, x, {row.safe_value}); jnp.where(mask, {row.call.format('safe')}, 0.0)"
    message = (
        f"jnp.where (select_n) at {mask_line} masks {row.primitive!r} at {op_line}, but the backward pass still "
        f"differentiates {row.primitive!r} where the other branch is selected, and there its {row.operand_name} "
        f"can be {row.unsafe}, where its derivative is unbounded: the zero cotangent times an infinite derivative "
        "is NaN in the gradient"
    )
    fix = (
        f"evaluate {row.primitive!r} at a safe point wherever the where masks it (the double-where): {safe}, "
        f"with mask the where's condition and x the {row.operand_name} of {row.primitive!r}"
    )
    return NaNTrap("where", row.primitive, op_line, sel.primitive, mask_line, message, fix, unsafe.source.function)


def clip_trap(clip: Eqn, unsafe: Eqn, row: UnsafeOp, bound: str) -> NaNTrap:
    op_line, mask_line = unsafe.source.where(), clip.source.where()
    name = "jnp.maximum" if clip.primitive == "max" else "jnp.minimum"
    message = (
        f"{name} ({clip.primitive}, as in jnp.clip) at {mask_line} pins the {row.operand_name} of "
        f"{row.primitive!r} at {op_line} to {bound} wherever it clips, and the derivative of {row.primitive!r} is "
        f"unbounded at {row.unsafe}: the clip's zero derivative there times an infinite one is NaN in the gradient"
    )
    fix = (
        f"clip to a value where {row.primitive!r} is smooth (e.g. jnp.maximum(x, 1e-12) under a sqrt or log), or "
        f"use the double-where: safe = jnp.where(mask, x, {row.safe_value}); "
        f"jnp.where(mask, {row.call.format('safe')}, 0.0)"
    )
    return NaNTrap("clip", row.primitive, op_line, clip.primitive, mask_line, message, fix, unsafe.source.function)
