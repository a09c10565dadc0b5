"""Paint a laid-out ``Diagram`` with matplotlib (the PNG path when ``dot`` is not installed)."""

from __future__ import annotations

import io

from funcgrad.inspect.drawing.diagram import Diagram
from funcgrad.inspect.drawing.layout import Layout
from funcgrad.inspect.drawing.style import LABEL_PX, STYLES, SUB_PX


def to_png(diagram: Diagram, layout: Layout, dpi: int = 100) -> bytes:
    """PNG bytes of the same picture the SVG writer produces (same layout, same styles)."""
    from matplotlib import patches  # a Figure without pyplot: the user's backend is left alone
    from matplotlib.figure import Figure

    px = 72.0 / dpi  # points per pixel
    fig = Figure(figsize=(layout.width / dpi, layout.height / dpi), dpi=dpi)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, layout.width)
    ax.set_ylim(layout.height, 0)
    ax.axis("off")
    if diagram.title:
        ax.text(16, 20, diagram.title, fontsize=14 * px, fontweight="bold", va="center")
    for edge, path in zip(diagram.edges, layout.paths):
        xs, ys = [p[0] for p in path], [p[1] for p in path]
        ax.plot(xs[:-1] + [xs[-1]], ys[:-1] + [ys[-1]], color="#495057", lw=0.9, zorder=1)
        ax.annotate(
            "", xy=path[-1], xytext=path[-2], arrowprops=dict(arrowstyle="-|>", color="#495057", lw=0.9), zorder=1
        )
        if edge.label:
            (ax0, ay0), (bx, by) = path[0], path[1]
            ax.text(
                ax0 + (bx - ax0) * 0.45 + 4,
                ay0 + (by - ay0) * 0.45,
                edge.label,
                fontsize=(SUB_PX - 1) * px,
                color="#868e96",
            )
    for node, (x, y), (w, h) in zip(diagram.nodes, layout.centers, layout.sizes):
        shape, fill, stroke, dashed = STYLES[node.kind]
        ls = "--" if dashed else "-"
        if shape == "ellipse":
            patch = patches.Ellipse((x, y), w, h, facecolor=fill, edgecolor=stroke, lw=1.2, ls=ls, zorder=2)
        else:
            rounding = min(h / 2, 10.0) if shape == "function" else 0.0
            patch = patches.FancyBboxPatch(
                (x - w / 2 + rounding, y - h / 2 + rounding), w - 2 * rounding, h - 2 * rounding,
                boxstyle=f"round,pad={rounding}", facecolor=fill, edgecolor=stroke, lw=1.2, ls=ls, zorder=2,
            )  # fmt: skip
        ax.add_patch(patch)
        if node.sublabel:
            ax.text(x, y - 5, node.label, ha="center", va="center", fontsize=LABEL_PX * px, zorder=3)
            ax.text(x, y + 8, node.sublabel, ha="center", va="center", fontsize=SUB_PX * px, color="#495057", zorder=3)
        else:
            ax.text(x, y, node.label, ha="center", va="center", fontsize=LABEL_PX * px, zorder=3)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor="white")
    return buf.getvalue()
