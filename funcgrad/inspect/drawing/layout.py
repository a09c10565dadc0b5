"""A layered (Sugiyama-style) layout of a directed acyclic graph, in pure Python.

Used when Graphviz's ``dot`` is not installed. The steps are the classic ones:

1. layers: each node one above its highest predecessor (longest path), then
   raised to just below its first consumer, so parameters enter where they are used;
2. edges spanning several layers get a chain of invisible dummy nodes;
3. order within layers: barycenter sweeps, keeping the order with fewest crossings;
4. x positions: each node pulled toward the mean of its neighbours, then
   overlaps pushed apart while keeping the order;
5. layer 0 at the bottom (inputs), data flowing upward, as in the lecture's diagrams.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence


@dataclasses.dataclass
class Layout:
    """Node centers, edge polylines (lists of points) and the canvas size; y grows downward (SVG)."""

    centers: list[tuple[float, float]]
    sizes: list[tuple[float, float]]
    paths: list[list[tuple[float, float]]]
    width: float
    height: float


def layered_layout(
    sizes: Sequence[tuple[float, float]],
    edges: Sequence[tuple[int, int]],
    *,
    rank_sep: float = 46.0,
    node_sep: float = 22.0,
    margin: float = 16.0,
) -> Layout:
    """Lay out nodes of the given (width, height) joined by ``edges`` (src, dst), sources at the bottom."""
    n = len(sizes)
    preds: list[list[int]] = [[] for _ in range(n)]
    succs: list[list[int]] = [[] for _ in range(n)]
    for s, d in edges:
        preds[d].append(s)
        succs[s].append(d)
    order = _topological(n, preds, succs)
    layer = [0] * n
    for v in order:
        layer[v] = max((layer[u] + 1 for u in preds[v]), default=0)
    for v in reversed(order):  # each node just below its first consumer: inputs enter where they are used
        if succs[v]:
            layer[v] = max(layer[v], min(layer[s] for s in succs[v]) - 1)
    low = min(layer, default=0)
    layer = [x - low for x in layer]

    # chains of dummy nodes for long edges
    widths = [w for w, _ in sizes]
    heights = [h for _, h in sizes]
    node_layer = list(layer)
    chains: list[list[int]] = []
    up: list[list[int]] = [list() for _ in range(n)]
    down: list[list[int]] = [list() for _ in range(n)]
    for s, d in edges:
        chain = [s]
        for lay in range(layer[s] + 1, layer[d]):
            node_layer.append(lay)
            widths.append(2.0)
            heights.append(0.0)
            up.append([])
            down.append([])
            chain.append(len(node_layer) - 1)
        chain.append(d)
        for a, b in zip(chain, chain[1:]):
            up[b].append(a)
            down[a].append(b)
        chains.append(chain)

    n_layers = max(node_layer, default=-1) + 1
    rows: list[list[int]] = [[] for _ in range(n_layers)]
    for v in _initial_order(len(node_layer), order, succs, n):
        rows[node_layer[v]].append(v)
    rows = _reduce_crossings(rows, up, down)
    xs = _x_positions(rows, widths, up, down, node_sep)

    # y: layer 0 at the bottom
    layer_h = [max((heights[v] for v in row), default=0.0) for row in rows]
    ys = [0.0] * len(node_layer)
    y = margin
    for k in reversed(range(n_layers)):
        for v in rows[k]:
            ys[v] = y + layer_h[k] / 2
        y += layer_h[k] + rank_sep
    height = y - rank_sep + margin
    left = min((xs[v] - widths[v] / 2 for v in range(len(xs))), default=0.0)
    xs = [x - left + margin for x in xs]
    width = max((xs[v] + widths[v] / 2 for v in range(len(xs))), default=0.0) + margin

    paths = []
    for chain in chains:
        s, d = chain[0], chain[-1]
        pts = [(xs[s], ys[s] - heights[s] / 2)]
        pts += [(xs[v], ys[v]) for v in chain[1:-1]]
        pts.append((xs[d], ys[d] + heights[d] / 2))
        paths.append(pts)
    return Layout([(xs[v], ys[v]) for v in range(n)], list(sizes), paths, width, height)


def _topological(n, preds, succs) -> list[int]:
    indeg = [len(p) for p in preds]
    ready = [v for v in range(n) if indeg[v] == 0]
    out = []
    while ready:
        v = ready.pop(0)
        out.append(v)
        for s in succs[v]:
            indeg[s] -= 1
            if indeg[s] == 0:
                ready.append(s)
    if len(out) != n:
        raise ValueError("the diagram has a cycle; a layered layout needs a directed acyclic graph")
    return out


def _initial_order(total: int, order: list[int], succs, n: int) -> list[int]:
    # real nodes in topological order (program order), dummies after them
    return [*order, *range(n, total)]


def _crossings(rows, down) -> int:
    count = 0
    for upper_row, lower_row in zip(rows[1:], rows[:-1]):
        pos = {v: i for i, v in enumerate(upper_row)}
        pairs = sorted((i, pos[w]) for i, v in enumerate(lower_row) for w in down[v] if w in pos)
        for a in range(len(pairs)):
            for b in range(a + 1, len(pairs)):
                if pairs[a][0] < pairs[b][0] and pairs[a][1] > pairs[b][1]:
                    count += 1
    return count


def _reduce_crossings(rows, up, down, sweeps: int = 8) -> list[list[int]]:
    best = [list(r) for r in rows]
    best_count = _crossings(rows, down)
    for it in range(sweeps):
        upward = it % 2 == 0
        layer_ids = range(1, len(rows)) if upward else range(len(rows) - 2, -1, -1)
        for k in layer_ids:
            ref = rows[k - 1] if upward else rows[k + 1]
            pos = {v: i for i, v in enumerate(ref)}
            neighbours = up if upward else down

            def bary(item, pos=pos, neighbours=neighbours):
                i, v = item
                ps = [pos[w] for w in neighbours[v] if w in pos]
                return sum(ps) / len(ps) if ps else i * len(ref) / max(len(rows[k]), 1)

            rows[k] = [v for _, v in sorted(enumerate(rows[k]), key=lambda item: (bary(item), item[0]))]
        count = _crossings(rows, down)
        if count < best_count:
            best, best_count = [list(r) for r in rows], count
    return best


def _x_positions(rows, widths, up, down, sep, iterations: int = 24) -> list[float]:
    xs = [0.0] * len(widths)
    for row in rows:
        x = 0.0
        for v in row:
            xs[v] = x + widths[v] / 2
            x += widths[v] + sep
        shift = x / 2
        for v in row:
            xs[v] -= shift
    for it in range(iterations):
        layer_ids = range(len(rows)) if it % 2 == 0 else reversed(range(len(rows)))
        for k in layer_ids:
            row = rows[k]
            want = []
            for v in row:
                nb = [xs[w] for w in (*up[v], *down[v])]
                want.append(sum(nb) / len(nb) if nb else xs[v])
            xs_row = _separate(want, [widths[v] for v in row], sep)
            for v, x in zip(row, xs_row):
                xs[v] = x
    return xs


def _separate(want: list[float], widths: list[float], sep: float) -> list[float]:
    """Positions as close to ``want`` as a left pass and a right pass allow, in order, without overlap."""
    n = len(want)
    if n == 0:
        return []
    gap = [(widths[i] + widths[i + 1]) / 2 + sep for i in range(n - 1)]
    left = list(want)
    for i in range(1, n):
        left[i] = max(left[i], left[i - 1] + gap[i - 1])
    right = list(want)
    for i in range(n - 2, -1, -1):
        right[i] = min(right[i], right[i + 1] - gap[i])
    xs = [(a + b) / 2 for a, b in zip(left, right)]
    for i in range(1, n):
        xs[i] = max(xs[i], xs[i - 1] + gap[i - 1])
    return xs


def shifted(layout: Layout, dy: float, width: float) -> Layout:
    """``layout`` moved down by ``dy`` (room for a title and legend), on a canvas at least ``width`` wide."""
    return Layout(
        [(x, y + dy) for x, y in layout.centers],
        layout.sizes,
        [[(x, y + dy) for x, y in path] for path in layout.paths],
        max(layout.width, width),
        layout.height + dy,
    )
