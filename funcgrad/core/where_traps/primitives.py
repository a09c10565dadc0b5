"""The classes of primitives the search walks through (elementwise, value-preserving, comparisons,
boolean, opaque bodies, never numbered), and how far its walks go."""

from __future__ import annotations

from funcgrad.core.where_traps.unsafe_ops import UNSAFE_OPS

# Elementwise primitives: a value computed by a chain of them is aligned point by point with its
# inputs, so a mask on one is a mask on the other. (Comparisons and boolean ops are elementwise too.)
ELEMENTWISE = frozenset(UNSAFE_OPS) | {
    "neg", "sign", "floor", "ceil", "round", "is_finite", "tanh", "logistic", "sin", "cos", "tan", "atan",
    "sinh", "cosh", "asinh", "erf", "erfc", "abs", "square", "add", "add_any", "sub", "mul", "max", "min",
    "nextafter", "clamp", "select_n", "real", "imag", "conj", "not", "and", "or", "xor",
    "eq", "ne", "lt", "le", "gt", "ge",
}  # fmt: skip
# Primitives that pass values on unchanged (up to dtype, layout and broadcasting).
SAME_VALUE = frozenset(
    {"convert_element_type", "broadcast_in_dim", "reshape", "squeeze", "expand_dims", "copy", "copy_p"}
    | {"reduce_precision", "transpose", "stop_gradient", "optimization_barrier"}
)
COMPARISONS = frozenset({"lt", "le", "gt", "ge", "eq", "ne"})
BOOLEAN = frozenset({"and", "or", "xor", "not"})
# bodies funcgrad does not differentiate (the user's derivative rule is differentiated instead)
OPAQUE = frozenset({"custom_jvp_call", "custom_vjp_call"})
# never numbered as equal to another equation (state, effects)
NOT_NUMBERED = ("rng", "random", "callback", "print", "effect", "io_")
# the walks stop after this many equations (the chains that matter are short)
MAX_WALK = 256
MAX_DEPTH = 48
