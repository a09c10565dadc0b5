"""Where each box of each view goes: Graphviz's ``dot`` when it is installed, funcgrad's own layout otherwise.

Layout is what Graphviz does best (layered drawing with clusters and splines), so where ``dot`` is on
``PATH`` every view is laid out by one ``dot -Tplain`` run over all of them; without it,
``funcgrad.inspect.drawing.layout.layered_layout`` (pure Python) places the boxes and straight
polylines join them. Both lay the graph out bottom to top, inputs at the bottom, as the lecture's
diagrams are drawn, and both give the page the same thing per view::

    {"w": width, "h": height, "curve": "bezier" | "line",
     "nodes": {node id: [center x, center y, width, height]},
     "edges": [[x0, y0, x1, y1, ...], ...]  (one per view edge, in order),
     "clusters": {block id: [x, y, width, height]}}

A cluster (an opened block) is the bounding box of its boxes, padded, with room for its title.
"""

from __future__ import annotations

import re
import subprocess

from funcgrad.inspect.drawing import dot as _dot
from funcgrad.inspect.drawing.layout import layered_layout
from funcgrad.inspect.explorer.views import View

ENGINES = ("auto", "dot", "python")
PAD, TITLE = 8.0, 15.0  # cluster padding and title height, px
PX = 72.0  # dot's unit is the inch; the page's is the CSS pixel at 72 per inch


def lay_out(views: list[View], engine: str = "auto") -> str:
    """Fill every view's ``layout``; returns the engine used ("dot" or "python")."""
    if engine not in ENGINES:
        raise ValueError(f"layout engine must be one of {ENGINES}, got {engine!r}")
    use_dot = engine == "dot" or (engine == "auto" and _dot.dot_program() is not None)
    if use_dot:
        _with_dot(views)
    else:
        for view in views:
            _with_python(view)
    for view in views:
        _fit_clusters(view)
    return "dot" if use_dot else "python"


def _with_python(view: View) -> None:
    index = {n.id: i for i, n in enumerate(view.nodes)}
    lay = layered_layout([n.size for n in view.nodes], [(index[e.src], index[e.dst]) for e in view.edges])
    view.layout = {
        "w": lay.width,
        "h": lay.height,
        "curve": "line",
        "nodes": {n.id: [x, y, w, h] for n, (x, y), (w, h) in zip(view.nodes, lay.centers, lay.sizes)},
        "edges": [[c for point in path for c in point] for path in lay.paths],
    }


def _dot_text(view: View, k: int) -> str:
    lines = [
        f"digraph v{k} {{",
        "  rankdir=BT; nodesep=0.3; ranksep=0.45;",
        '  node [shape=box, fixedsize=true, label=""];',
    ]
    members: dict[str | None, list[str]] = {}
    for n in view.nodes:
        members.setdefault(n.cluster, []).append(
            f'  "{n.id}" [width={n.size[0] / PX:.3f}, height={n.size[1] / PX:.3f}];'
        )
    children: dict[str | None, list[str]] = {}
    for block_id, parent in view.clusters:
        children.setdefault(parent, []).append(block_id)

    def emit(cluster: str | None, indent: str) -> None:
        for line in members.get(cluster, []):
            lines.append(indent + line.strip())
        for child in children.get(cluster, []):
            lines.append(f'{indent}subgraph "cluster_{child}" {{ margin=14;')
            emit(child, indent + "  ")
            lines.append(indent + "}")

    emit(None, "  ")
    lines += [f'  "{e.src}" -> "{e.dst}";' for e in view.edges]
    lines.append("}")
    return "\n".join(lines)


def _with_dot(views: list[View]) -> None:
    text = "\n".join(_dot_text(v, k) for k, v in enumerate(views))
    program = _dot.dot_program()
    if program is None:
        _dot.render("", "plain")  # raises the error that says how to install Graphviz
    done = subprocess.run([program, "-Tplain"], input=text.encode(), capture_output=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"`dot -Tplain` failed: {done.stderr.decode(errors='replace').strip()}")
    chunks = [c for c in done.stdout.decode().split("\nstop") if c.strip()]
    if len(chunks) != len(views):
        raise RuntimeError(f"`dot -Tplain` laid out {len(chunks)} of {len(views)} views")
    for view, chunk in zip(views, chunks):
        view.layout = _parse_plain(chunk, view)


_TOKEN = re.compile(r'"[^"]*"|\S+')


def _parse_plain(chunk: str, view: View) -> dict:
    nodes, edges = {}, {}
    width = height = 0.0
    for line in chunk.strip().splitlines():
        parts = [t.strip('"') for t in _TOKEN.findall(line)]
        if parts[0] == "graph":
            width, height = float(parts[2]) * PX, float(parts[3]) * PX
        elif parts[0] == "node":
            x, y, w, h = (float(v) * PX for v in parts[2:6])
            nodes[parts[1]] = [x, height - y, w, h]  # dot's y grows upward, the page's downward
        elif parts[0] == "edge":
            n = int(parts[3])
            coords = [float(v) * PX for v in parts[4 : 4 + 2 * n]]
            points = [c if i % 2 == 0 else height - c for i, c in enumerate(coords)]
            edges[(parts[1], parts[2])] = points
    return {
        "w": width,
        "h": height,
        "curve": "bezier",
        "nodes": nodes,
        "edges": [edges.get((e.src, e.dst), []) for e in view.edges],
    }


def _fit_clusters(view: View) -> None:
    """Cluster boxes from their members, then move everything so that all fits on the canvas."""
    lay = view.layout
    parent = dict(view.clusters)
    boxes: dict[str, list[float]] = {}

    def grow(block_id: str, x0: float, y0: float, x1: float, y1: float) -> None:
        box = boxes.setdefault(block_id, [x0, y0, x1, y1])
        box[:] = [min(box[0], x0), min(box[1], y0), max(box[2], x1), max(box[3], y1)]

    for node in view.nodes:
        x, y, w, h = lay["nodes"][node.id]
        cluster = node.cluster
        while cluster is not None:
            grow(cluster, x - w / 2, y - h / 2, x + w / 2, y + h / 2)
            cluster = parent.get(cluster)
    # inner clusters first: each outer one holds its inner ones' padded boxes
    order = sorted(boxes, key=lambda b: -_depth(b, parent))
    for block_id in order:
        x0, y0, x1, y1 = boxes[block_id]
        padded = [x0 - PAD, y0 - PAD - TITLE, x1 + PAD, y1 + PAD]
        boxes[block_id] = padded
        if parent.get(block_id) is not None:
            grow(parent[block_id], *padded)
    xs = [v for x, y, w, h in lay["nodes"].values() for v in (x - w / 2, x + w / 2)]
    ys = [v for x, y, w, h in lay["nodes"].values() for v in (y - h / 2, y + h / 2)]
    xs += [v for b in boxes.values() for v in (b[0], b[2])]
    ys += [v for b in boxes.values() for v in (b[1], b[3])]
    dx = 12.0 - min(xs, default=0.0)
    dy = 12.0 - min(ys, default=0.0)
    lay["nodes"] = {k: [x + dx, y + dy, w, h] for k, (x, y, w, h) in lay["nodes"].items()}
    lay["edges"] = [[c + (dx if i % 2 == 0 else dy) for i, c in enumerate(path)] for path in lay["edges"]]
    lay["clusters"] = {k: [b[0] + dx, b[1] + dy, b[2] - b[0], b[3] - b[1]] for k, b in boxes.items()}
    lay["w"] = max(max(xs, default=0.0) + dx + 12.0, 200.0)
    lay["h"] = max(max(ys, default=0.0) + dy + 12.0, 120.0)
    for key in ("w", "h"):
        lay[key] = round(lay[key], 1)
    lay["nodes"] = {k: [round(c, 1) for c in v] for k, v in lay["nodes"].items()}
    lay["edges"] = [[round(c, 1) for c in path] for path in lay["edges"]]
    lay["clusters"] = {k: [round(c, 1) for c in v] for k, v in lay["clusters"].items()}


def _depth(block_id: str, parent: dict) -> int:
    d = 0
    while parent.get(block_id) is not None:
        block_id = parent[block_id]
        d += 1
    return d
