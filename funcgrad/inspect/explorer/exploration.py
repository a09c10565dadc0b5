"""``funcgrad.explore(f)(*args)``: one gradient computation, recorded, grouped and drawn as a page."""

from __future__ import annotations

import functools
import pathlib
from collections.abc import Callable, Sequence

import jax

from funcgrad.core.call import Call, argnums_tuple, fun_name
from funcgrad.core.ir import Var, var_names
from funcgrad.errors import InputError
from funcgrad.inspect.drawing import input_labels
from funcgrad.inspect.explorer import diagnostics as diag
from funcgrad.inspect.explorer import memory
from funcgrad.inspect.explorer.flow import Flow
from funcgrad.inspect.explorer.layout import lay_out
from funcgrad.inspect.explorer.loops import InnerCotangent, inner_cotangents, unreached_tags
from funcgrad.inspect.explorer.page import iframe, page_data, page_html
from funcgrad.inspect.explorer.recording import Recording, record
from funcgrad.inspect.explorer.stats import Summary
from funcgrad.inspect.explorer.views import ViewBuilder
from funcgrad.inspect.grouping import Block, Grouping, frontier, group_graph, trace_with_stacks


def explore(
    fun: Callable,
    argnums: int | Sequence[int] = 0,
    *,
    has_aux: bool = False,
    layout: str = "auto",
    budget: int = 15,
    title: str | None = None,
) -> Callable[..., Exploration]:
    """Record one gradient computation of ``fun`` and show it as an interactive page.

    The page (``Exploration``: inline in Jupyter and Colab, or ``.save("page.html")``) shows ``fun``'s
    graph grouped the way the code is written (funcgrad.nn layers, Equinox/Flax modules,
    ``jax.named_scope``, jitted functions, function calls, lines), opened at the block diagram; each
    value's and each cotangent's numbers; the forward pass and then funcgrad's backward sweep, step by
    step, with each VJP rule's maths; and what went wrong where (dead relu units, saturated
    tanh/sigmoid, vanishing or exploding gradients, the first NaN/Inf, memory kept per block). See
    docs/seeing_backprop.md.

    Args:
      fun: a function returning a scalar loss (or ``(loss, aux)`` with ``has_aux``).
      argnums: the positional argument(s) differentiated, as in ``funcgrad.grad``.
      has_aux: ``fun`` returns ``(loss, aux)``; ``aux`` is not differentiated.
      layout: ``"dot"`` (Graphviz), ``"python"`` (funcgrad's own layout) or ``"auto"`` (``dot`` if installed).
      budget: about how many boxes a view shows before it stops opening blocks.
      title: the page's title (default: the function's name).

    Returns:
      A function of ``fun``'s arguments (concrete arrays: it computes every value) returning an ``Exploration``.
    """

    @functools.wraps(fun)
    def run(*args, **kwargs) -> Exploration:
        nums = argnums_tuple(argnums, len(args), fun)
        leaves = jax.tree_util.tree_leaves((args, kwargs))
        if any(isinstance(x, jax.core.Tracer) for x in leaves):
            raise InputError(
                f"funcgrad.explore({fun_name(fun)}) got traced arguments: it computes and shows every value, so "
                "it needs concrete arrays.\n  fix: call it outside jax.jit, jax.vmap and other transformations."
            )
        call = Call(fun, args, kwargs, nums, allow_int=True)
        traced = trace_with_stacks(call)
        recording = record(call, traced, fun, has_aux)
        inner = inner_cotangents(traced.graph, traced.out_tree, call, fun, has_aux)
        labels = input_labels(fun, args, kwargs, call)
        return Exploration(recording, call.wrt, labels, title or fun_name(fun), layout, budget, inner)

    return run


class Exploration:
    """One recorded gradient computation: the page, and the same numbers for Python.

    Shows inline in Jupyter and Colab; ``save(path)`` writes the self-contained page. For code:
    ``value(name)`` and ``cotangent(name)`` (``Summary`` of a value and of dC/d(value), by the name
    ``funcgrad.trace`` prints, tags' labels included), ``steps`` (the backward sweep's rules, in
    order), ``diagnostics``, ``grouping`` (the blocks), ``norm(item)`` and ``kept_bytes(item)``.
    """

    def __init__(
        self,
        recording: Recording,
        wrt,
        labels,
        title: str,
        layout: str = "auto",
        budget: int = 15,
        inner: dict[int, InnerCotangent] | None = None,
    ):
        self.recording = recording
        # dC/dz of the tags inside loop bodies (one per iteration), branches and checkpoints (``loops``)
        self.inner: dict[int, InnerCotangent] = dict(inner or {})
        # why the tags no perturbation reaches (in while loops, custom rules) have no numbers
        self.unreached: dict[int, str] = unreached_tags(recording.graph)
        self.title = title
        graph = recording.graph
        self.names = var_names(graph)
        self.grouping: Grouping = group_graph(graph, title)
        self.kept = memory.kept(graph, recording.backward.activity, list(wrt))
        flow = Flow(graph)
        self.norms: dict[int, float | None] = {}
        for block in self.grouping.root.blocks():
            self.norms[id(block)] = diag.norm_of(flow.outputs_of(block.eqns()), recording.ct)
        for eqn in graph.eqns:
            self.norms[id(eqn)] = diag.norm_of(eqn.outputs, recording.ct)
        found, self.notes = diag.activations(graph, recording.backward.env, self.names)
        top, _ = frontier(self.grouping.root, budget)
        # the depth of the network: the blocks of the top view (layers; not the loss's own arithmetic,
        # whose mean divides every cotangent by the batch size)
        self.depth_items = [i for i in top if isinstance(i, Block)]
        found += diag.depth(
            self.depth_items, [self.norms.get(id(b)) for b in self.depth_items], [b.label for b in self.depth_items]
        )
        found += diag.non_finite(graph, self.names, recording)
        found += diag.iterations(list(self.inner.values()))
        self.diagnostics: list[diag.Diagnostic] = found
        self.builder = ViewBuilder(self.grouping, labels, wrt, budget)
        self.views = self.builder.build()
        self.index = self.builder.index
        self.engine = lay_out(list(self.views.values()), layout)
        self.limits = {
            "dead_share": diag.DEAD_SHARE,
            "min_examples": diag.MIN_EXAMPLES,
            "saturated_share": diag.SATURATED_SHARE,
            "depth_ratio": diag.DEPTH_RATIO,
        }
        self._page: str | None = None

    # ------------------------------------------------------------------ numbers

    @property
    def graph(self):
        return self.recording.graph

    @property
    def steps(self):
        """The backward sweep's rules in the order they ran (``recording.Step``: eqn, outs, parts)."""
        return self.recording.steps

    @property
    def loss(self):
        return self.recording.loss

    def var(self, name: str) -> Var:
        """The top-level value printed as ``name`` (``funcgrad.trace(f)(*args)``'s names)."""
        for v in (*self.graph.inputs, *self.graph.constvars, *(v for e in self.graph.eqns for v in e.outputs)):
            if self.names.get(id(v)) == name:
                return v
        raise KeyError(f"no value is named {name!r}; the names are those funcgrad.trace(f)(*args) prints")

    def value(self, name: str) -> Summary | None:
        """The ``Summary`` of the value named ``name``."""
        return self.recording.value.get(id(self.var(name)))

    def cotangent(self, name: str) -> Summary | None:
        """The ``Summary`` of dC/d``name`` (None where no gradient reaches it); for a tag inside a loop
        body, of dC/dz_t stacked over the iterations t (``inner_cotangent`` has each iteration's norm)."""
        top_labels = {v.label for v in (*self.graph.inputs, *(v for e in self.graph.eqns for v in e.outputs))}
        if name not in top_labels and any(f.var.label == name for f in self.inner.values()):
            return self.inner_cotangent(name).summary  # a user's tag before a letter funcgrad.trace prints
        return self.recording.ct.get(id(self.var(name)))

    def inner_cotangent(self, label: str) -> InnerCotangent:
        """dC/dz of the tag labelled ``label`` inside a nested program (a scan or fori_loop body: one
        per iteration, with ``per_iteration`` norms; a cond branch; a checkpoint body)."""
        for found in self.inner.values():
            if found.var.label == label:
                return found
        raise KeyError(
            f"no tag inside a loop body, branch or checkpoint is labelled {label!r}; those reached are "
            f"{sorted(f.var.label for f in self.inner.values())} (tags in while loops and custom rules are not)"
        )

    def contributions(self, name: str) -> list[tuple[int, Summary]]:
        """(backward step, Summary) of each contribution to dC/d``name`` (``recording.SEED`` for the seed)."""
        return list(self.recording.parts.get(id(self.var(name)), []))

    def norm(self, item) -> float | None:
        """|dC/d(output)| of a block or an equation of the top-level graph (its outputs used elsewhere)."""
        return self.norms.get(id(item))

    def kept_bytes(self, item) -> int:
        """Bytes of the values made in ``item`` (a block or an equation) that the backward pass keeps."""
        return self.kept.of(item.eqns() if isinstance(item, Block) else [item])

    def find(self, label: str) -> list[Block]:
        """The blocks labelled ``label`` (e.g. ``"m0"``, ``"layer_norm"``)."""
        return [b for b in self.grouping.blocks() if b.label == label]

    # ------------------------------------------------------------------ the page

    def data(self) -> dict:
        """The page's data (JSON-ready); see ``page.page_data``."""
        return page_data(self)

    def to_html(self) -> str:
        """The self-contained page."""
        if self._page is None:
            self._page = page_html(self.data())
        return self._page

    def save(self, path) -> pathlib.Path:
        """Write the page to ``path`` (``.html``); open it in any browser, offline."""
        path = pathlib.Path(path)
        if path.suffix.lower() not in (".html", ".htm"):
            raise ValueError(f"an exploration is saved as .html, not {path.suffix!r}: use e.g. {path.stem}.html")
        path.write_text(self.to_html(), encoding="utf-8")
        return path

    def _repr_html_(self) -> str:  # Jupyter, Colab
        return iframe(self.to_html())

    def __repr__(self) -> str:
        flagged = ", ".join(sorted({d.kind for d in self.diagnostics})) or "no diagnostics"
        return (
            f"<funcgrad Exploration of {self.title}: {len(self.graph.eqns)} equations in "
            f"{sum(1 for _ in self.grouping.blocks())} blocks, {len(self.steps)} backward steps; {flagged}>"
        )
