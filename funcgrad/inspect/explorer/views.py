"""The pictures the page can show: one view per block, and one per equation holding nested programs.

A view shows a block's items (``grouping.frontier``: big blocks opened, drawn as clusters around their
items), the values entering it (the function's arguments in the top view) at the bottom and the values
leaving it at the top, as in the lecture's block diagrams. An edge joins two boxes once, however many
values flow between them; it lists them all (the page labels it with the first one's shape).
"""

from __future__ import annotations

import dataclasses

from funcgrad.core.ir import Eqn, Graph, Var, type_str, var_names
from funcgrad.inspect.drawing.style import text_width
from funcgrad.inspect.explorer.flow import Flow
from funcgrad.inspect.grouping.blocks import Block, Grouping, frontier, programs
from funcgrad.inspect.grouping.frames import shorten

LABEL_PX, SUB_PX = 12.0, 10.0


@dataclasses.dataclass
class Node:
    id: str
    kind: str  # "block", "eqn", "body" (an equation with programs), "tag", "in", "param", "observed", "const", "out", "cost"
    ref: str  # the block ("b3"), equation ("e12") or value ("v5") it stands for
    label: str
    sub: str = ""
    main: int | None = None  # the value whose histogram the box shows
    cluster: str | None = None  # the innermost opened block it sits in
    size: tuple[float, float] = (0.0, 0.0)


@dataclasses.dataclass
class Edge:
    src: str
    dst: str
    values: list[int]


@dataclasses.dataclass
class View:
    id: str
    title: str
    crumbs: list[tuple[str, str]]  # (view id, title) from the top view down to this one
    nodes: list[Node]
    edges: list[Edge]
    clusters: list[tuple[str, str | None]]  # (opened block id, the cluster it sits in)
    layout: dict = dataclasses.field(default_factory=dict)


class Index:
    """Stable numbers for values and equations (the page refers to them as v<k> and e<k>)."""

    def __init__(self):
        self.value_ids: dict[int, int] = {}
        self.vars: list = []
        self.value_names: list[str] = []
        self.eqn_ids: dict[int, int] = {}
        self.eqns: list[Eqn] = []

    def value(self, var, name: str = "") -> int:
        k = self.value_ids.get(id(var))
        if k is None:
            k = self.value_ids[id(var)] = len(self.vars)
            self.vars.append(var)
            self.value_names.append(name)
        return k

    def eqn(self, eqn: Eqn) -> int:
        k = self.eqn_ids.get(id(eqn))
        if k is None:
            k = self.eqn_ids[id(eqn)] = len(self.eqns)
            self.eqns.append(eqn)
        return k


def eqn_label(eqn: Eqn) -> str:
    if eqn.primitive == "tag":
        return str(eqn.params.get("name", "tag"))
    if eqn.primitive in ("custom_jvp_call", "custom_vjp_call") and eqn.params.get("name"):
        return str(eqn.params["name"])
    return eqn.primitive


@dataclasses.dataclass
class _Section:
    """One graph's part of a view: the viewed block (or a program's root) and how its edges are cut."""

    graph: Graph
    flow: Flow
    names: dict
    block: Block
    visible: list
    opened: list
    boundary: str  # "root": the arguments and results; "body": a program's inputs and outputs; "inner": a block's


class ViewBuilder:
    """Builds every view of a grouping; numbers values and equations as it goes."""

    def __init__(self, grouping: Grouping, input_labels, wrt, budget: int = 15):
        self.g = grouping
        self.index = Index()
        self.input_labels, self.wrt, self.budget = list(input_labels), list(wrt), budget
        self.flows: dict[int, Flow] = {}
        self.names: dict[int, dict] = {}  # id(graph) -> var names
        self.graph_of: dict[int, Graph] = {}  # id(block) -> the graph its equations belong to
        self.holder: dict[int, Eqn] = {}  # id(body root block) -> the equation holding that program
        self.views: dict[str, View] = {}
        self._register(grouping.graph, grouping.root)

    def _register(self, graph: Graph, root: Block) -> None:
        self.flows[id(graph)] = Flow(graph)
        names = self.names[id(graph)] = var_names(graph)
        for v in (*graph.inputs, *graph.constvars, *(v for e in graph.eqns for v in e.outputs)):
            self.index.value(v, names[id(v)])
        for block in root.blocks():
            self.graph_of[id(block)] = graph
        for e in graph.eqns:
            self.index.eqn(e)
        for e in graph.eqns:
            for body, (_, sub) in zip(self.g.bodies.get(id(e), ()), programs(e)):
                self.holder[id(body)] = e
                self._register(sub, body)

    def view_id(self, block: Block) -> str:
        holder = self.holder.get(id(block))
        return f"e{self.index.eqn(holder)}" if holder is not None else block.id

    def build(self) -> dict[str, View]:
        root = self.g.root
        self._add(root.id, root.label, [self._section(root, "root")])
        for block in self.g.blocks():
            if block is root or id(block) in self.holder:
                continue
            self._add(block.id, block.label, [self._section(block, "inner")])
        for eqn_id, bodies in self.g.bodies.items():
            eqn = self.g.eqn_by_id[eqn_id]
            view_id = f"e{self.index.eqn(eqn)}"
            self._add(view_id, eqn_label(eqn), [self._section(b, "body", open_all=True) for b in bodies])
        return self.views

    def _section(self, block: Block, boundary: str, open_all: bool = False) -> _Section:
        graph = self.graph_of[id(block)]
        visible, opened = frontier(block, self.budget)
        if open_all and len(self.g.bodies.get(id(self.holder.get(id(block))), ())) > 1:
            opened = [block, *opened]  # several programs (cond's branches): each in a cluster of its own
        return _Section(graph, self.flows[id(graph)], self.names[id(graph)], block, visible, opened, boundary)

    def crumbs(self, block: Block) -> list[tuple[str, str]]:
        chain = []
        b = block
        while b is not None:
            chain.append(b)
            b = b.parent
        out = []
        for b in reversed(chain):
            holder = self.holder.get(id(b))
            if holder is not None:
                out.append((self.view_id(b), eqn_label(holder)))
            elif b.kind != "body":
                out.append((b.id, b.label))
        return out

    def _add(self, view_id: str, title: str, sections: list[_Section]) -> None:
        nodes: list[Node] = []
        edges: dict[tuple[str, str], Edge] = {}
        clusters: list[tuple[str, str | None]] = []
        for k, sec in enumerate(sections):
            self._draw_section(f"s{k}", sec, nodes, edges, clusters)
        self.views[view_id] = View(
            view_id, title, self.crumbs(sections[0].block), nodes, list(edges.values()), clusters
        )

    def _draw_section(self, prefix, sec: _Section, nodes, edges, clusters) -> None:
        ix = self.index
        opened_ids = {id(b) for b in sec.opened}
        for b in sec.opened:
            clusters.append((b.id, _cluster_of(b.parent, opened_ids)))
        at: dict[int, str] = {}  # id(eqn) -> the node drawing it
        for item in sec.visible:
            node = self._item_node(f"{prefix}n{len(nodes)}", item, sec)
            node.cluster = _cluster_of(
                item.parent if isinstance(item, Block) else self.g.parent_of.get(id(item)), opened_ids
            )
            nodes.append(node)
            for e in item.eqns() if isinstance(item, Block) else [item]:
                at[id(e)] = node.id
        made: dict[int, str] = {}  # id(var) -> the boundary node drawing a value from outside

        def source_of(var) -> str:
            eqn = sec.flow.producer.get(id(var))
            if eqn is not None and id(eqn) in at:
                return at[id(eqn)]
            if id(var) not in made:
                made[id(var)] = self._boundary_in(f"{prefix}n{len(nodes)}", var, sec, nodes)
            return made[id(var)]

        def connect(src: str, dst: str, var) -> None:
            if src == dst:
                return
            edge = edges.setdefault((src, dst), Edge(src, dst, []))
            vid = ix.value(var)
            if vid not in edge.values:
                edge.values.append(vid)

        for item in list(sec.visible):
            eqns = list(item.eqns()) if isinstance(item, Block) else [item]
            dst = at[id(eqns[0])]
            for var in sec.flow.inputs_of(eqns):
                connect(source_of(var), dst, var)
        if sec.boundary == "inner":
            leaving = sec.flow.outputs_of(list(sec.block.eqns()))
        else:
            leaving = [a for a in sec.graph.outputs if isinstance(a, Var)]
        for k, var in enumerate(dict.fromkeys(leaving)):
            out = self._boundary_out(f"{prefix}n{len(nodes)}", var, k, sec, nodes)
            connect(source_of(var), out, var)

    def _item_node(self, nid: str, item, sec: _Section) -> Node:
        ix = self.index
        if isinstance(item, Block):
            eqns = list(item.eqns())
            outs = sec.flow.outputs_of(eqns)
            main = ix.value(outs[-1]) if outs else None
            return _sized(Node(nid, "block", item.id, shorten(item.label, 28), f"{len(eqns)} eqns", main))
        k = ix.eqn(item)
        main = ix.value(item.outputs[0]) if item.outputs else None
        if item.primitive == "tag":
            out = item.outputs[0]
            return _sized(Node(nid, "tag", f"e{k}", sec.names[id(out)], type_str(out.type), main))
        kind = "body" if id(item) in self.g.bodies else "eqn"
        outs = ", ".join(sec.names[id(v)] for v in item.outputs)
        return _sized(Node(nid, kind, f"e{k}", eqn_label(item), shorten(f"→ {outs}", 24), main))

    def _boundary_in(self, nid: str, var, sec: _Section, nodes: list) -> str:
        vid = self.index.value(var)
        label, kind = sec.names[id(var)], "in"
        if sec.boundary == "root":
            if var in sec.graph.constvars:
                label, kind = "const", "const"
            else:
                i = sec.graph.inputs.index(var)
                label = self.input_labels[i] if i < len(self.input_labels) else label
                kind = "param" if i < len(self.wrt) and self.wrt[i] and var.type.is_float else "observed"
        nodes.append(_sized(Node(nid, kind, f"v{vid}", shorten(label, 28), type_str(var.type), vid)))
        return nid

    def _boundary_out(self, nid: str, var, k: int, sec: _Section, nodes: list) -> str:
        vid = self.index.value(var)
        name = sec.names[id(var)]
        kind, label = "out", name
        if sec.boundary == "root" and k == 0 and var.type.shape == () and var.type.is_float:
            kind, label = "cost", f"C = {name}"
        nodes.append(_sized(Node(nid, kind, f"v{vid}", label, type_str(var.type), vid)))
        return nid


def _cluster_of(block: Block | None, opened_ids: set) -> str | None:
    while block is not None:
        if id(block) in opened_ids:
            return block.id
        block = block.parent
    return None


def _sized(node: Node) -> Node:
    text = max(text_width(node.label, LABEL_PX), text_width(node.sub, SUB_PX))
    if node.kind in ("block", "eqn", "body"):
        node.size = (max(text + 24, 72.0), 48.0)  # label, sublabel, and a histogram strip
    elif node.kind == "cost":
        node.size = (text + 24, 30.0)
    else:  # a value: an ellipse
        node.size = (max(text * 1.2 + 28, 48.0), 34.0)
    return node
