"""Write a laid-out ``Diagram`` as SVG, with no dependency beyond the standard library."""

from __future__ import annotations

from xml.sax.saxutils import escape

from funcgrad.inspect.drawing.diagram import Diagram
from funcgrad.inspect.drawing.layout import Layout
from funcgrad.inspect.drawing.style import LABEL_PX, MEANING, STYLES, SUB_PX, text_width

TITLE_PX = 14.0
LEGEND_H = 24.0


def _attr(s: str) -> str:
    return escape(s, {'"': "&quot;"})


def _shape(shape: str, x: float, y: float, w: float, h: float, fill: str, stroke: str, dashed: bool) -> str:
    style = f'fill="{fill}" stroke="{stroke}" stroke-width="1.4"' + (' stroke-dasharray="4,3"' if dashed else "")
    if shape == "ellipse":
        return f'<ellipse cx="{x:.1f}" cy="{y:.1f}" rx="{w / 2:.1f}" ry="{h / 2:.1f}" {style}/>'
    x0, y0, x1, y1 = x - w / 2, y - h / 2, x + w / 2, y + h / 2
    if shape == "function":
        # rounded on the output side (the top): the direction in which it is easy to compute
        r = min(h / 2, 12.0)
        d = (
            f"M{x0:.1f},{y1:.1f} L{x0:.1f},{y0 + r:.1f} Q{x0:.1f},{y0:.1f} {x0 + r:.1f},{y0:.1f} "
            f"L{x1 - r:.1f},{y0:.1f} Q{x1:.1f},{y0:.1f} {x1:.1f},{y0 + r:.1f} L{x1:.1f},{y1:.1f} Z"
        )
        return f'<path d="{d}" {style}/>'
    return f'<rect x="{x0:.1f}" y="{y0:.1f}" width="{w:.1f}" height="{h:.1f}" {style}/>'


def to_svg(diagram: Diagram, layout: Layout, *, legend: bool = True) -> str:
    """The SVG document for ``diagram`` placed by ``layout`` (made with ``top_pad`` for the title/legend)."""
    width, height = layout.width, layout.height
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.1f} {height:.1f}" font-family="Helvetica, Arial, sans-serif">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#495057"/></marker></defs>',
        f'<rect x="0" y="0" width="{width:.1f}" height="{height:.1f}" fill="#ffffff"/>',
    ]
    y = 16.0
    if diagram.title:
        out.append(
            f'<text class="title" x="16" y="{y + TITLE_PX / 2:.1f}" font-size="{TITLE_PX:.0f}" font-weight="bold">{escape(diagram.title)}</text>'
        )
        y += TITLE_PX + 8
    if legend:
        x = 16.0
        for kind in [k for k in MEANING if any(n.kind == k for n in diagram.nodes)]:
            shape, fill, stroke, dashed = STYLES[kind]
            out.append(_shape(shape if shape != "function" else "box", x + 8, y + 6, 16, 11, fill, stroke, dashed))
            out.append(
                f'<text x="{x + 20:.1f}" y="{y + 10:.1f}" font-size="{SUB_PX:.0f}" fill="#495057">{escape(MEANING[kind])}</text>'
            )
            x += 30 + text_width(MEANING[kind], SUB_PX)
            if x > width - 120:
                x, y = 16.0, y + 16
    for edge, path in zip(diagram.edges, layout.paths):
        pts = " ".join(f"{'M' if i == 0 else 'L'}{px:.1f},{py:.1f}" for i, (px, py) in enumerate(path))
        out.append(f'<g class="edge"><title>{_attr(edge.src)}-&gt;{_attr(edge.dst)}</title>')
        out.append(f'<path d="{pts}" fill="none" stroke="#495057" stroke-width="1.1" marker-end="url(#arrow)"/>')
        if edge.label:
            (ax, ay), (bx, by) = path[0], path[1]
            lx, ly = ax + (bx - ax) * 0.45 + 4, ay + (by - ay) * 0.45
            out.append(
                f'<text x="{lx:.1f}" y="{ly:.1f}" font-size="{SUB_PX - 1:.0f}" fill="#868e96">{escape(edge.label)}</text>'
            )
        out.append("</g>")
    for node, (x, y), (w, h) in zip(diagram.nodes, layout.centers, layout.sizes):
        shape, fill, stroke, dashed = STYLES[node.kind]
        out.append(
            f'<g class="node {node.kind}" id="{_attr(node.id)}"><title>{escape(node.tooltip or node.label)}</title>'
        )
        out.append(_shape(shape, x, y, w, h, fill, stroke, dashed))
        if node.sublabel:
            out.append(
                f'<text x="{x:.1f}" y="{y - 2:.1f}" text-anchor="middle" font-size="{LABEL_PX:.0f}">{escape(node.label)}</text>'
            )
            out.append(
                f'<text x="{x:.1f}" y="{y + 11:.1f}" text-anchor="middle" font-size="{SUB_PX:.0f}" fill="#495057">{escape(node.sublabel)}</text>'
            )
        else:
            out.append(
                f'<text x="{x:.1f}" y="{y + 4:.1f}" text-anchor="middle" font-size="{LABEL_PX:.0f}">{escape(node.label)}</text>'
            )
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out) + "\n"


def header_height(diagram: Diagram, width: float, legend: bool = True) -> float:
    """Vertical space the title and legend need above the graph."""
    h = 8.0
    if diagram.title:
        h += TITLE_PX + 8
    if legend:
        x, rows = 16.0, 1
        for kind in [k for k in MEANING if any(n.kind == k for n in diagram.nodes)]:
            x += 30 + text_width(MEANING[kind], SUB_PX)
            if x > width - 120:
                x, rows = 16.0, rows + 1
        h += rows * 16 + 4
    return h
