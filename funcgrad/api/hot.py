"""Jit speed without ``jit``: a repeated eager call runs as one compiled program.

``dispatch(kind, fun, args, kwargs, eager)`` runs ``eager(*args, **kwargs)`` (funcgrad's trace and
sweep, op by op) the first time a signature is seen. When the signature comes back it runs the same
``eager`` under ``jax.jit`` over the call's array leaves, so the compiled program is funcgrad's own
forward and backward sweep, traced once: the numbers are those of ``jax.jit(funcgrad.grad(f))``, the
program XLA compiles for funcgrad under ``jit``. The table and the switch are in
``funcgrad.core.hot_calls``.

The table is keyed by the kind of call (``value_and_grad`` with its argnums and flags, ``vjp``, a
pullback), the function (the ids of its code and of the objects it reads: closure cells, globals,
defaults; the entry holds them), the argument structure and the values of the non-array leaves
(constants of the program). ``jax.jit``'s own cache then tells one array signature (shapes, dtypes,
weak types, placement) from another in C++, so a hot call costs a flatten, one dictionary lookup and
jit's dispatch. When jit meets a new array signature, the traced function refuses to be traced
(``_NotYetHot``) unless that signature already ran eagerly once: the first call of every signature
is eager, as fast as without compilation; the second compiles.

What stays eager, always:

* calls inside a JAX transformation (a leaf is a tracer: the enclosing transformation compiles);
* calls with sweep hooks installed (``funcgrad.debug_nans`` stops at the equation that made a NaN),
  and under ``jax.disable_jit()``;
* entries whose result holds something a compiled program cannot return as it is (a string in
  ``aux``, ``float0`` gradients), and functions ``jax.jit`` cannot trace (Python control flow on
  values: funcgrad traces those concretely, per call).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from funcgrad.core import hooks
from funcgrad.core.cache import objects_read
from funcgrad.core.call import fun_name
from funcgrad.core.concrete import concrete_traces_made
from funcgrad.core.hot_calls import HotEntry, hot_calls

tree_util = jax.tree_util

_SCALARS = (bool, int, float, complex, str, bytes, type(None))
# the common concrete arrays, by exact type; jax's array type is found on the first call (making an
# array at import would start JAX's backends before the user's jax.config.update calls)
_ARRAY_TYPES: set = {np.ndarray}
_MAX_SEEN = 64  # array signatures remembered per entry while they wait for their second call


class _NotYetHot(Exception):
    """Raised inside the traced program when jit meets an array signature that has not run eagerly yet."""


def dispatch(
    kind: Hashable, fun: Callable, args: tuple, kwargs: dict, eager: Callable, identity=None, forwards=False
) -> Any:
    """``eager(*args, **kwargs)``, or the same call compiled once its signature repeats.

    ``identity`` stands for ``fun`` in the key (default: the ids of its code and of what it reads); a
    pullback passes itself, as equal pullbacks run the same program. ``forwards``: the result may hand
    input arrays back (``vjp``'s residuals hold the parameters): the compiled program returns only the
    arrays it computes, and the caller's own arrays are put back in place (a compiled program's outputs
    are new buffers: returning the inputs would copy every parameter)."""
    if not hot_calls.enabled or hooks.current() is not None or jax.config.jax_disable_jit:
        return eager(*args, **kwargs)
    if len(_ARRAY_TYPES) == 1:
        array_type = type(jnp.zeros(()))  # inside a jit trace this is a tracer: look again next call
        if not issubclass(array_type, jax.core.Tracer):
            _ARRAY_TYPES.add(array_type)
    leaves, treedef = tree_util.tree_flatten((args, kwargs))
    statics = _static_leaves(leaves)
    if statics is None:
        return eager(*args, **kwargs)
    keep = ()
    if identity is None:
        keep = tuple(objects_read(fun))
        identity = tuple(map(id, keep))
    key = (kind, identity, treedef, statics, jax.config.jax_enable_x64)
    try:
        entry = hot_calls.get(key)
    except TypeError:  # a pytree node with unhashable data
        return eager(*args, **kwargs)
    if entry is None:
        concrete_before = concrete_traces_made()
        out = eager(*args, **kwargs)
        array_idx = tuple(i for i, x in enumerate(leaves) if _is_array(x))
        entry = HotEntry(fun_name(fun), keep, array_idx, {_array_signature(leaves, array_idx)})
        entry.layouts = {} if forwards else None
        entry.eager_reason = _not_returnable(out)
        if concrete_traces_made() != concrete_before:
            entry.eager_reason = "it branches in Python on values: funcgrad traces it concretely, per call"
        hot_calls.add(key, entry)
        return out
    if entry.eager_reason is not None:
        return eager(*args, **kwargs)
    arrays = [leaves[i] for i in entry.array_idx]
    if entry.program is not None and entry.layouts is None:
        try:
            return entry.program(arrays)  # jit's cache hit: the compiled program
        except _NotYetHot:
            pass
    signature = _array_signature(leaves, entry.array_idx)
    if entry.layouts and signature in entry.layouts:
        return _with_inputs_put_back(entry.layouts[signature], entry.program(arrays), arrays)
    if signature not in entry.seen:  # this signature's first call: eager, remembered
        if len(entry.seen) < _MAX_SEEN:
            entry.seen.add(signature)
        return eager(*args, **kwargs)
    return _compile_and_run(entry, eager, leaves, treedef, arrays, signature, args, kwargs)


def _with_inputs_put_back(layout, computed: list, arrays: list):
    """The result of a ``forwards`` call from the arrays its program computed and the caller's own."""
    tree, forwarded = layout
    it = iter(computed)
    return tree_util.tree_unflatten(tree, [next(it) if k is None else arrays[k] for k in forwarded])


def _compile_and_run(entry: HotEntry, eager, leaves, treedef, arrays, signature, args, kwargs):
    """The second call of a signature: trace the whole call under jit, compile it, run it (one thread
    at a time: the others find the program compiled, or run eagerly meanwhile)."""
    if not _compiling.acquire(blocking=False):
        return eager(*args, **kwargs)
    try:
        return _compile_locked(entry, eager, leaves, treedef, arrays, signature, args, kwargs)
    finally:
        _compiling.release()


_compiling = threading.Lock()


def _compile_locked(entry: HotEntry, eager, leaves, treedef, arrays, signature, args, kwargs):
    if entry.program is None:
        array_idx = entry.array_idx
        template = [None if i in set(array_idx) else x for i, x in enumerate(leaves)]  # the constants

        def whole_call(array_leaves):
            if entry.tracing_thread != threading.get_ident():
                raise _NotYetHot  # a signature that has not run eagerly yet: the caller runs it eagerly
            full = list(template)
            for i, a in zip(array_idx, array_leaves):
                full[i] = a
            call_args, call_kwargs = tree_util.tree_unflatten(treedef, full)
            out = eager(*call_args, **call_kwargs)
            if entry.layouts is None:
                return out
            out_leaves, tree = tree_util.tree_flatten(out)
            position = {id(a): k for k, a in enumerate(array_leaves)}
            forwarded = tuple(position.get(id(leaf)) for leaf in out_leaves)
            entry.layouts[entry.tracing_signature] = (tree, forwarded)
            return [leaf for leaf, k in zip(out_leaves, forwarded) if k is None]

        entry.program = jax.jit(whole_call)
    entry.tracing_thread, entry.tracing_signature = threading.get_ident(), signature
    start = time.perf_counter()
    try:
        out = entry.program(arrays)
        if entry.layouts is not None:
            out = _with_inputs_put_back(entry.layouts[signature], out, arrays)
    except _NotYetHot:  # not ours to trace after all (another thread's signature): eagerly, this once
        return eager(*args, **kwargs)
    except Exception as err:  # noqa: BLE001  (this signature's eager call succeeded: jit cannot trace it)
        entry.eager_reason = f"jax.jit cannot trace it: {type(err).__name__}: {str(err).splitlines()[0][:200]}"
        return eager(*args, **kwargs)
    finally:
        entry.tracing_thread = entry.tracing_signature = None
    entry.compile_s += time.perf_counter() - start
    entry.compiled += 1
    return out


def _is_array(x) -> bool:
    return isinstance(x, (jax.Array, np.ndarray, np.generic))


def _static_leaves(leaves: list) -> tuple | None:
    """The non-array leaves (by type and value), or None if a leaf is a tracer (the call is inside a
    transformation) or an object that is neither an array nor a plain value."""
    statics = []
    for x in leaves:
        if type(x) in _ARRAY_TYPES:
            continue
        if isinstance(x, jax.core.Tracer):
            return None
        if isinstance(x, (jax.Array, np.ndarray, np.generic)):
            continue
        if type(x) not in _SCALARS:
            return None  # an object of another kind: its value may change under the same identity
        statics.append((type(x), x))
    return tuple(statics)


def _array_signature(leaves: list, array_idx: tuple[int, ...]) -> tuple:
    """What ``jax.jit`` compiles a program for, per array leaf: its abstract value and placement."""
    parts = []
    for i in array_idx:
        x = leaves[i]
        if isinstance(x, jax.Array):
            # key arrays (jax.random.key) have no weak_type
            parts.append((x.shape, x.dtype, getattr(x, "weak_type", False), getattr(x, "sharding", None)))
        else:
            parts.append((np.shape(x), np.result_type(x), False, None))
    return tuple(parts)


def _not_returnable(out) -> str | None:
    """Why a compiled program could not return ``out`` as the eager call did (None: it can)."""
    for leaf in tree_util.tree_leaves(out):
        if not isinstance(leaf, jax.Array) or isinstance(leaf, jax.core.Tracer):
            return f"its result holds a {type(leaf).__name__}, which a compiled program does not return as it is"
    return None
