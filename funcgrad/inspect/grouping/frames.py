"""Where an equation came from: the user's call stack at its bind, and the text of a source line.

An equation's ``Source`` keeps JAX's ``SourceInfo`` and the ``Source`` of the inlined call (a nested
``jax.jit``) it sits in when it was traced under ``funcgrad.core.tracer.keeping_tracebacks``. Its
stack is the call site's stack followed by its own frames (recent JAX records a jitted body's frames
from the jitted function down; older releases repeat the call site's frames, which are dropped).

Frames of funcgrad's engine (``core``, ``api``, ``inspect``, ``checking``) are left out, as are the
frames above the traced function (the caller of ``funcgrad.explore``, pytest, a notebook): the stack
starts at the user's function. Frames of ``funcgrad.nn`` and of the rules stay: they are code too.
"""

from __future__ import annotations

import linecache
import os
import re

from funcgrad.core import jax_compat as jc
from funcgrad.core.ir import Source

Frame = tuple[str, int, str]  # (file, line, function)

_PACKAGE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # funcgrad/
_ENGINE = tuple(os.path.join(_PACKAGE, part) + os.sep for part in ("core", "api", "inspect", "checking"))
# the traced function is called from Call.flat_fun: the user's frames start below it
_ENTRY = os.path.join(_PACKAGE, "core", "call.py")


def stack(source: Source) -> list[Frame]:
    """The user frames of the code that made an equation, outermost first (``[]`` if none are known)."""
    own = _frames(source)
    if source.caller is None:
        return own
    outer = stack(source.caller)
    same = 0
    while same < min(len(outer), len(own)) and outer[same] == own[same]:
        same += 1  # older JAX: a jitted body's traceback repeats its call site's frames
    return outer + own[same:]


def _frames(source: Source) -> list[Frame]:
    frames = jc.user_frames(source.info)
    entry = next((i for i, f in enumerate(frames) if f[0] == _ENTRY), None)
    if entry is not None:
        frames = frames[entry + 1 :]
    return [f for f in frames if not f[0].startswith(_ENGINE)]


def line_text(file: str, line: int) -> str:
    """The source line, stripped of indentation and comment (``""`` when the file cannot be read)."""
    text = linecache.getline(file, line).strip()
    if "#" in text:  # a comment, unless the '#' sits in a string: good enough for a label
        head = text.split("#", 1)[0].rstrip()
        if head.count('"') % 2 == 0 and head.count("'") % 2 == 0:
            text = head
    return text


_ASSIGN = re.compile(r"^([A-Za-z_][\w\s,\[\]\.\*]*?)\s*(?:[-+*/@]?=)(?!=)\s*(.+)$")


def line_label(text: str, width: int = 26) -> str:
    """A short label for a line of code: the names it assigns (``q, k, v``), else the statement, cut."""
    match = _ASSIGN.match(text)
    if match and "(" not in match.group(1):
        return shorten(match.group(1).strip(), width)
    return shorten(text, width)


def function_label(qualname: str) -> str:
    """``Linear.__call__`` -> ``Linear``; ``block.<locals>.<lambda>`` -> ``lambda``; ``relu`` -> ``relu``."""
    parts = [p for p in qualname.split(".") if p != "<locals>"]
    if len(parts) > 1 and parts[-1] in ("__call__", "apply", "forward"):
        return parts[-2]
    return parts[-1].strip("<>") if parts else qualname


def shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"
