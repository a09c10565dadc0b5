"""Zero perturbations of chosen values, at any depth: ``perturb``.

``perturb(graph, targets)`` rewrites ``graph`` so that each target z is replaced, in all its uses,
by ``z + p_z``, where ``p_z`` is a new input of the graph; dL/dp_z at ``p_z = 0`` is then dL/dz
(``funcgrad.sensitivities``, ``funcgrad.per_example_grad_norms``).

A target may also be a value computed inside a program that an equation holds. Its perturbation
is then threaded through that equation as one more operand:

* ``scan`` (and ``fori_loop`` with static bounds, which is a scan): one more scanned-over input
  ``xs`` of shape ``(length, *z.shape)``; iteration t adds its slice to z, so dL/dp is dL/dz_t
  stacked over the iterations (indexed as ``xs`` are, also for ``reverse=True``). A scan inside a
  scan gives ``(T_outer, T_inner, *z.shape)``.
* ``cond``: one more operand (z's type, stacked by any loop inside the branch); the branch that
  computes z adds it, the others ignore it (so its gradient is zero when that branch is not taken,
  as JAX's gradient of the same construction is).
* ``checkpoint`` (``jax.checkpoint`` / ``jax.remat``): one more input of the body.

Not reached, each refused by name: a ``while`` loop's body or condition (a loop with a dynamic trip
count cannot be reverse-differentiated), and the function of a ``custom_jvp`` / ``custom_vjp`` (its
derivative is the user's rule, which has no term for a value inside it), or any other program.

The graph stays valid IR: nested programs are new ``Graph`` objects with the extra inputs, and
each rebuilt equation evaluates its new program with the same ``lax`` construct (its ``impl``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import jax
from jax import lax

from funcgrad.core import jax_compat as jc
from funcgrad.core.interpret import eval_graph
from funcgrad.core.ir import Eqn, Graph, Source, Type, Var
from funcgrad.errors import InputError, NonDifferentiableError


def perturb(graph: Graph, targets: Sequence[Var]) -> tuple[Graph, dict[int, Eqn]]:
    """``graph`` with each target z replaced, in all its uses, by ``z + p_z``; the ``p_z`` are new inputs,
    after the graph's own, in the order of ``targets``.

    Args:
      graph: the program.
      targets: variables bound by equations of ``graph`` or of the programs nested in them (a scan's
        body, a cond's branch, a checkpoint's body, at any depth).

    Returns:
      The new graph, and ``id(eqn) -> its copy in the new graph`` for ``graph``'s own equations (whose
      inputs may be moved values). ``p_z`` has z's type, with one leading axis per enclosing loop (the
      outermost first) of that loop's length.
    """
    new_graph, copies = _perturb(graph, list(targets))
    return new_graph, copies


def _perturb(graph: Graph, targets: list[Var]) -> tuple[Graph, dict[int, Eqn]]:
    top = {id(v) for e in graph.eqns for v in e.outputs}
    direct = {id(v): Var(v.type) for v in targets if id(v) in top}
    nested = _nested_targets(graph, [v for v in targets if id(v) not in top])
    p_of = dict(direct)
    subst: dict[int, Var] = {}
    eqns: list[Eqn] = []
    copies: dict[int, Eqn] = {}
    for e in graph.eqns:
        ins = tuple(subst.get(id(a), a) if isinstance(a, Var) else a for a in e.inputs)
        copy = dataclasses.replace(e, inputs=ins)
        inner = nested.get(id(e))
        if inner:
            copy, outer = _through(copy, inner)
            p_of.update(zip(map(id, inner), outer))
        copies[id(e)] = copy
        eqns.append(copy)
        for v in e.outputs:
            if id(v) in direct:
                moved = Var(v.type, v.label)
                eqns.append(Eqn("add", (v, direct[id(v)]), (moved,), {}, _add_impl, Source(scope="perturbation")))
                subst[id(v)] = moved
    outputs = tuple(subst.get(id(a), a) if isinstance(a, Var) else a for a in graph.outputs)
    # a target bound nowhere in the graph gets an input that nothing reads (its gradient is zero)
    extra = tuple(p_of.get(id(v)) or Var(v.type) for v in targets)
    return Graph((*graph.inputs, *extra), tuple(eqns), outputs, graph.constvars, graph.consts), copies


def _nested_targets(graph: Graph, targets: list[Var]) -> dict[int, list[Var]]:
    """id(eqn) -> the targets bound inside the programs that equation of ``graph`` holds (in order)."""
    holder = {}
    for e in graph.eqns:
        for sub in e.subgraphs():
            holder.update(dict.fromkeys(_bound_ids(sub), id(e)))
    found: dict[int, list[Var]] = {}
    for v in targets:
        if id(v) in holder:
            found.setdefault(holder[id(v)], []).append(v)
    return found


def _bound_ids(graph: Graph) -> set[int]:
    """The ids of the variables equations bind in ``graph`` and in the programs nested in it."""
    return {id(v) for e, _ in graph.walk() for v in e.outputs}


def _through(eqn: Eqn, targets: list[Var]) -> tuple[Eqn, list[Var]]:
    """``eqn`` rebuilt so that its programs perturb ``targets``, and the new operands (one per target)."""
    thread = _THREADS.get(eqn.primitive)
    if thread is None:
        raise _refusal(eqn, targets[0])
    new_eqn, outer = thread(eqn, targets)
    if hasattr(eqn.impl, "primitive"):
        new_eqn.impl.primitive = eqn.impl.primitive  # what a checkpoint policy is asked about
    return new_eqn, outer


def _with_extra_inputs(eqn: Eqn, operands: Sequence[Var], params: dict, impl: Callable) -> Eqn:
    return dataclasses.replace(eqn, inputs=(*eqn.inputs, *operands), params=params, impl=impl)


# ------------------------------------------------------------------------ scan


def _scan(eqn: Eqn, targets: list[Var]) -> tuple[Eqn, list[Var]]:
    # the perturbations are scanned over: appended after the body's xs, the last of its inputs
    params = dict(eqn.params)
    body, _ = _perturb(params["jaxpr"], targets)
    per_step = body.inputs[len(body.inputs) - len(targets) :]
    stacked = [Var(Type((params["length"], *v.type.shape), v.type.dtype, v.type.weak_type)) for v in per_step]
    params["jaxpr"] = body
    if "linear" in params:  # older JAX
        params["linear"] = (*params["linear"], *[False] * len(targets))
    return _with_extra_inputs(eqn, stacked, params, _scan_impl(params)), stacked


def _scan_impl(params) -> Callable[..., list]:
    body, num_consts, num_carry = params["jaxpr"], params["num_consts"], params["num_carry"]
    carry_t = body.in_types[num_consts : num_consts + num_carry]

    def impl(*args):
        consts = args[:num_consts]

        def step(carry, x):
            outs = eval_graph(body, *consts, *carry, *x)
            return [_strong(c, t) for c, t in zip(outs[:num_carry], carry_t)], outs[num_carry:]

        init = [_strong(c, t) for c, t in zip(args[num_consts : num_consts + num_carry], carry_t)]
        final, ys = lax.scan(
            step,
            init,
            list(args[num_consts + num_carry :]),
            length=params["length"],
            reverse=params["reverse"],
            unroll=params.get("unroll", 1),
        )
        return [*final, *ys]

    return impl


def _strong(x, t: Type):
    # loop carries keep one type (not weakly typed)
    return lax.convert_element_type(x, t.dtype)


# ------------------------------------------------------------------------ cond


def _cond(eqn: Eqn, targets: list[Var]) -> tuple[Eqn, list[Var]]:
    # one operand per target, read by the branch that binds it and ignored by the others
    branches = eqn.params["branches"]
    perturbed, own = [], []
    for g in branches:
        bound = _bound_ids(g)
        mine = [v for v in targets if id(v) in bound]
        pg, _ = _perturb(g, mine)
        perturbed.append(pg)
        own.append(dict(zip(map(id, mine), pg.inputs[len(g.inputs) :])))
    types = {k: p.type for inputs in own for k, p in inputs.items()}
    new = tuple(
        dataclasses.replace(pg, inputs=(*g.inputs, *(mine.get(id(v)) or Var(types[id(v)]) for v in targets)))
        for g, pg, mine in zip(branches, perturbed, own)
    )
    operands = [Var(types[id(v)]) for v in targets]
    params = {**eqn.params, "branches": new}
    if "linear" in params and params["linear"] is not None:  # older JAX
        params["linear"] = (*params["linear"], *[False] * len(targets))
    platforms = params.get("branches_platforms")

    def impl(index, *ops):
        return list(jc.switch(index, [_evaluator(g) for g in new], ops, platforms))

    return _with_extra_inputs(eqn, operands, params, impl), operands


def _evaluator(graph: Graph) -> Callable[..., list]:
    return lambda *args: eval_graph(graph, *args)


# ------------------------------------------------------------------ checkpoint


def _checkpoint(eqn: Eqn, targets: list[Var]) -> tuple[Eqn, list[Var]]:
    params = dict(eqn.params)
    body, _ = _perturb(params["body"], targets)
    operands = [Var(v.type) for v in body.inputs[len(body.inputs) - len(targets) :]]
    params["body"] = body
    remat = jax.checkpoint(_evaluator(body), prevent_cse=params.get("prevent_cse", True), policy=params.get("policy"))
    return _with_extra_inputs(eqn, operands, params, lambda *args: list(remat(*args))), operands


_THREADS = {"scan": _scan, "cond": _cond, "checkpoint": _checkpoint}


# --------------------------------------------------------------------- refusals


def threads_through(eqn: Eqn) -> bool:
    """Whether ``perturb`` can reach values inside ``eqn``'s programs (a scan, cond or checkpoint)."""
    return eqn.primitive in _THREADS


def nested_tags(eqn: Eqn) -> tuple[list[Var], list[tuple[Var, Eqn]]]:
    """``(reached, blocked)``: the floating tagged values inside ``eqn``'s programs (at any depth) that
    ``perturb`` can reach, in program order, and those it cannot, each with the innermost equation that
    stops it (a ``while`` loop, a custom-derivative function: ``refusal(that, v)`` says why)."""
    reached: list[Var] = []
    blocked: list[tuple[Var, Eqn]] = []
    for sub in eqn.subgraphs():
        for inner in sub.eqns:
            if inner.primitive == "tag":
                reached += [v for v in inner.outputs if v.type.is_float]
            r, b = nested_tags(inner)
            reached += r
            blocked += b
    if reached and not threads_through(eqn):
        return [], blocked + [(v, eqn) for v in reached]
    return reached, blocked


def refusal(eqn: Eqn, target: Var) -> Exception:
    """The error saying why ``target``, inside ``eqn``'s program, cannot be perturbed."""
    return _refusal(eqn, target)


def _refusal(eqn: Eqn, target: Var) -> Exception:
    what = f"the value {target.label or target.type.short()!r}"
    where = f"inside the {eqn.primitive!r} at {eqn.source.where()}"
    if eqn.primitive == "while":
        return NonDifferentiableError(
            f"cannot reach {what} {where}: reverse-mode differentiation does not work for lax.while_loop or "
            "lax.fori_loop with dynamic start/stop values (the number of iterations is only known at run "
            "time, so the values of every iteration cannot be kept).\n  fix: use lax.scan, or "
            "lax.fori_loop with static (Python int) bounds, which becomes a scan; or tag a value outside "
            "the loop."
        )
    if eqn.primitive in ("custom_jvp_call", "custom_vjp_call"):
        name = eqn.params.get("name", "custom")
        return InputError(
            f"cannot reach {what} {where} (the function {name!r}): its derivative is its custom rule, which "
            "has no term for a value computed inside it.\n  fix: tag the function's inputs or outputs "
            "instead, outside the custom_jvp/custom_vjp function."
        )
    return InputError(
        f"cannot reach {what} {where}: funcgrad threads perturbations only through scan, cond and "
        "checkpoint.\n  fix: tag a value outside it."
    )


def _add_impl(z, p):
    return [lax.add(z, p)]


_add_impl.primitive = lax.add_p  # what a checkpoint policy is asked about
