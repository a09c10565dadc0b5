"""Every difference between the supported JAX releases, and every JAX-internal name funcgrad uses.

This is the one module that imports ``jax._src``. The tracer (``funcgrad.core.tracer``) reads JAX's
jaxprs through the names below, so it reads as the conversion alone; a new JAX release that changes
the jaxpr format is absorbed here. Each shim says which releases it is for
(``docs/jax_versions.md`` lists the tested ones; ``scripts/jax_matrix.sh`` runs them).
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
import functools
import inspect
import json
import pathlib
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np
from jax._src import core as _core
from jax._src import source_info_util as _source_info

JAX_VERSION = tuple(int(p) for p in jax.__version__.split(".")[:3] if p.isdigit())

# The newest release series funcgrad is tested with (docs/jax_versions.md). A newer JAX is allowed:
# funcgrad warns at import, and the reverse sweep refuses a parameter its rules were not written for
# (unknown_params) rather than risk a silently wrong derivative.
NEWEST_TESTED = (0, 10)
UNTESTED_JAX = JAX_VERSION[:2] > NEWEST_TESTED
KNOWN_PARAMS_FILE = pathlib.Path(__file__).with_name("known_params.json")
_known_params: dict | None = None


def unknown_params(primitive: str, params) -> list[str]:
    """The names in ``params`` that funcgrad's rule for ``primitive`` was not written for (as the rule
    table's rows produce them on the newest tested JAX: ``scripts/known_params.py``)."""
    global _known_params
    if _known_params is None:
        _known_params = json.loads(KNOWN_PARAMS_FILE.read_text())["params"]
    known = _known_params.get(primitive)
    if known is None:
        return []  # not a primitive of funcgrad's own rule table (a user's rule, a fallback)
    return sorted(set(params) - set(known))


# JAX's IR classes, as the tracer sees them
Jaxpr = _core.Jaxpr
ClosedJaxpr = _core.ClosedJaxpr
JaxLiteral = _core.Literal
DropVar = _core.DropVar
AbstractValue = _core.AbstractValue
Tracer = _core.Tracer
get_aval = getattr(_core, "get_aval", None) or jax.typeof  # jax >= 0.10 has only jax.typeof

# Call primitives whose body the tracer inlines (names across releases).
INLINED_CALLS = frozenset({"pjit", "jit", "closed_call", "core_call", "remat_call"})

# Names JAX has used for the same primitive across releases -> funcgrad's name.
_CANONICAL_NAMES = {
    "pjit": "jit",  # jax < 0.5
    "custom_vjp_call_jaxpr": "custom_vjp_call",  # jax < 0.6
    "remat": "checkpoint",
    "remat2": "checkpoint",
}


def canonical_name(name: str) -> str:
    """funcgrad's name for a JAX primitive name of any supported release."""
    return _CANONICAL_NAMES.get(name, name)


def is_jaxpr(x) -> bool:
    return isinstance(x, (Jaxpr, ClosedJaxpr))


def split_closed(jaxpr, consts=()) -> tuple[Any, tuple]:
    """``(Jaxpr, consts)`` of a ``ClosedJaxpr``, or of a bare ``Jaxpr`` and the given consts."""
    if isinstance(jaxpr, ClosedJaxpr):
        return jaxpr.jaxpr, tuple(jaxpr.consts)
    return jaxpr, tuple(consts)


def inlined_body(params) -> Any:
    """The body of an inlined call: ``jaxpr`` (jit) or ``call_jaxpr`` (closed_call, core_call)."""
    return params.get("jaxpr", params.get("call_jaxpr"))


# ------------------------------------------------------------------ placement

_typeof = getattr(jax, "typeof", None) or get_aval  # jax.typeof: jax >= 0.6 (and get_aval before)


def aval_of(x):
    return x if isinstance(x, AbstractValue) else get_aval(x)


def placement_of(x) -> tuple:
    """Where ``x`` lives, beyond its type: (manual axes it varies over inside ``shard_map``, sharding).

    Both shape a traced program (JAX inserts ``pvary`` for invariant values; explicit shardings
    appear in equation params), so a graph traced for one placement is not replayed on another.
    """
    try:
        aval = x if isinstance(x, AbstractValue) else _typeof(x)
    except TypeError:
        return (None, None)
    mat = getattr(aval, "mat", None)  # jax >= 0.9: varying / unreduced / reduced manual axes
    manual = (mat.varying, mat.unreduced, mat.reduced) if mat is not None else getattr(aval, "vma", None)
    return (manual, getattr(aval, "sharding", None))


# ------------------------------------------------------- explicit sharding ("sharding in types")
# With a mesh of ``AxisType.Explicit`` axes (jax >= 0.6; ``jax.make_mesh``'s default in newer releases)
# an array's sharding is part of its type, and JAX's transpose rules give each cotangent its primal's
# sharding. funcgrad's rules and sweep do the same through the helpers below; with no explicit axes
# (or on a release without them) they return None / {}, so nothing changes.

_EXPLICIT = getattr(getattr(jax.sharding, "AxisType", None), "Explicit", None)  # jax >= 0.6


def explicit_sharding(x) -> Any | None:
    """``x``'s sharding type (``jax.typeof(x).sharding``) when its mesh has an ``Explicit`` axis, else None."""
    if _EXPLICIT is None:
        return None
    try:
        sharding = getattr(_typeof(x), "sharding", None)
    except TypeError:  # not an array (a Python object a rule was handed as a parameter)
        return None
    mesh = getattr(sharding, "mesh", None)
    if mesh is None or mesh.empty or _EXPLICIT not in tuple(mesh.axis_types):
        return None
    return sharding


def cotangent_sharding(primal, ct) -> Any | None:
    """The sharding type of ``primal``'s cotangent computed from ``ct``: the primal's own under explicit
    mesh axes; for a primal outside any mesh (a constant) while ``ct`` is in one, replicated there (as
    JAX's transposes fall back to the current mesh); None without explicit axes."""
    sharding = explicit_sharding(primal)
    if sharding is not None:
        return sharding
    ct_sharding = explicit_sharding(ct)
    return None if ct_sharding is None else replicated(ct_sharding, len(np.shape(primal)))


@functools.cache
def _takes_out_sharding(fn) -> bool:
    try:
        return "out_sharding" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def out_sharding(fn: Callable, sharding) -> dict:
    """``{"out_sharding": sharding}`` for a call of the lax function ``fn``, or ``{}`` when ``sharding`` is
    None or this release's ``fn`` takes no ``out_sharding`` (``conv_general_dilated``: jax >= 0.8)."""
    if sharding is None or not _takes_out_sharding(fn):
        return {}
    return {"out_sharding": sharding}


def with_partitions(sharding, partitions: Sequence[Any]):
    """``sharding`` on the same mesh with one partition entry per axis from ``partitions`` (an explicit
    sharding's spec keeps its reduced/unreduced axes; ``with_spec`` before jax 0.7)."""
    spec = sharding.spec
    if hasattr(spec, "update"):
        return sharding.update(spec=spec.update(partitions=tuple(partitions)))
    return sharding.with_spec(jax.sharding.PartitionSpec(*partitions))  # pragma: no cover - jax < 0.7


def replicated(sharding, ndim: int):
    """An ``ndim``-axis sharding type replicated over ``sharding``'s mesh."""
    return with_partitions(sharding, (None,) * ndim)


def has_reduced_axes(sharding) -> bool:
    """Whether a sharding type has reduced or unreduced mesh axes (jax >= 0.7): a cotangent's type is
    then not its primal's (JAX swaps the two), which funcgrad does not model."""
    spec = getattr(sharding, "spec", None)
    return bool(getattr(spec, "unreduced", None) or getattr(spec, "reduced", None))


def cotangent_type(sharding):
    """The sharding type of a cotangent of a value of type ``sharding``: reduced and unreduced mesh axes
    swapped (JAX's ``to_ct_aval``: a value summed later has a cotangent copied earlier, and back)."""
    spec = sharding.spec
    swapped = jax.sharding.PartitionSpec(*spec.partitions, unreduced=spec.reduced, reduced=spec.unreduced)
    return jax.sharding.NamedSharding(sharding.mesh, swapped)


# ---------------------------------------------------------- checkpoint policies


def remat_decision(policy, primitive, in_types: Sequence[Any], params) -> tuple[str, Any]:
    """What a ``jax.checkpoint`` policy says of one equation: ``("save", None)``, ``("recompute", None)``
    or ``("offload", (src, dst))`` (memory kinds). JAX calls the policy as
    ``policy(primitive, *input avals, **params)`` and accepts a bool, ``Saveable``, ``Recompute`` or
    ``Offloadable(src, dst)`` (the same in every supported release); ``policy=None`` saves nothing."""
    if policy is None:
        return ("recompute", None)
    avals = [_core.ShapedArray(tuple(t.shape), t.dtype, weak_type=t.weak_type) for t in in_types]
    case = policy(primitive, *avals, **params)
    if isinstance(case, bool):
        return ("save", None) if case else ("recompute", None)
    kind = type(case).__name__
    if kind == "SaveableType":
        return ("save", None)
    if kind == "RecomputeType":
        return ("recompute", None)
    if kind == "Offloadable" and isinstance(case, tuple):
        return ("offload", (case.src, case.dst))
    # JAX's message (partial_eval.ensure_enum), and its class
    msg = (
        "Value returned by a remat policy should be a bool or `ad_checkpoint.Recompute`, "
        f"`ad_checkpoint.Saveable` or `ad_checkpoint.Offloadable(...)`. Got {case} of type {type(case)}."
    )
    if isinstance(case, type) and case.__name__ == "Offloadable":
        msg += "Did you return `Offloadable` instead of an instantiated `Offloadable(...)`?"
    raise TypeError(msg)


def to_memory_kind(x, kind: str):
    """``x`` moved to memory kind ``kind`` ("pinned_host", "device", ...), as JAX's offloading remat does
    (``jax.device_put`` to a memory space: jax >= 0.6; ``TransferToMemoryKind`` before)."""
    to_space = getattr(_core, "mem_kind_to_space", None)
    if to_space is not None:
        return jax.device_put(x, to_space(kind))
    return _transfer_to(kind)(x)  # pragma: no cover - older JAX releases


@functools.cache
def _transfer_to(kind: str):
    # jax < 0.6 accepts TransferToMemoryKind only inside jit (outside it wants a concrete sharding,
    # and a CPU device there lists no "pinned_host"), so the move is jitted, as JAX's remat runs it
    from jax._src.sharding_impls import TransferToMemoryKind

    return jax.jit(lambda x: jax.device_put(x, TransferToMemoryKind(kind)))


# ---------------------------------------------------------------------- binding


def bind(primitive, params, *args) -> list:
    """Evaluate ``primitive`` on ``args`` the way ``jax.core.eval_jaxpr`` does; always a list of outputs."""
    bind_params = primitive.get_bind_params(params)
    if isinstance(bind_params, tuple):  # jax < 0.10 returned (subfuns, params)
        subfuns, bind_params = bind_params
        args = (*subfuns, *args)
    if primitive.name == "custom_jvp_call":
        out = past_debug_info_check(lambda: primitive.bind(*args, **bind_params))
    elif primitive.name == "device_put" and _moves_memory_outside_jit(bind_params, args):
        out = jax.jit(lambda *xs: primitive.bind(*xs, **bind_params))(*args)  # pragma: no cover - jax < 0.6
    else:
        out = primitive.bind(*args, **bind_params)
    return list(out) if primitive.multiple_results else [out]


def _moves_memory_outside_jit(params, args) -> bool:
    # jax < 0.6 accepts device_put to a memory kind (TransferToMemoryKind) only inside jit: an eager
    # evaluation of such an equation (a graph with a remat policy's offload in it) runs it jitted
    if hasattr(_core, "mem_kind_to_space") or any(is_tracer(a) for a in args):
        return False
    return any(type(d).__name__ == "TransferToMemoryKind" for d in params.get("devices", ()))


def past_debug_info_check(run: Callable[[], Any]) -> Any:
    """``run()``; if ``jax_enable_checks`` is on and it fails JAX's assertion on debug info, ``run()``
    again with the checks off.

    jax 0.10's checks assert that a custom_jvp function with ``nondiff_argnums``, when staged again
    (its equation re-bound, or called inside its rule as it is traced), has debug info naming one
    argument per traced input, which it does not: JAX's own jit of grad of ``jax.scipy.special.log_ndtr``
    fails the same way. A bookkeeping assertion, not a check of the program."""
    try:
        return run()
    except AssertionError as err:
        if not jax.config.jax_enable_checks or "DebugInfo" not in str(err):
            raise
    with jax.enable_checks(False):
        return run()


# Reductions over named axes that older releases (before 0.10) bound once for all the leaves of a
# pytree, as one multiple-results primitive; newer ones bind once per array.
_PER_OPERAND = frozenset({"psum", "pmax", "pmin"})


def binds_all_operands_at_once(primitive) -> bool:
    """Whether this equation is an older release's all-leaves-at-once ``psum``/``pmax``/``pmin``, which the
    tracer splits into one single-result equation per operand (the newer releases' form)."""
    return primitive.name in _PER_OPERAND and bool(primitive.multiple_results)


def tag_call_forwards_inputs(outvars, invars) -> bool:
    """jax < 0.6 forwards a jit's outputs that are its inputs: an identity call then has no outputs."""
    return not outvars and bool(invars)


# ------------------------------------------------------------------ source lines

# jax < 0.7: ``user_frame(source_info)``; later releases: ``user_frame(traceback)``.
_USER_FRAME_TAKES_INFO = next(iter(inspect.signature(_source_info.user_frame).parameters)) == "source_info"


def user_frame(info):
    """The innermost user frame of an equation's ``SourceInfo`` (None if it has no traceback)."""
    if info.traceback is None:
        return None
    return _source_info.user_frame(info if _USER_FRAME_TAKES_INFO else info.traceback)


_USER_FRAMES_TAKE_INFO = next(iter(inspect.signature(_source_info.user_frames).parameters)) == "source_info"


def user_frames(info) -> list[tuple[str, int, str]]:
    """Every user frame of an equation's ``SourceInfo``, outermost first, as ``(file, line, function)``
    (the function's qualified name where JAX records it); ``[]`` without a traceback."""
    if info is None or info.traceback is None:
        return []
    frames = _source_info.user_frames(info if _USER_FRAMES_TAKE_INFO else info.traceback)
    return [(f.file_name, f.start_line, f.function_name) for f in frames][::-1]


def exclude_from_user_frames(path: str) -> None:
    """Frames in ``path`` are never "the user's line" of an equation (funcgrad.tag's own frame)."""
    _source_info.register_exclusion(path)


# ------------------------------------------------------------------ function names


def jaxpr_function_name(jaxpr) -> str | None:
    """The name of the function a jaxpr was traced from, if JAX recorded one."""
    inner = getattr(jaxpr, "jaxpr", jaxpr)
    name = getattr(getattr(inner, "debug_info", None), "func_name", None)
    eqns = getattr(inner, "eqns", ())
    if name is None and len(eqns) == 1 and eqns[0].primitive.name in INLINED_CALLS:
        # jax < 0.6 records no function name here; a body that is one jit call is named by that call
        name = eqns[0].params.get("name")
    return name


def function_name(fun) -> str:
    """The name of a function JAX wrapped (a thunk, a ``WrappedFun``), or "custom"."""
    wrapped = getattr(getattr(fun, "__self__", None), "f", None)  # jax < 0.5: WrappedFun.call_wrapped
    if wrapped is not None:
        return function_name(wrapped)
    info = getattr(fun, "debug_info", None)
    return getattr(info, "func_name", None) or getattr(fun, "__name__", "custom")


def call_wrapped(fun) -> Callable:
    """A JAX thunk or ``WrappedFun`` as a plain callable."""
    return getattr(fun, "call_wrapped", fun)


# ------------------------------------------------------------ custom derivatives


def custom_jvp_thunk(params):
    """The custom_jvp rule's tracing thunk (``jvp_jaxpr_fun``; ``jvp_jaxpr_thunk`` in older releases)."""
    return params.get("jvp_jaxpr_fun", params.get("jvp_jaxpr_thunk"))


def trace_custom_jvp(thunk, tangent_is_zero) -> tuple[Any, tuple, list[bool] | None]:
    """``(jaxpr, consts, out_zeros)`` of the user's JVP rule; ``out_zeros`` is None where JAX returns no
    symbolic output zeros (older releases return only ``(jaxpr, consts)``)."""
    result = past_debug_info_check(lambda: call_wrapped(thunk)(*tangent_is_zero))
    if len(result) == 3:
        return result[0], tuple(result[1]), list(result[2])
    jaxpr, consts = result
    return jaxpr, tuple(consts), None


def custom_vjp_body_key(params) -> str:
    """Where a custom_vjp equation keeps the primal body: ``call_jaxpr``, or ``fun_jaxpr`` (jax < 0.6)."""
    return "call_jaxpr" if "call_jaxpr" in params else "fun_jaxpr"


def custom_vjp_residual_layout(out_trees_thunk, n_consts: int) -> tuple[Any, list]:
    """``(residual tree, input_fwds)`` of a custom_vjp's fwd, with ``input_fwds[i]`` the index into the
    equation's ``consts + args`` of a residual forwarded from an input (None for computed ones).

    Releases before 0.7 return no ``input_fwds`` from ``out_trees`` or index into ``args`` alone."""
    trees = out_trees_thunk()
    _, res_tree, input_fwds = trees if len(trees) == 3 else (*trees, None)
    if input_fwds is None:
        return res_tree, [None] * res_tree.num_leaves
    if JAX_VERSION < (0, 7):
        input_fwds = [None if f is None else f + n_consts for f in input_fwds]
    return res_tree, list(input_fwds)


def symbolic_zero(shape, dtype):
    """JAX's ``SymbolicZero`` for a cotangent of this shape and dtype (what a ``custom_vjp`` bwd with
    ``symbolic_zeros=True`` gets for an output nothing differentiated reached)."""
    return jax.custom_derivatives.SymbolicZero(_core.ShapedArray(tuple(shape), dtype))


# A custom_vjp's fwd may close over values the traced function computed (``x`` in ``def loss(w, x)``
# with ``f_fwd`` defined inside it; Flax's ``nnx.custom_vjp`` closes over the module's non-differentiated
# state). JAX's staging traces fwd lazily (``fwd_jaxpr_thunk``), after the trace that made those values
# has ended, so its consts would be dead tracers; jax.grad runs fwd when the call is bound. While
# funcgrad traces (``fwd_traced_at_bind``), each custom_vjp bind traces its fwd at once, while the
# values are live tracers, and records which jaxpr variable each closed-over one is
# (``fwd_closure``), so that the tracer can make them inputs of the equation. Not for
# ``symbolic_zeros=True`` (that fwd depends on the perturbed flags, unknown at bind time: it is traced
# later, as before, so it must not close over traced values), and not for a jitted function whose
# trace JAX had cached before funcgrad traced it (jax.grad of a jitted function fails there alike).
_FWD_AT_BIND = contextvars.ContextVar("funcgrad_fwd_at_bind", default=False)
_FWD_CLOSURES: collections.OrderedDict = collections.OrderedDict()  # id(thunk) -> (thunk, closure)


def fwd_pattern(perturbed: Sequence[bool], symbolic_zeros: bool) -> tuple[bool, ...]:
    """The perturbed flags to call a ``fwd_jaxpr_thunk`` with: fwd sees them only with
    ``symbolic_zeros=True``; otherwise one pattern for all, so the trace made at bind time is reused."""
    return tuple(bool(p) for p in perturbed) if symbolic_zeros else (True,) * len(perturbed)


@contextlib.contextmanager
def fwd_traced_at_bind():
    """Context: every custom_vjp bound in a staging trace has its fwd traced when it is bound."""
    _install_fwd_at_bind()
    token = _FWD_AT_BIND.set(True)
    try:
        yield
    finally:
        _FWD_AT_BIND.reset(token)


def fwd_closure(thunk) -> list[tuple[int, Any]]:
    """``[(index of a const of the thunk's fwd jaxpr, the jaxpr variable that const is), ...]`` for the
    consts that were tracers of the trace that bound the custom_vjp; empty if none (or not recorded)."""
    found = _FWD_CLOSURES.get(id(thunk))
    return found[1] if found is not None and found[0] is thunk else []


def _install_fwd_at_bind() -> None:
    from jax._src.interpreters import partial_eval as pe

    original = pe.DynamicJaxprTrace.process_custom_vjp_call
    if getattr(original, "_funcgrad_fwd_at_bind", False):
        return

    @functools.wraps(original)
    def process_custom_vjp_call(self, prim, fun, fwd, bwd, tracers, *args, **kwargs):
        outs = original(self, prim, fun, fwd, bwd, tracers, *args, **kwargs)
        if _FWD_AT_BIND.get() and _trace_fwd_now(self, prim):
            # custom_vjp.__call__ takes the output tree from whichever of the primal's and fwd's stores
            # is filled, and refuses both (lu.merge_linear_aux): jax.grad fills fwd's alone
            for store in fun.stores:
                store and store.reset()
        return outs

    process_custom_vjp_call._funcgrad_fwd_at_bind = True
    pe.DynamicJaxprTrace.process_custom_vjp_call = process_custom_vjp_call


def _trace_fwd_now(trace, prim) -> bool:
    frame = trace.frame
    eqns = getattr(frame, "tracing_eqns", None) or getattr(frame, "eqns", None)  # newer / older JAX
    last = eqns[-1] if eqns else None
    if isinstance(last, weakref.ReferenceType):
        last = last()
    params = getattr(last, "params", None)
    # (older JAX stages the call as its initial-style primitive, custom_vjp_call_jaxpr)
    staged_as = (prim, getattr(prim, "initial_style", prim))
    if getattr(last, "primitive", None) not in staged_as or not params or "fwd_jaxpr_thunk" not in params:
        return False  # evaluated, not staged (all-constant operands)
    if params.get("symbolic_zeros", False):
        # fwd sees which inputs are perturbed, which is not known yet (Equinox's fwds assert on it):
        # traced later, with the flags funcgrad's activity gives
        return False
    thunk = params["fwd_jaxpr_thunk"]
    num_args = len(getattr(last, "in_tracers", None) or last.invars) - params["num_consts"]
    # not again for the calls inside fwd (fwd usually calls the function itself: an endless recursion)
    token = _FWD_AT_BIND.set(False)
    try:
        _, consts = call_wrapped(thunk)(*fwd_pattern([True] * num_args, False))
    finally:
        _FWD_AT_BIND.reset(token)
    closure = [(i, v) for i, c in enumerate(consts) if (v := _var_of(trace, c)) is not None]
    if closure:
        _FWD_CLOSURES[id(thunk)] = (thunk, closure)
        while len(_FWD_CLOSURES) > 512:
            _FWD_CLOSURES.popitem(last=False)
    return True


def _var_of(trace, x):
    """The jaxpr variable (or literal) of ``trace``'s tracer ``x``; None for anything else."""
    if not isinstance(x, Tracer) or getattr(x, "_trace", None) is not trace:
        return None
    to_var = getattr(trace.frame, "tracer_to_var", None)  # older JAX; newer tracers hold their variable
    return to_var.get(id(x)) if to_var is not None else getattr(x, "val", None)


def _custom_derivative_types() -> tuple[type, ...]:
    types = [jax.custom_vjp, jax.custom_jvp]
    try:  # jax >= 0.9: jax.custom_vjp under jax_custom_vjp3=True makes one of these
        from jax._src.hijax import custom_vjp3

        types.append(custom_vjp3)
    except ImportError:
        pass
    return tuple(types)


# the classes of custom_vjp / custom_jvp functions (whose rules defvjp/defjvp replace in place)
CUSTOM_DERIVATIVE_TYPES = _custom_derivative_types()


def is_tracer(x) -> bool:
    return isinstance(x, Tracer)


def python_impl(eqn_impl) -> tuple[Callable | None, str]:
    """``(impl, library)`` of the JAX primitive an equation binds (its ``impl`` from the tracer): the
    Python function it was defined with (``Primitive.def_impl``), or None for one JAX evaluates by
    compiling the primitive itself; and the module that defined that function ("" if unknown)."""
    from jax._src import dispatch

    primitive = getattr(eqn_impl, "primitive", None)
    impl = getattr(primitive, "impl", None)
    if impl is None:
        return None, ""
    inner = impl.func if isinstance(impl, functools.partial) else impl
    library = getattr(inner, "__module__", "") or ""
    if inner is dispatch.apply_primitive:
        return None, library
    return impl, library


def switch(index, branches: Sequence[Callable], operands: Sequence[Any], branches_platforms=None) -> Any:
    """``lax.switch(index, branches, *operands)``; for the cond of a ``lax.platform_dependent`` (its
    ``branches_platforms`` param, jax >= 0.7) the new cond keeps that param, so that lowering compiles
    only the branch of the platform compiled for, as it does for the forward cond."""
    if branches_platforms is not None:
        try:
            from jax._src.lax.control_flow.conditionals import _switch_internal
        except ImportError:
            pass
        else:
            return _switch_internal(index, branches, list(operands), branches_platforms=branches_platforms)
    return jax.lax.switch(index, branches, *operands)


def platform_branch(branches_platforms) -> int:
    """The branch of a ``lax.platform_dependent`` cond that the default backend runs (JAX's lowering
    rule: the first branch listing the platform, else the default branch, whose entry is None)."""
    from jax._src import xla_bridge

    platform = xla_bridge.canonicalize_platform(jax.default_backend())
    for k, platforms in enumerate(branches_platforms):
        if platforms is None or platform in platforms:
            return k
    return len(branches_platforms) - 1


def hi_primitive_forward(prim, perturbed: Sequence[bool], args: Sequence[Any]) -> tuple[list, Any]:
    """``(outputs, residuals)`` of one ``call_hi_primitive`` equation by the primitive's own reverse-mode
    interface (``jax._src.hijax.VJPHiPrimitive``, jax >= 0.9; ``jax_custom_vjp3``'s custom_vjp is one):
    ``vjp_fwd(perturbed, *args)``, as JAX's linearization runs it."""
    tree_unflatten = jax.tree_util.tree_unflatten
    out, residuals, *_ = prim.vjp_fwd(
        tree_unflatten(prim.in_tree, list(perturbed)), *tree_unflatten(prim.in_tree, args)
    )
    return prim.out_tree.flatten_up_to(out), residuals


def hi_primitive_backward(prim, perturbed: Sequence[bool], residuals: Any, cts: Sequence[Any]) -> list:
    """Input cotangents (``None`` for none) of one ``call_hi_primitive`` equation, by the primitive's
    value-returning bwd (``vjp_bwd_retval``; ``cts[i]`` None is a symbolic zero). A primitive with only
    the accumulator form (``vjp_bwd``) would need JAX's AD accumulators, which funcgrad does not use."""
    from jax._src import ad_util

    cts = [ad_util.Zero(a.to_ct_aval()) if c is None else c for a, c in zip(prim.out_avals_flat, cts)]
    try:
        in_cts = prim.vjp_bwd_retval(residuals, jax.tree_util.tree_unflatten(prim.out_tree, cts))
    except NotImplementedError as err:
        err.add_note(
            f"(funcgrad differentiates a hijax primitive ({type(prim).__name__}) through vjp_bwd_retval only)\n"
            "  fix: implement vjp_bwd_retval on it, or register a rule with funcgrad.defvjp('call_hi_primitive', ...)"
        )
        raise
    flat = prim.in_tree.flatten_up_to(in_cts)
    return [None if not p or c is None or isinstance(c, ad_util.Zero) else c for c, p in zip(flat, perturbed)]


def is_symbolic_zero(ct) -> bool:
    """Whether a user's bwd returned "no cotangent": None, JAX's (symbolic) zero objects, or a float0 array."""
    if ct is None or type(ct).__name__ in ("Zero", "SymbolicZero"):
        return True
    return getattr(ct, "dtype", None) == jax.dtypes.float0


# ------------------------------------------------------------------ configuration


@contextlib.contextmanager
def enable_x64():
    """float64 enabled for this block only (``jax.enable_x64``; the experimental one before jax 0.4.36)."""
    if hasattr(jax, "enable_x64"):
        with jax.enable_x64(True):
            yield
    else:  # pragma: no cover - older JAX releases
        from jax.experimental import enable_x64 as _enable_x64

        with _enable_x64():
            yield


def cost_analysis(compiled) -> dict:
    """XLA's cost analysis of a compiled program as one dict (older releases: a list, one per computation)."""
    analysis = compiled.cost_analysis()
    if isinstance(analysis, (list, tuple)):
        analysis = analysis[0] if analysis else {}
    return dict(analysis or {})


# ------------------------------------------------------------- concrete tracing
# funcgrad.core.concrete records a graph while computing its values (Python control flow on values
# then works, as under jax.grad). It needs JAX's trace machinery: a Trace subclass and a Tracer that
# carries a concrete value (JAX's own JVP tracers do the same). jax >= 0.4.36 ("stackless" traces).

Trace = _core.Trace
_TRACER_INIT_TAKES_AVAL = "aval" in inspect.signature(_core.Tracer.__init__).parameters  # jax >= 0.5


def set_current_trace(trace):
    """Context: binds go to ``trace``."""
    return _core.set_current_trace(trace)


def current_trace():
    """The trace that binds go to now (JAX's EvalTrace outside any transformation)."""
    with _core.take_current_trace() as trace:
        return trace


def is_eval_trace(trace) -> bool:
    return isinstance(trace, _core.EvalTrace)


def to_concrete_value(x):
    """``x``'s concrete value if it has one (an array, or a tracer that carries one), else None."""
    return _core.to_concrete_value(x)


def current_source_info():
    """JAX's ``SourceInfo`` of the current bind (its traceback and name stack)."""
    return _source_info.current()


exclude_from_user_frames(__file__)  # current_source_info's own frame is not the user's line


class ValueTracer(Tracer):
    """A tracer of ``trace`` that carries a concrete ``value`` and the funcgrad ``atom`` it is bound to."""

    __slots__ = ("value", "atom")

    def __init__(self, trace, value, atom):
        if _TRACER_INIT_TAKES_AVAL:
            super().__init__(trace, get_aval(value))
        else:  # jax < 0.5: the aval is a property (below)
            self._trace = trace
        self.value, self.atom = value, atom

    if not _TRACER_INIT_TAKES_AVAL:

        @property
        def aval(self):
            return get_aval(self.value)

    def to_concrete_value(self):
        return _core.to_concrete_value(self.value)

    def full_lower(self):
        return self

    def cur_qdd(self):
        return _core.cur_qdd(self.value)
