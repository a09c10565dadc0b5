"""Write a ``Diagram`` in Graphviz's DOT language, and render it with the ``dot`` program when installed."""

from __future__ import annotations

import shutil
import subprocess

from funcgrad.inspect.drawing.diagram import Diagram
from funcgrad.inspect.drawing.style import STYLES


def _q(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


_DOT_SHAPES = {"function": "box", "ellipse": "ellipse", "box": "box"}


def to_dot(diagram: Diagram) -> str:
    """DOT text: bottom-to-top like the lecture's diagrams, one node per ``Diagram`` node."""
    lines = [
        "digraph funcgrad {",
        '  rankdir=BT; nodesep=0.25; ranksep=0.4; bgcolor="white";',
        '  node [fontname="Helvetica", fontsize=11]; edge [fontname="Helvetica", fontsize=9, color="#495057", fontcolor="#868e96"];',
    ]
    if diagram.title:
        lines.append(f'  labelloc="t"; label={_q(diagram.title)}; fontname="Helvetica-Bold"; fontsize=14;')
    for n in diagram.nodes:
        shape, fill, stroke, dashed = STYLES[n.kind]
        style = ["filled"] + (["rounded"] if shape == "function" else []) + (["dashed"] if dashed else [])
        label = n.label if not n.sublabel else f"{n.label}\n{n.sublabel}"
        lines.append(
            f"  {_q(n.id)} [label={_q(label)}, shape={_DOT_SHAPES[shape]}, style={_q(','.join(style))}, "
            f'fillcolor="{fill}", color="{stroke}", class={_q(n.kind)}, tooltip={_q(n.tooltip or n.label)}];'
        )
    for e in diagram.edges:
        lines.append(f"  {_q(e.src)} -> {_q(e.dst)}" + (f" [label={_q(e.label)}];" if e.label else ";"))
    lines.append("}")
    return "\n".join(lines) + "\n"


def dot_program() -> str | None:
    """The path of Graphviz's ``dot``, or None when it is not installed."""
    return shutil.which("dot")


def render(dot_text: str, fmt: str) -> bytes:
    """Run ``dot -T<fmt>`` on ``dot_text``; raise a clear error when ``dot`` is missing or fails."""
    program = dot_program()
    if program is None:
        raise RuntimeError(
            "Graphviz's `dot` program is not installed.\n"
            "  fix: install it (`apt-get install graphviz`, `brew install graphviz`, `conda install graphviz`), "
            "or draw with engine='python' (funcgrad's own layout, no dependencies)."
        )
    done = subprocess.run([program, f"-T{fmt}"], input=dot_text.encode(), capture_output=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"`dot -T{fmt}` failed: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout
