"""Equations grouped into nested blocks the way the code is written.

Each equation gets a path of tokens, outermost first, and consecutive equations that share the next
token form a block (a trie over program order):

* its call stack (``frames.stack``): ``("call", function)`` entering each user function, then
  ``("line", function, line)`` for the statement it is at; a ``funcgrad.nn`` layer, an Equinox or
  Flax NNX module's ``__call__``, a helper such as ``layer_norm`` are calls, and their lines nest
  inside the line that called them;
* its name scopes (``Source.scope``): ``jax.named_scope`` (funcgrad.nn's layers, Flax linen module
  names, Equinox's ``eqx.nn.Linear``), inlined ``jax.jit`` calls (``jit(relu)``). A scope was opened
  somewhere in the stack; its token goes right after the stack the scope's equations share, so it
  nests where it was opened. Two calls of one jitted function are two blocks (the call instance is
  part of the token).

``funcgrad.tag`` equations stay single items: the named values between blocks, the lecture's circles.
The programs nested in an equation (scan and while bodies, cond branches, ``jax.checkpoint`` and
``custom_jvp``/``custom_vjp`` bodies) are grouped the same way, as bodies of that equation.

Then the tree is tidied: a block holding one item is that item (a block holding one block is one block,
labelled by its most telling token: a named scope, then a jitted function's name, then a function,
then a line of code), and a line of code holding at most one item besides tags dissolves into its
parent, so that ``z1 = tag(relu(s1), "z1")`` shows relu and z1, not a box around them.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Iterator

from funcgrad.core.ir import Eqn, Graph
from funcgrad.inspect.grouping import frames as fr

Item = "Block | Eqn"

# how telling a token is as a label, and the block kind it gives
_PRIORITY = {"scope": 3, "jit": 2, "call": 1, "line": 0}


@dataclasses.dataclass(eq=False)
class Block:
    """A group of equations: a scope, a function call, a line of code, or a nested program."""

    label: str
    kind: str  # "function" (the root), "scope", "jit", "call", "line", "body"
    detail: str = ""  # the code line that made it, or its scope path
    where: str = ""  # file:line
    items: list = dataclasses.field(default_factory=list)  # Blocks and Eqns, in program order
    parent: Block | None = None
    id: str = ""
    tokens: list = dataclasses.field(default_factory=list, repr=False)

    def eqns(self) -> Iterator[Eqn]:
        """Every equation under this block, in program order (not those of nested programs)."""
        for item in self.items:
            if isinstance(item, Block):
                yield from item.eqns()
            else:
                yield item

    def blocks(self) -> Iterator[Block]:
        """This block and every block under it, depth first."""
        yield self
        for item in self.items:
            if isinstance(item, Block):
                yield from item.blocks()

    @property
    def depth(self) -> int:
        return 0 if self.parent is None else self.parent.depth + 1

    def __repr__(self) -> str:
        return f"Block({self.id} {self.kind} {self.label!r}, {len(self.items)} items)"


@dataclasses.dataclass
class Grouping:
    """The blocks of a graph and of the programs nested in its equations."""

    root: Block
    graph: Graph
    parent_of: dict  # id(eqn) -> the block whose items hold it
    bodies: dict  # id(eqn) -> [root Block of each nested program]
    eqn_by_id: dict  # id(eqn) -> eqn, for every equation grouped (nested ones too)

    def blocks(self) -> Iterator[Block]:
        """Every block: the graph's, then each nested program's."""
        yield from self.root.blocks()
        for roots in self.bodies.values():
            for r in roots:
                yield from r.blocks()

    def ancestors(self, eqn: Eqn) -> list[Block]:
        """The blocks containing ``eqn``, innermost first (up to its graph's root; for an equation of a
        nested program, on through the equation that holds it)."""
        out = []
        block = self.parent_of.get(id(eqn))
        while block is not None:
            out.append(block)
            block = block.parent
        return out

    def item_at(self, eqn: Eqn, level: int):
        """The item of the top-level graph at depth ``level`` (1: the root's own items) containing ``eqn``:
        a Block, or ``eqn`` itself when it sits higher up."""
        chain = [b for b in reversed(self.ancestors(eqn)) if b is not self.root]
        return chain[level - 1] if len(chain) >= level else eqn


def group_graph(graph: Graph, name: str = "") -> Grouping:
    """Group ``graph``'s equations (and those of its nested programs) into blocks; see the module docstring.

    Args:
      graph: a graph traced under ``funcgrad.core.tracer.keeping_tracebacks`` (without its tracebacks,
        equations are grouped by their name scopes alone).
      name: the label of the root block (the function's name).

    Returns:
      A ``Grouping``; block ids are ``b0`` (the root), ``b1``, ... in depth-first order.
    """
    parent_of: dict = {}
    bodies: dict = {}
    eqn_by_id: dict = {}
    root = _group(graph, name or "f", "function", parent_of, bodies, eqn_by_id)
    grouping = Grouping(root, graph, parent_of, bodies, eqn_by_id)
    for k, block in enumerate(grouping.blocks()):
        block.id = f"b{k}"
    return grouping


def _group(graph: Graph, label: str, kind: str, parent_of, bodies, eqn_by_id) -> Block:
    paths = _token_paths(graph.eqns)
    root = Block(label, kind)
    root.items = _build(list(zip(graph.eqns, paths)), 0, root)
    _tidy(root)
    while len(root.items) == 1 and isinstance(root.items[0], Block):  # code every equation shares
        root.items = root.items[0].items
        for item in root.items:
            if isinstance(item, Block):
                item.parent = root
    for block in root.blocks():
        for item in block.items:
            if isinstance(item, Eqn):
                parent_of[id(item)] = block
                eqn_by_id[id(item)] = item
    for eqn in graph.eqns:
        subs = programs(eqn)
        if subs:
            roots = []
            for key, sub in subs:
                body = _group(sub, key, "body", parent_of, bodies, eqn_by_id)
                body.parent = parent_of[id(eqn)]
                body.detail = f"{eqn.primitive} {key}"
                roots.append(body)
            bodies[id(eqn)] = roots
    return root


def programs(eqn: Eqn) -> list[tuple[str, Graph]]:
    """(name, program) for each program in ``eqn``'s params: ``body``, ``branches[1]``, ..."""
    found = []
    for key, value in eqn.params.items():
        if isinstance(value, Graph):
            found.append((key, value))
        elif isinstance(value, (tuple, list)) and value and all(isinstance(g, Graph) for g in value):
            found += [(f"{key}[{i}]", g) for i, g in enumerate(value)]
    return found


# ------------------------------------------------------------------ token paths


def _token_paths(eqns) -> list[list[tuple]]:
    paths = []
    for e in eqns:
        path = []
        for file, line, function in fr.stack(e.source):
            path += [("call", file, function), ("line", file, function, line)]
        paths.append(path)
    scopes = [_scope_keys(e) for e in eqns]
    depth = max((len(s) for s in scopes), default=0)
    for k in range(depth):  # outer scopes first: an inner scope goes after its outer one's token
        i = 0
        while i < len(eqns):
            if len(scopes[i]) <= k:
                i += 1
                continue
            key = scopes[i][: k + 1]
            j = i
            while j < len(eqns) and scopes[j][: k + 1] == key:
                j += 1
            run = paths[i:j]
            at = _common_prefix(run)
            part, _ = key[-1]
            token = ("jit" if part.startswith("jit(") else "scope", part, key)
            for p in run:
                p.insert(at, token)
            i = j
    return paths


def _scope_keys(eqn: Eqn) -> tuple:
    """``((part, instance), ...)`` for each component of the equation's scope. The instance tells two
    calls of one jitted function apart: the call site (``Source.caller``) of the innermost ``jit(...)``
    at or above the part."""
    parts = [p for p in (_unwrapped(p) for p in eqn.source.scope.split("/")) if p]
    callers = []
    src = eqn.source.caller
    while src is not None:
        callers.append(src)
        src = src.caller
    callers.reverse()  # outermost first, one per inlined jit
    keys, jits = [], 0
    for part in parts:
        if part.startswith("jit("):
            jits += 1
        instance = id(callers[jits - 1]) if 0 < jits <= len(callers) else 0
        keys.append((part, instance))
    return tuple(keys)


_TRANSFORM = re.compile(r"(vmap|pmap|jvp|transpose|linearize|xmap)\((.*)\)")


def _unwrapped(part: str) -> str:
    """A scope component without the transformations JAX wraps it in: ``vmap(m0)`` -> ``m0``; a bare
    ``vmap()`` (equations ``jax.vmap`` added, in no scope of the user's) -> ``""``."""
    match = _TRANSFORM.fullmatch(part)
    while match:
        part = match.group(2)
        match = _TRANSFORM.fullmatch(part)
    return part


def _common_prefix(paths: list[list]) -> int:
    n = min(len(p) for p in paths)
    for i in range(n):
        first = paths[0][i]
        if any(p[i] != first for p in paths[1:]):
            return i
    return n


# ------------------------------------------------------------------ the tree


def _build(items: list[tuple[Eqn, list]], depth: int, parent: Block) -> list:
    out = []
    for key, run in itertools.groupby(items, key=lambda it: it[1][depth] if len(it[1]) > depth else id(it[0])):
        run = list(run)
        if not isinstance(key, tuple):  # the path ends here: the equation itself
            out.append(run[0][0])
            continue
        block = Block("", "", parent=parent, tokens=[key])
        block.items = _build(run, depth + 1, block)
        out.append(block)
    return out


def _tidy(block: Block) -> None:
    """Merge chains, drop one-item blocks, dissolve trivial lines (see the module docstring); then label."""
    items = []
    for item in block.items:
        if not isinstance(item, Block):
            items.append(item)
            continue
        _tidy(item)
        while len(item.items) == 1 and isinstance(item.items[0], Block):
            inner = item.items[0]
            item.tokens += inner.tokens
            item.items = inner.items
            for sub in item.items:
                if isinstance(sub, Block):
                    sub.parent = item
        _label(item)
        if len(item.items) == 1:
            items.append(item.items[0])
        elif all(t[0] == "line" for t in item.tokens) and sum(not _is_tag(i) for i in item.items) <= 1:
            for sub in item.items:
                if isinstance(sub, Block):
                    sub.parent = block
            items += item.items
        else:
            items.append(item)
    block.items = items


def _is_tag(item) -> bool:
    return isinstance(item, Eqn) and item.primitive == "tag"


def _label(block: Block) -> None:
    best = max(block.tokens, key=lambda t: _PRIORITY[t[0]])  # the outermost of the most telling kind
    lines = [t for t in block.tokens if t[0] == "line"]
    code = fr.line_text(lines[0][1], lines[0][3]) if lines else ""
    block.where = f"{lines[0][1].rsplit('/', 1)[-1]}:{lines[0][3]}" if lines else ""
    kind = best[0]
    if kind == "line":
        block.label = fr.line_label(code) or f"line {best[3]}"
        block.detail = code
    elif kind == "call":
        block.label = fr.function_label(best[2])
        block.detail = code
    else:
        block.label = _scope_label(best[1])
        scopes = [t[1] for t in block.tokens if t[0] in ("scope", "jit")]
        block.detail = code or "/".join(scopes)
    block.kind = kind


def _scope_label(part: str) -> str:
    """``jit(linear)`` -> ``linear``; Equinox's ``eqx.nn.Linear`` -> ``Linear``; ``vmap()`` -> ``vmap``."""
    if part.startswith("jit(") and part.endswith(")"):
        return part[4:-1]
    if part.endswith("()"):
        return part[:-2]
    if "." in part and " " not in part and "," not in part:
        return part.rsplit(".", 1)[-1]
    return part


def frontier(block: Block, budget: int = 15, share: float = 0.4) -> tuple[list, list[Block]]:
    """The items a view of ``block`` shows, and the blocks it shows opened.

    Level by level, every block of the view opens while the boxes still fit in ``budget``, unless
    they are two or more blocks of primitives and lines of code only: that is the block diagram. Otherwise the largest
    block opens alone if it holds at least ``share`` of the view's equations and fits: a loss wrapped
    around a model opens to show the model's layers, while comparable blocks stay closed.
    """
    visible = list(block.items)
    opened: list[Block] = []
    total = sum(1 for _ in block.eqns())
    while True:
        blocks = [b for b in visible if isinstance(b, Block)]
        if not blocks:
            return visible, opened
        all_open = len(visible) - len(blocks) + sum(len(b.items) for b in blocks)
        leaves = len(blocks) >= 2 and all(not any(_structured(i) for i in b.items) for b in blocks)
        if all_open <= budget and not leaves:
            chosen = blocks
        else:
            big = max(blocks, key=lambda b: sum(1 for _ in b.eqns()))
            if sum(1 for _ in big.eqns()) < share * total or len(visible) - 1 + len(big.items) > budget:
                return visible, opened
            chosen = [big]
        for b in chosen:
            k = visible.index(b)
            visible[k : k + 1] = b.items
            opened.append(b)


def _structured(item) -> bool:
    """A block of the code's structure (a scope, a call), not a line of code or an equation."""
    return isinstance(item, Block) and item.kind != "line"
