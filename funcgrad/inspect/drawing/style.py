"""How each kind of node looks, shared by the SVG, PNG and DOT writers, and node sizes from their text."""

from __future__ import annotations

from funcgrad.inspect.drawing.diagram import Node

# kind -> (shape, fill, stroke, dashed)
STYLES = {
    "function": ("function", "#e7eefc", "#3b5bdb", False),
    "backward": ("function", "#fde9d9", "#d9480f", False),
    "variable": ("ellipse", "#ffffff", "#343a40", False),
    "observed": ("ellipse", "#cfd4da", "#343a40", False),
    "parameter": ("ellipse", "#fff3bf", "#e67700", False),
    "constant": ("box", "#f1f3f5", "#868e96", True),
    "cost": ("box", "#ffc9c9", "#c92a2a", False),
    "gradient": ("ellipse", "#ffffff", "#d9480f", True),
}

# What each kind means, for legends.
MEANING = {
    "observed": "observed input",
    "parameter": "parameter (differentiated)",
    "constant": "captured constant",
    "function": "deterministic function",
    "variable": "computed variable",
    "cost": "scalar cost",
    "backward": "backward function (computes dC/d·)",
    "gradient": "gradient dC/dw",
}

LABEL_PX = 12.0
SUB_PX = 10.0


def text_width(text: str, px: float) -> float:
    """A width estimate for sans-serif text (no font metrics are available without a renderer)."""
    return sum(0.35 if ch in "il.,:;|[]()' " else 0.62 for ch in text) * px


def node_size(node: Node) -> tuple[float, float]:
    shape = STYLES[node.kind][0]
    w = max(text_width(node.label, LABEL_PX), text_width(node.sublabel, SUB_PX)) + 20
    h = 34.0 if node.sublabel else 24.0
    if shape == "ellipse":
        w, h = w * 1.18, h + 6
    return max(w, 40.0), h
