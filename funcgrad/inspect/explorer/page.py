"""The page: one self-contained HTML file, its data as JSON, its script and style read from the package.

Nothing is fetched when the page is viewed: the style (``explorer.css``), the script
(``explorer.js``, vanilla JavaScript) and the data sit inside the file, so it works offline, in a
notebook's output (``Exploration._repr_html_`` puts it in an ``<iframe srcdoc>``: Colab and Jupyter
run its script there, isolated from the notebook's own) and in any browser.

The data (``page_data``) is everything the script draws, by number: values ``v<k>``, equations
``e<k>``, blocks ``b<k>``, and the laid-out views; see the keys below.
"""

from __future__ import annotations

import html
import json
import math
from importlib import resources

from funcgrad.core import registry
from funcgrad.core.ir import Literal, Var, type_str
from funcgrad.inspect.explorer.views import eqn_label
from funcgrad.inspect.grouping.frames import shorten


def _num(x):
    return None if x is None or not math.isfinite(x) else float(x)


def page_data(x) -> dict:
    """The JSON the page's script reads, for an ``Exploration`` ``x``.

    Keys: ``title``, ``engine`` (the layout's), ``root`` (the top view), ``values`` (per value: name,
    type, summary ``s`` of the value and ``ct`` of its cotangent, ``ctStep`` the backward step after
    which that is complete, ``ctIter`` each iteration's |dC/dz_t| for a tag in a loop body, ``why`` a tag's reason for having none, ``parts`` the summaries of a fan-out's contributions, ``from`` the
    equation making it), ``eqns`` (text, where, rule maths, enclosing blocks ``path``, forward and
    backward step), ``blocks``, ``views`` (nodes, edges, clusters, layout), ``forward`` and
    ``backward`` (the steps), ``diagnostics``, ``depth`` (gradient norm and kept bytes of the top
    view's items), ``kept`` (bytes the backward pass keeps).
    """
    rec, index, grouping = x.recording, x.index, x.grouping
    producer = {}
    for k, eqn in enumerate(index.eqns):
        for v in eqn.outputs:
            producer[id(v)] = k
    active = rec.backward.activity.is_active  # depends on a differentiated argument: the sweep reaches it
    graph = rec.graph
    top = {id(v) for v in (*graph.inputs, *graph.constvars, *(v for e in graph.eqns for v in e.outputs))}
    backward_at = {id(s.eqn): s.index for s in rec.steps}
    values = []
    for k, var in enumerate(index.vars):
        entry = {"name": index.value_names[k], "type": type_str(var.type), "from": producer.get(id(var))}
        entry["active"] = bool(active(var)) if id(var) in top else False
        summary = rec.value.get(id(var))
        if summary is not None:
            entry["s"] = summary.to_json()
        ct = rec.ct.get(id(var))
        if ct is not None:
            entry["ct"] = ct.to_json()
            entry["ctStep"] = rec.ct_step[id(var)]
        inner = x.inner.get(id(var))
        if inner is not None and id(inner.holder) in backward_at:
            # a tag inside a nested program: its cotangent is complete once the holding equation's rule ran
            entry["ct"] = inner.summary.to_json()
            entry["ctStep"] = backward_at[id(inner.holder)]
            entry["active"] = True
            if inner.per_iteration is not None:
                entry["ctIter"] = [_num(n) for n in inner.per_iteration]
        if id(var) in x.unreached:
            entry["why"] = x.unreached[id(var)]
        parts = rec.parts.get(id(var), [])
        if len(parts) > 1:
            entry["parts"] = [[step, s.to_json() if s is not None else None] for step, s in parts]
        values.append(entry)
    forward_at = {id(e): k for k, e in enumerate(rec.graph.eqns)}
    eqns = []
    for k, eqn in enumerate(index.eqns):
        names = lambda atoms: " ".join(_atom(a, index) for a in atoms)  # noqa: E731
        record = registry.lookup_eqn(eqn)
        entry = {
            "label": eqn_label(eqn),
            "prim": eqn.primitive,
            "text": f"{names(eqn.outputs)} = {eqn.primitive} {names(eqn.inputs)}".strip(),
            "params": _params(eqn),
            "where": eqn.source.short_where() if eqn.source.file else "",
            "scope": eqn.source.scope,
            "math": (record.math if record is not None else None) or "",
            "path": [b.id for b in grouping.ancestors(eqn)],
            "ins": [index.value_ids.get(id(a)) if isinstance(a, Var) else None for a in eqn.inputs],
            "outs": [index.value_ids.get(id(v)) for v in eqn.outputs],
            "fwd": forward_at.get(id(eqn)),
            "bwd": backward_at.get(id(eqn)),
            "norm": _num(x.norms.get(id(eqn))),
            "kept": x.kept.by_eqn.get(id(eqn), 0),
        }
        if id(eqn) in grouping.bodies:
            entry["view"] = f"e{k}"
        if id(eqn) in x.notes:
            entry["note"] = x.notes[id(eqn)]
        eqns.append(entry)
    blocks = {}
    for block in grouping.blocks():
        eqs = list(block.eqns())
        blocks[block.id] = {
            "label": block.label,
            "kind": block.kind,
            "detail": shorten(block.detail, 160),
            "where": block.where,
            "n": len(eqs),
            "view": x.builder.view_id(block),
            "parent": block.parent.id if block.parent is not None else None,
            "kept": x.kept.of(eqs),
            "norm": _num(x.norms.get(id(block))),
        }
    views = {}
    for view_id, view in x.views.items():
        views[view_id] = {
            "title": view.title,
            "crumbs": view.crumbs,
            "nodes": [
                {
                    "id": n.id,
                    "kind": n.kind,
                    "ref": n.ref,
                    "label": n.label,
                    "sub": n.sub,
                    "main": n.main,
                    "cluster": n.cluster,
                }
                for n in view.nodes
            ],
            "edges": [{"src": e.src, "dst": e.dst, "values": e.values} for e in view.edges],
            "clusters": view.clusters,
            "layout": view.layout,
        }
    backward = [
        {
            "eqn": index.eqn_ids[id(s.eqn)],
            "outs": [index.value_ids[id(v)] for v in s.outs],
            "parts": [[i, index.value_ids[id(a)]] for i, a in s.parts],
        }
        for s in rec.steps
    ]
    diagnostics = []
    for d in x.diagnostics:
        diagnostics.append(
            {
                "kind": d.kind,
                "severity": d.severity,
                "message": d.message,
                "eqn": index.eqn_ids.get(id(d.eqn)) if d.eqn is not None else None,
                "value": index.value_ids.get(id(d.var)) if d.var is not None else None,
                "block": d.block.id if hasattr(d.block, "id") else None,
            }
        )
    return {
        "title": x.title,
        "engine": x.engine,
        "root": grouping.root.id,
        "values": values,
        "eqns": eqns,
        "blocks": blocks,
        "views": views,
        "forward": [index.eqn_ids[id(e)] for e in rec.graph.eqns],
        "backward": backward,
        "diagnostics": diagnostics,
        "kept": {"arguments": x.kept.argument_bytes, "total": sum(x.kept.by_eqn.values()), "error": x.kept.error},
        "limits": x.limits,
    }


def _atom(a, index) -> str:
    if isinstance(a, Literal):
        arr = a.value
        try:
            return repr(float(arr)) if getattr(arr, "ndim", 0) == 0 else f"array{list(a.type.shape)}"
        except (TypeError, ValueError):
            return "lit"
    k = index.value_ids.get(id(a))
    return index.value_names[k] if k is not None else "?"


def _params(eqn) -> str:
    out = []
    for key, value in eqn.params.items():
        if key in ("jvp", "vjp", "call", "jaxpr", "body", "branches", "jaxprs", "name") or value is None:
            continue
        if hasattr(value, "eqns") or (isinstance(value, tuple) and value and hasattr(value[0], "eqns")):
            continue  # a nested program: opened in its own view
        out.append(f"{key}={shorten(str(value), 48)}")
    return shorten(" ".join(out), 200)


def page_html(data: dict) -> str:
    """The whole page: style, data and script in one HTML document."""
    files = resources.files("funcgrad.inspect.explorer")
    css = files.joinpath("explorer.css").read_text(encoding="utf-8")
    js = files.joinpath("explorer.js").read_text(encoding="utf-8")
    # "</" would end the <script> element early; "<\/" means the same in JSON
    payload = json.dumps(data, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")
    title = html.escape(data.get("title") or "funcgrad.explore")
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{title}</title>\n<style>\n{css}</style>\n</head>\n<body>\n"
        '<div class="fg-explorer"></div>\n'
        f'<script type="application/json" class="fg-data">{payload}</script>\n'
        f"<script>\n{js}</script>\n</body>\n</html>\n"
    )


def iframe(page: str, height: int = 720) -> str:
    """``page`` inside an ``<iframe srcdoc>``, for a notebook's output cell."""
    return (
        f'<iframe srcdoc="{html.escape(page, quote=True)}" style="width:100%;height:{height}px;border:0" '
        'sandbox="allow-scripts allow-downloads"></iframe>'
    )
