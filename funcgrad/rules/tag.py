"""VJP rule of ``tag``, funcgrad's marker for a named intermediate (``funcgrad.tag``).

A tag is the identity, so its cotangent passes through unchanged.
"""

from __future__ import annotations

from funcgrad.core.registry import defvjp


@defvjp("tag")
def tag_vjp(ct, x, *, out, **params):
    """ct_x = ct (a tag is the identity)"""
    # d(identity) = 1
    return (ct,)
