"""The cost model of one equation: estimated FLOPs and bytes moved (see ``funcgrad.inspect.cost``).

``dot_general`` costs 2*M*N*K (a multiply and an add per term), convolutions 2 * output size *
(kernel size / output features), reductions and cumulative ops one FLOP per input element, other
arithmetic (transcendentals included) one FLOP per output element, and data movement (reshape,
transpose, broadcast, slicing, gathers, casts, tags) none. Bytes are the sizes of every array read
and written, with no fusion (tags: none).
"""

from __future__ import annotations

import math

import numpy as np

from funcgrad.core.ir import Eqn, Literal, Type

_NO_FLOPS = {
    "reshape", "transpose", "broadcast_in_dim", "squeeze", "expand_dims", "convert_element_type", "copy", "copy_p",
    "tag", "slice", "dynamic_slice", "dynamic_update_slice", "concatenate", "pad", "rev", "gather", "iota",
    "stop_gradient", "name", "select_n", "bitcast_convert_type", "reduce_precision", "split",
}  # fmt: skip
_PER_INPUT = {"reduce_sum", "reduce_max", "reduce_min", "reduce_prod", "argmax", "argmin", "cumsum", "cumprod",
              "cummax", "cummin", "cumlogsumexp", "reduce_and", "reduce_or"}  # fmt: skip


def _nbytes(t: Type) -> int:
    try:
        return t.size * np.dtype(t.dtype).itemsize
    except TypeError:
        return 0


def eqn_flops(eqn: Eqn) -> int:
    """Estimated floating-point operations of one equation (see the module docstring)."""
    p = eqn.primitive
    ins = [a.type for a in eqn.inputs]
    out = eqn.outputs[0].type if eqn.outputs else Type((), np.dtype("float32"))
    if p == "dot_general":
        (lhs_contract, _), _ = eqn.params["dimension_numbers"]
        # every output element is a length-K dot product: K multiplies and K adds
        k = math.prod(ins[0].shape[d] for d in lhs_contract)
        return 2 * out.size * k if out.size else 0
    if p == "conv_general_dilated":
        rhs = ins[1].shape
        out_feature_dim = eqn.params["dimension_numbers"].rhs_spec[0]
        per_out = math.prod(rhs) // max(rhs[out_feature_dim], 1)
        return 2 * out.size * per_out
    if p in _NO_FLOPS:
        return 0
    if p in _PER_INPUT:
        return ins[0].size if ins else 0
    subs = eqn.subgraphs()
    if subs:
        times = int(eqn.params.get("length", 1)) if p == "scan" else 1
        return times * sum(eqn_flops(e) for g in subs[:1] for e in g.eqns)
    return sum(v.type.size for v in eqn.outputs)


def eqn_bytes(eqn: Eqn) -> int:
    """Bytes read and written by one equation (no fusion); a tag moves nothing."""
    if eqn.primitive == "tag":
        return 0
    read = sum(_nbytes(a.type) for a in eqn.inputs if not (isinstance(a, Literal) and a.type.ndim == 0))
    return read + sum(_nbytes(v.type) for v in eqn.outputs)
