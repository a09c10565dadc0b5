"""Pictures of funcgrad graphs in the lecture's block-diagram notation.

``funcgrad.draw(f)(*args)`` draws the forward graph of ``f``;
``backward=True`` draws the whole gradient computation
(``funcgrad.backward_graph``), backward functions in orange, each labelled
with the cotangents dC/dx it computes. The result shows inline in Jupyter and
Colab and saves to ``.svg``, ``.png`` or ``.dot``.

Two engines: Graphviz's ``dot`` program when it is on ``PATH``, else funcgrad's
own pure-Python layered layout and SVG writer (PNG through matplotlib). Both
draw the same ``Diagram``: the same nodes, labels and edges.
"""

from __future__ import annotations

import functools
import pathlib
from collections.abc import Callable, Iterable, Sequence

import jax

from funcgrad.core.call import Call, arg_names, argnums_tuple, trace_call
from funcgrad.core.ir import Graph
from funcgrad.inspect.backward_graph import backward_graph, is_backward
from funcgrad.inspect.drawing import dot as _dot
from funcgrad.inspect.drawing.diagram import Diagram, Edge, Node, build_diagram
from funcgrad.inspect.drawing.layout import Layout, layered_layout, shifted
from funcgrad.inspect.drawing.png import to_png
from funcgrad.inspect.drawing.style import node_size
from funcgrad.inspect.drawing.svg import header_height, to_svg
from funcgrad.inspect.grouping import Block, group_graph, trace_with_stacks

__all__ = ["Diagram", "Drawing", "Edge", "Node", "draw", "draw_graph"]

ENGINES = ("auto", "dot", "python")


class Drawing:
    """A drawn graph: shows inline in notebooks (``_repr_svg_``) and saves as .svg, .png or .dot."""

    def __init__(self, diagram: Diagram, engine: str = "auto"):
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
        if engine == "dot" and _dot.dot_program() is None:
            _dot.render("", "svg")  # raises the error that says how to install it
        self.diagram = diagram
        self.engine = "dot" if engine == "dot" or (engine == "auto" and _dot.dot_program()) else "python"
        self._svg: str | None = None
        self._layout: Layout | None = None

    @property
    def nodes(self) -> list[Node]:
        return self.diagram.nodes

    @property
    def edges(self) -> list[Edge]:
        return self.diagram.edges

    def layout(self) -> Layout:
        """funcgrad's own layout of the diagram (used by the ``python`` engine)."""
        if self._layout is None:
            sizes = [node_size(n) for n in self.diagram.nodes]
            index = {n.id: i for i, n in enumerate(self.diagram.nodes)}
            edges = [(index[e.src], index[e.dst]) for e in self.diagram.edges]
            layout = layered_layout(sizes, edges)
            width = max(layout.width, 360.0)
            self._layout = shifted(layout, header_height(self.diagram, width), width)
        return self._layout

    def to_dot(self) -> str:
        """The diagram in Graphviz's DOT language."""
        return _dot.to_dot(self.diagram)

    def to_svg(self) -> str:
        """The picture as an SVG document."""
        if self._svg is None:
            if self.engine == "dot":
                self._svg = _dot.render(self.to_dot(), "svg").decode()
            else:
                self._svg = to_svg(self.diagram, self.layout())
        return self._svg

    def to_png(self, dpi: int = 100) -> bytes:
        """The picture as PNG bytes (``dot -Tpng``, or matplotlib painting funcgrad's layout)."""
        if self.engine == "dot":
            return _dot.render(self.to_dot(), "png")
        return to_png(self.diagram, self.layout(), dpi=dpi)

    def save(self, path) -> pathlib.Path:
        """Write the picture to ``path``; the suffix (.svg, .png, .dot) picks the format."""
        path = pathlib.Path(path)
        suffix = path.suffix.lower()
        if suffix == ".svg":
            path.write_text(self.to_svg())
        elif suffix == ".png":
            path.write_bytes(self.to_png())
        elif suffix in (".dot", ".gv"):
            path.write_text(self.to_dot())
        else:
            raise ValueError(f"cannot save a drawing as {suffix!r}: use .svg, .png or .dot")
        return path

    def _repr_svg_(self) -> str:  # Jupyter, Colab
        return self.to_svg()

    def __repr__(self) -> str:
        kinds = ", ".join(f"{k}={v}" for k, v in self.diagram.kinds().items())
        return f"<funcgrad Drawing ({self.engine} engine): {len(self.nodes)} nodes ({kinds}), {len(self.edges)} edges>"


def draw_graph(
    graph: Graph,
    *,
    input_labels: Sequence[str] | None = None,
    differentiated: Sequence[bool] | None = None,
    collapse: bool | int | Iterable[str] = False,
    edge_labels: bool = True,
    title: str = "",
    engine: str = "auto",
    level: int | None = None,
) -> Drawing:
    """Draw a ``Graph`` (see ``draw`` for the options; ``level`` groups ``graph``'s own equations, so
    trace it under ``funcgrad.core.tracer.keeping_tracebacks`` to group by the code's calls and lines)."""
    blocks = None if level is None else _blocks_at(graph, graph, level, title)
    diagram = build_diagram(
        graph,
        input_labels=input_labels,
        differentiated=differentiated,
        collapse=collapse,
        edge_labels=edge_labels,
        title=title,
        blocks=blocks,
    )
    return Drawing(diagram, engine)


def _blocks_at(drawn: Graph, forward: Graph, level: int, name: str) -> dict:
    """``id(eqn) -> (block id, label)`` for the equations of ``drawn`` inside a block at depth ``level`` of
    ``forward``'s grouping (``drawn`` is ``forward``, or a backward graph whose forward part it is)."""
    if not isinstance(level, int) or level < 1:
        raise ValueError(f"level must be a positive int (1: the top-level blocks), got {level!r}")
    grouping = group_graph(forward, name)
    mine = [e for e in drawn.eqns if not is_backward(e)][: len(forward.eqns)]
    if [e.primitive for e in mine] != [e.primitive for e in forward.eqns]:
        mine = []  # the gradient's graph re-traced the forward pass differently: draw its equations alone
    blocks = {}
    for e, f in zip(mine, forward.eqns):
        item = grouping.item_at(f, level)
        if isinstance(item, Block):
            blocks[id(e)] = (item.id, item.label)
    return blocks


def draw(
    fun: Callable,
    *,
    backward: bool = False,
    argnums: int | Sequence[int] = 0,
    has_aux: bool = False,
    collapse: bool | int | Iterable[str] = False,
    level: int | None = None,
    edge_labels: bool = True,
    title: str | None = None,
    engine: str = "auto",
) -> Callable[..., Drawing]:
    """Draw ``fun``'s graph, and on request its backward pass, as a block diagram.

    Args:
      fun: the function to draw.
      backward: draw the gradient computation (forward and backward, ``funcgrad.backward_graph``).
      argnums: the differentiated (parameter) arguments; the others are drawn as observed inputs.
      has_aux: with ``backward``, ``fun`` returns ``(loss, aux)``.
      collapse: ``False``: one node per equation; ``True``: one node per top-level scope (a nested
        ``jit`` call, a ``jax.named_scope``, a backward rule); an int: scopes to that depth; or the
        names of the scopes to collapse (``["linear"]`` collapses every ``jit(linear)`` call).
      level: one box per block of ``funcgrad.explore``'s grouping at that depth (1: the block diagram
        of the function's own code: its layers, modules, scopes, jitted calls, calls and lines;
        2: one level inside them); equations outside any such block are drawn alone, and with
        ``backward`` each backward rule is one box. Instead of ``collapse``.
      edge_labels: label each edge with the shape of the value it carries.
      title: a caption (default: the function's name).
      engine: ``"dot"`` (Graphviz), ``"python"`` (funcgrad's own layout) or ``"auto"`` (``dot`` if installed).

    Returns:
      A function of ``fun``'s arguments returning a ``Drawing``.
    """

    @functools.wraps(fun)
    def run(*args, **kwargs) -> Drawing:
        nums = argnums_tuple(argnums, len(args), fun) if args else ()
        call = Call(fun, args, kwargs, nums, allow_int=True)
        labels = input_labels(fun, args, kwargs, call)
        if level is not None and collapse:
            raise ValueError("draw: pass collapse= or level=, not both (level groups by the code's blocks)")
        forward = None
        if level is not None:  # group by the code's calls and lines: a trace that keeps them
            forward = trace_with_stacks(Call(fun, args, kwargs, nums, allow_int=True)).graph
        if backward:
            graph = backward_graph(fun, argnums, has_aux)(*args, **kwargs)
        else:
            graph = forward if forward is not None else trace_call(call)[0]
        name = title if title is not None else getattr(fun, "__name__", "")
        blocks = None if forward is None else _blocks_at(graph, forward, level, name or "f")
        if backward and title is None:
            name = f"{name}: forward and backward"
        diagram = build_diagram(
            graph,
            input_labels=labels,
            differentiated=call.wrt,
            collapse=collapse,
            edge_labels=edge_labels,
            title=name,
            blocks=blocks,
        )
        return Drawing(diagram, engine)

    return run


def input_labels(fun, args, kwargs, call) -> list[str]:
    """Argument names with pytree paths for each traced leaf: ``x``, ``w['l1']['W']``, ``train``."""
    names = arg_names(fun, len(args))
    paths = [p for p, _ in jax.tree_util.tree_flatten_with_path((tuple(args), kwargs))[0]]
    out = []
    for i in call.traced_idx:
        path = paths[i]
        if path[0].idx == 0:
            out.append(names[path[1].idx] + jax.tree_util.keystr(path[2:]))
        else:
            out.append(str(path[1].key) + jax.tree_util.keystr(path[2:]))
    return out
