"""A funcgrad ``Graph`` as a block diagram in the lecture's notation: nodes and labelled edges.

Node kinds (LeCun, NYU Deep Learning week 2):

* ``observed``: an observed input of the system (data), a shaded circle;
* ``parameter``: a differentiated input (the parameters w), a circle;
* ``constant``: a value captured from outside the function;
* ``function``: a deterministic function, a box rounded on its output side (the
  direction in which it is easy to compute); one per equation, or one per
  collapsed call/scope;
* ``variable``: a computed variable named with ``funcgrad.tag``, a circle;
* ``cost``: the scalar cost the graph ends in;
* ``backward``: a function of the backward pass (``funcgrad.backward_graph``),
  labelled with the cotangents it computes (dC/dx);
* ``gradient``: an output gradient dC/dw of a backward graph.

Edges carry the shape of the value flowing along them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence

from funcgrad.core.ir import Eqn, Graph, Var, type_str, var_names
from funcgrad.inspect.backward_graph import cotangent_targets, is_backward


@dataclasses.dataclass
class Node:
    id: str
    kind: str
    label: str
    sublabel: str = ""
    tooltip: str = ""
    eqns: int = 0  # equations this node stands for


@dataclasses.dataclass
class Edge:
    src: str
    dst: str
    label: str = ""


@dataclasses.dataclass
class Diagram:
    nodes: list[Node]
    edges: list[Edge]
    title: str = ""

    def kinds(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for n in self.nodes:
            out[n.kind] = out.get(n.kind, 0) + 1
        return out


def _short_label(eqn: Eqn) -> str:
    if eqn.primitive in ("custom_jvp_call", "custom_vjp_call") and eqn.params.get("name"):
        return str(eqn.params["name"])
    return eqn.primitive


def _scope_parts(eqn: Eqn) -> tuple[bool, list[str]]:
    """(is it a backward equation, its scope components without the backward marker)."""
    parts = [p for p in eqn.source.scope.split("/") if p]
    if is_backward(eqn):
        return True, parts[1:]
    return False, parts


def _pretty_scope(part: str, rename: dict[str, str] | None = None) -> str:
    """``jit(linear)`` -> ``linear``; ``ct[a,k]`` -> ``∂C/∂x, ∂C/∂k`` (inputs under their argument names)."""
    if part.startswith("jit(") and part.endswith(")"):
        return part[4:-1]
    if part.startswith("ct[") and part.endswith("]"):
        return _partials(part[3:-1].split(","), rename or {})
    return part


def _partials(targets: list[str], rename: dict[str, str]) -> str:
    return ", ".join(f"∂C/∂{rename.get(t, t)}" for t in targets)


def _group_key(eqn: Eqn, collapse) -> tuple | None:
    """The scope an equation is collapsed into, or None to draw it alone."""
    if eqn.primitive == "tag" or not collapse:
        return None
    backward, parts = _scope_parts(eqn)
    if not parts:
        return None
    if collapse is True or isinstance(collapse, int):
        depth = 1 if collapse is True else int(collapse)
        return (backward, *parts[:depth])
    wanted = set(collapse)
    for i, p in enumerate(parts):
        if p in wanted or _pretty_scope(p) in wanted:
            return (backward, *parts[: i + 1])
    return None


def build_diagram(
    graph: Graph,
    *,
    input_labels: Sequence[str] | None = None,
    differentiated: Sequence[bool] | None = None,
    collapse: bool | int | Iterable[str] = False,
    edge_labels: bool = True,
    title: str = "",
    blocks: Mapping[int, tuple[str, str]] | None = None,
) -> Diagram:
    """Turn ``graph`` into a ``Diagram``.

    Args:
      graph: a forward graph (``funcgrad.trace``) or a backward graph (``funcgrad.backward_graph``).
      input_labels: display names of the graph inputs (argument names and pytree paths).
      differentiated: which inputs are parameters (differentiated) rather than observed data.
      collapse: ``False``: one node per equation; ``True``: one node per top-level scope (an inlined
        ``jit`` call, a ``jax.named_scope``, a backward rule ``ct[x]``); an int: scopes to that depth;
        names: collapse only those scopes (``"linear"`` matches ``jit(linear)``).
      edge_labels: label edges with the shape of the value they carry.
      title: a caption.
      blocks: ``id(eqn) -> (block id, label)`` for forward equations drawn as one box per block
        (``funcgrad.inspect.grouping``, ``draw(level=...)``); the other forward equations are drawn alone,
        backward ones one box per rule. Replaces ``collapse``.
    """
    names = var_names(graph)
    input_labels = list(input_labels) if input_labels is not None else [names[id(v)] for v in graph.inputs]
    differentiated = list(differentiated) if differentiated is not None else [True] * len(graph.inputs)
    groups = _groups(graph.eqns, collapse, blocks)
    labels = {} if blocks is None else {key: label for key, label in blocks.values()}
    for _ in range(len(groups)):
        diagram, cycle = _assemble(
            graph, groups, names, input_labels, differentiated, edge_labels, title, labels, blocks
        )
        if not cycle:
            return diagram
        # a collapsed group that both feeds and consumes another node cannot be one box: split it
        groups = [g for grp in groups for g in ([grp] if id(grp) not in cycle else [[e] for e in grp])]
    return diagram


def _groups(eqns, collapse, blocks=None) -> list[list[Eqn]]:
    groups: list[list[Eqn]] = []
    last = None
    for e in eqns:
        if blocks is None:
            key = _group_key(e, collapse)
        elif is_backward(e):
            key = _group_key(e, True)  # one box per backward rule
        else:
            key = ("block", blocks[id(e)][0]) if id(e) in blocks else None
        if key is not None and key == last:
            groups[-1].append(e)
        else:
            groups.append([e])
        last = key
    return groups


def _assemble(graph, groups, names, input_labels, differentiated, edge_labels, title, labels=None, blocks=None):
    nodes: list[Node] = []
    edges: list[Edge] = []
    producer: dict[int, str] = {}
    for i, (v, label, diff) in enumerate(zip(graph.inputs, input_labels, differentiated)):
        nid = f"in{i}"
        kind = "parameter" if diff and v.type.is_float else "observed"
        nodes.append(Node(nid, kind, label, type_str(v.type), f"input {label}: {type_str(v.type)}"))
        producer[id(v)] = nid
    for i, v in enumerate(graph.constvars):
        nid = f"const{i}"
        nodes.append(Node(nid, "constant", "const", type_str(v.type), f"captured constant {type_str(v.type)}"))
        producer[id(v)] = nid
    rename = {names[id(v)]: label for v, label in zip(graph.inputs, input_labels)}
    group_of: dict[str, list[Eqn]] = {}
    for k, grp in enumerate(groups):
        nid = f"e{k}"
        group_of[nid] = grp
        block = blocks.get(id(grp[0])) if blocks and len(grp) > 1 and not is_backward(grp[0]) else None
        nodes.append(_group_node(nid, grp, names, rename, None if block is None else labels[block[0]]))
        for e in grp:
            for v in e.outputs:
                producer[id(v)] = nid
    seen = set()

    def connect(src_var, dst: str):
        src = producer.get(id(src_var))
        if src is None or src == dst or (src, dst, id(src_var)) in seen:
            return
        seen.add((src, dst, id(src_var)))
        edges.append(Edge(src, dst, type_str(src_var.type, dtypes=False) if edge_labels else ""))

    for nid, grp in group_of.items():
        for e in grp:
            for a in e.inputs:
                if isinstance(a, Var):
                    connect(a, nid)
    backward_graph = any(is_backward(e) for e in graph.eqns)
    for i, a in enumerate(graph.outputs):
        if not isinstance(a, Var):
            continue
        nid = f"out{i}"
        name = names[id(a)]
        if backward_graph and i > 0:  # outputs of a backward graph: the loss, then one gradient per parameter
            kind, text = "gradient", f"∂C/∂{_grad_target(graph, i, input_labels, differentiated)}"
        elif not a.type.shape and a.type.is_float and i == 0:
            kind, text = "cost", f"C = {name}"
        else:
            kind, text = "variable", name
        nodes.append(Node(nid, kind, text, type_str(a.type), f"output {i}: {type_str(a.type)}"))
        connect(a, nid)
    diagram = Diagram(nodes, edges, title)
    return diagram, _cycle_groups(diagram, group_of)


def _grad_target(graph, i, input_labels, differentiated) -> str:
    diff = [label for label, d, v in zip(input_labels, differentiated, graph.inputs) if d]
    return diff[i - 1] if i - 1 < len(diff) else "?"


def _group_node(nid: str, grp: list[Eqn], names, rename, block_label: str | None = None) -> Node:
    first = grp[0]
    backward, parts = _scope_parts(first)
    out_types = ", ".join(type_str(v.type) for v in first.outputs)
    where = first.source.short_where() if first.source.file else ""
    if first.primitive == "tag" and len(grp) == 1:
        label = names[id(first.outputs[0])]
        return Node(nid, "variable", label, out_types, f"tag {label}: {out_types} {where}".strip(), 1)
    kind = "backward" if backward else "function"
    if len(grp) == 1:
        targets = cotangent_targets(first)
        out = ", ".join(names[id(v)] for v in first.outputs)
        if backward:
            sub = _partials(targets, rename) if targets else "sum / seed"
        else:  # the name of its result, as in the printout, after the call/scope it sits in
            sub = f"{_pretty_scope(parts[-1])} → {out}" if parts else f"→ {out}"
        tip = f"{out} = {first.primitive}  {first.source.scope} {where}"
        return Node(nid, kind, _short_label(first), sub, tip.strip(), 1)
    common = _common_prefix([_scope_parts(e)[1] for e in grp])  # a group shares at least its collapsed scope
    label = _pretty_scope(common[-1], rename) if common else first.primitive
    if block_label is not None:  # a block of funcgrad.inspect.grouping: a layer, a call, a line of code
        label = block_label
    prims = sorted({e.primitive for e in grp})
    tip = f"{'/'.join(common)}: {len(grp)} equations ({', '.join(prims)}) {where}"
    return Node(nid, kind, label, f"{len(grp)} eqns", tip.strip(), len(grp))


def _common_prefix(seqs: list[list[str]]) -> list[str]:
    out = []
    for items in zip(*seqs):
        if all(x == items[0] for x in items):
            out.append(items[0])
        else:
            break
    return out


def _cycle_groups(diagram: Diagram, group_of: dict[str, list]) -> set[int]:
    """ids of the multi-equation groups that lie on a cycle (collapsing them would loop)."""
    succ: dict[str, list[str]] = {n.id: [] for n in diagram.nodes}
    for e in diagram.edges:
        succ[e.src].append(e.dst)
    state: dict[str, int] = {}
    on_cycle: set[str] = set()
    stack: list[str] = []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for m in succ[n]:
            if state.get(m) == 1:
                on_cycle.update(stack[stack.index(m) :])
            elif m not in state:
                visit(m)
        stack.pop()
        state[n] = 2

    for n in succ:
        if n not in state:
            visit(n)
    return {id(group_of[n]) for n in on_cycle if n in group_of and len(group_of[n]) > 1}
