"""A generator of random, well-conditioned JAX programs for differential testing.

A ``Program`` is Python source (``def f(a0, a1, ...): ... return outs``) plus the
source of its example arguments, so every program found by a fuzz run can be
printed, pasted into a regression test and re-run as it is. Programs compose
the operations of ``tests/fuzz/ops/`` (jax.numpy / jax.lax / jax.nn calls,
broadcasting, float32/float64, pytrees of inputs, control flow) over a small
family of mutually broadcastable shapes.

Well-conditioned by construction: every value carries a bound on its magnitude;
an operation whose operand could exceed its domain gets a squashed operand
(``c * tanh(x / c)``), log/sqrt/div/pow operands are made positive and away from
zero (``x*x + 0.25``, ``exp(x) + 0.25``, ``softplus(x) + 0.25``), and
arcsin-like operands are kept in ``[-0.9, 0.9]``.

Two ways to draw: ``programs()`` is a hypothesis strategy (the test suite), and
``generate(RandomDraw(seed))`` draws from a seeded NumPy generator.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import strategies as st
from jax import lax

LIMIT = 8.0  # values are kept within [-LIMIT, LIMIT] (squashed when an operation could exceed it)
FLOATS = ("float32", "float64")
MAX_SIZE = 256  # no value has more elements than this
MAX_DEPTH = 2  # nesting depth of control-flow bodies


# ----------------------------------------------------------------------- draws


class RandomDraw:
    """Choices drawn from a seeded NumPy generator."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)

    def integer(self, lo: int, hi: int) -> int:
        return int(self.rng.integers(lo, hi + 1))

    def choice(self, seq: Sequence):
        return seq[self.integer(0, len(seq) - 1)]

    def boolean(self) -> bool:
        return bool(self.integer(0, 1))


class HypothesisDraw:
    """Choices drawn by hypothesis (which shrinks them towards the first option / the low end)."""

    def __init__(self, draw):
        self._draw = draw

    def integer(self, lo: int, hi: int) -> int:
        return self._draw(st.integers(lo, hi))

    def choice(self, seq: Sequence):
        return seq[self.integer(0, len(seq) - 1)]

    def boolean(self) -> bool:
        return self._draw(st.booleans())


# ------------------------------------------------------------ helpers in programs


def rand(seed: int, shape, dtype: str, kind: str = "normal") -> np.ndarray:
    """A reproducible array: 'normal' (clipped to [-3, 3]), 'uniform' in [-1, 1], or 'ties' (integers in [-2, 2])."""
    rng = np.random.default_rng(seed)
    if kind == "ties":
        x = rng.integers(-2, 3, size=shape)
    elif kind == "uniform":
        x = rng.uniform(-1.0, 1.0, size=shape)
    else:
        x = np.clip(rng.standard_normal(shape), -3.0, 3.0)
    return np.asarray(x, dtype)


def ints(seed: int, shape, high: int) -> np.ndarray:
    """Reproducible int32 indices in ``[0, high)``."""
    return np.random.default_rng(seed).integers(0, high, size=shape).astype(np.int32)


@jax.custom_vjp
def clip_gradient(x):
    """Identity whose backward pass clips the cotangent to [-0.5, 0.5]."""
    return x


clip_gradient.defvjp(lambda x: (x, None), lambda _, g: (jnp.clip(g, -0.5, 0.5),))


@jax.custom_vjp
def scaled_sin(x, y):
    """sin(x) * y with a hand-written VJP that keeps residuals (cos x, sin x, y)."""
    return jnp.sin(x) * y


def _scaled_sin_fwd(x, y):
    return jnp.sin(x) * y, (jnp.cos(x), jnp.sin(x), y)


def _scaled_sin_bwd(res, g):
    cos_x, sin_x, y = res
    return g * cos_x * y, g * sin_x


scaled_sin.defvjp(_scaled_sin_fwd, _scaled_sin_bwd)


@jax.custom_jvp
def soft_clip(x):
    """2 tanh(x / 2), whose JVP rule deliberately halves the true derivative."""
    return 2.0 * jnp.tanh(x / 2.0)


@soft_clip.defjvp
def _soft_clip_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    y = soft_clip(x)
    return y, t * 0.5 * (1.0 - (y / 2.0) ** 2)


def namespace() -> dict[str, Any]:
    """The globals a program's source runs in."""
    return {
        "jax": jax,
        "jnp": jnp,
        "lax": lax,
        "np": np,
        "rand": rand,
        "ints": ints,
        "clip_gradient": clip_gradient,
        "scaled_sin": scaled_sin,
        "soft_clip": soft_clip,
    }


# --------------------------------------------------------------------- programs


@dataclasses.dataclass(frozen=True)
class Val:
    """A value of the program being generated: a name (or expression), its type, and |value| <= bound."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    bound: float

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def ndim(self) -> int:
        return len(self.shape)


@dataclasses.dataclass(frozen=True)
class Program:
    """A generated program: ``source`` defines ``f``; ``args`` is the source of its example arguments."""

    source: str
    args: str
    argnums: tuple[int, ...] | int
    seed: int  # seeds the loss weights and the VJP cotangents
    ops: tuple[str, ...] = ()
    dtypes: tuple[str, ...] = ("float32",)

    def function(self):
        ns = namespace()
        exec(compile(self.source, "<fuzz program>", "exec"), ns)  # noqa: S102 (generated test code)
        return ns["f"]

    def example_args(self) -> tuple:
        return eval(self.args, namespace())  # noqa: S307 (generated test code)

    @property
    def lowest_precision(self) -> str:
        return "float32" if "float32" in self.dtypes else "float64"

    def reproducer(self) -> str:
        """Python source that rebuilds this program (paste into tests/test_fuzz_regressions.py)."""
        return (
            "Program(\n"
            f"    source='''\n{self.source}''',\n"
            f"    args={self.args!r},\n"
            f"    argnums={self.argnums!r},\n"
            f"    seed={self.seed!r},\n"
            f"    dtypes={self.dtypes!r},\n"
            ")"
        )

    def __str__(self) -> str:
        return self.reproducer()


class _Shared:
    """State shared by a program's builder and its nested body builders."""

    def __init__(self):
        self.count = 0
        self.dtypes: set[str] = set()
        self.used: list[str] = []

    def fresh(self, prefix: str = "v") -> str:
        self.count += 1
        return f"{prefix}{self.count}"


def _num(x: float) -> str:
    return repr(float(x))


class Builder:
    """Appends lines to a function body, keeping the pool of values defined so far."""

    def __init__(self, draw, shared: _Shared, ops, indent: int = 1, pool=(), ints_pool=(), depth: int = 0):
        self.draw, self.shared, self.ops = draw, shared, ops
        self.indent, self.depth = indent, depth
        self.lines: list[str] = []
        self.pool: list[Val] = list(pool)
        self.ints: list[Val] = list(ints_pool)
        self.preserve_shape = False

    # -- code

    def line(self, text: str) -> None:
        self.lines.append("    " * self.indent + text)

    def emit(self, expr: str, shape, dtype: str, bound: float) -> Val:
        """Bind ``expr`` to a fresh name and add it to the pool."""
        v = Val(self.shared.fresh(), tuple(int(d) for d in shape), str(dtype), float(min(bound, 1e30)))
        self.line(f"{v.name} = {expr}")
        self.pool.append(v)
        self.shared.dtypes.add(v.dtype)
        return v

    def seed(self) -> int:
        return self.draw.integer(0, 2**16)

    def const(self, shape, dtype: str) -> Val:
        """A closed-over constant array (an expression, not a pool value)."""
        shape = tuple(shape)
        self.shared.dtypes.add(dtype)
        return Val(f"rand({self.seed()}, {shape!r}, {dtype!r})", shape, dtype, 3.0)

    # -- choosing operands

    def pick(self, pred=None) -> Val | None:
        """A pool value satisfying ``pred``, preferring recent ones (so programs compose deeply)."""
        cands = [v for v in self.pool if pred is None or pred(v)]
        if not cands:
            return None
        return cands[len(cands) - 1 - self.draw.integer(0, len(cands) - 1)]

    def operand(self, limit: float = LIMIT, pred=None) -> Val | None:
        v = self.pick(pred)
        return None if v is None else self.bounded(v, limit)

    def bounded(self, v: Val, limit: float) -> Val:
        """``v`` if ``|v| <= limit``, else ``limit * tanh(v / limit)``."""
        if v.bound <= limit:
            return v
        return self.emit(f"{_num(limit)} * jnp.tanh({v.name} / {_num(limit)})", v.shape, v.dtype, limit)

    def positive(self, v: Val, low: float = 0.25) -> Val:
        """A value >= ``low`` computed from ``v`` (for log, sqrt, division, pow)."""
        kind = self.draw.choice(("square", "exp", "softplus"))
        if kind == "square":
            v = self.bounded(v, 3.0)
            return self.emit(f"{v.name} * {v.name} + {_num(low)}", v.shape, v.dtype, v.bound**2 + low)
        if kind == "exp":
            v = self.bounded(v, 2.0)
            return self.emit(f"jnp.exp({v.name}) + {_num(low)}", v.shape, v.dtype, math.exp(v.bound) + low)
        v = self.bounded(v, LIMIT)
        return self.emit(f"jax.nn.softplus({v.name}) + {_num(low)}", v.shape, v.dtype, v.bound + 0.7 + low)

    def unit(self, v: Val, r: float = 0.9) -> Val:
        """A value in ``[-r, r]`` computed from ``v`` (for arcsin, arctanh, erf_inv)."""
        return self.emit(f"{_num(r)} * jnp.tanh({v.name})", v.shape, v.dtype, r)

    def subshape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """A shape that broadcasts to ``shape``: some trailing dims, some of them set to 1."""
        k = self.draw.integer(0, len(shape))
        return tuple(d if self.draw.boolean() else 1 for d in shape[len(shape) - k :])

    def partner(self, x: Val, limit: float = LIMIT, same_type: bool = False) -> Val:
        """A second operand for an elementwise op with ``x``: a pool value, a constant or a Python scalar.

        ``same_type`` (for ``lax`` ops): the same dtype, and the same shape or rank 0.
        Otherwise broadcast-compatible with ``x`` (exactly ``x``'s shape after broadcasting when the
        builder preserves shapes).
        """

        def fits(v: Val) -> bool:
            if same_type:
                return v.dtype == x.dtype and v.shape in (x.shape, ())
            try:
                out = np.broadcast_shapes(v.shape, x.shape)
            except ValueError:
                return False
            if self.preserve_shape:
                return out == x.shape
            return len(out) <= 4 and int(np.prod(out)) <= MAX_SIZE

        kind = self.draw.choice(("pool", "pool", "const", "scalar"))
        if kind == "pool":
            v = self.pick(fits)
            if v is not None:
                return self.bounded(v, limit)
        if kind == "scalar" and not same_type:
            c = (self.draw.integer(-20, 20) or 1) / 8.0
            return Val(_num(c), (), "weak", abs(c))
        shape = x.shape if same_type and self.draw.boolean() else self.subshape(x.shape)
        if same_type and shape not in (x.shape, ()):
            shape = ()
        dtype = x.dtype if same_type or self.draw.boolean() else self.draw.choice(FLOATS)
        c = self.const(shape, dtype)
        return c if limit >= c.bound else self.bounded(self.emit(c.name, c.shape, c.dtype, c.bound), limit)

    def axis(self, x: Val, nonempty: bool = False) -> int | None:
        """A random axis of ``x`` (None if it has none; only axes of nonzero size if ``nonempty``)."""
        axes = [a for a in range(x.ndim) if not nonempty or x.shape[a] > 0]
        return self.draw.choice(axes) if axes else None

    def index(self, n: int, shape=()) -> str:
        """An int32 index expression in ``[0, n)``: a constant, or an integer input ``% n`` when there is one."""
        pool = [v for v in self.ints if v.shape == tuple(shape)]
        if pool and self.draw.boolean():
            return f"({self.draw.choice(pool).name} % {n})"
        if shape == ():
            return f"jnp.int32({self.draw.integer(0, n - 1)})"
        return f"ints({self.seed()}, {tuple(shape)!r}, {n})"

    # -- bodies of control flow and function transformations

    def coerce(self, v: Val, shape, dtype: str) -> Val:
        """A value of exactly ``shape`` and ``dtype`` computed from ``v``."""
        shape = tuple(shape)
        if v.shape != shape:
            try:
                fits = np.broadcast_shapes(v.shape, shape) == shape
            except ValueError:
                fits = False
            if not fits:
                reduce = "jnp.mean" if v.size > 0 else "jnp.sum"
                v = self.emit(f"{reduce}({v.name})", (), v.dtype, v.bound)
            v = self.emit(f"jnp.broadcast_to({v.name}, {shape!r})", shape, v.dtype, v.bound)
        if v.dtype != dtype:
            v = self.emit(f"{v.name}.astype(jnp.{dtype})", v.shape, dtype, v.bound)
        return v

    def sub(self, inputs: Sequence[Val], closure: bool = True) -> Builder:
        """A builder for a nested function body whose parameters are ``inputs``."""
        pool = [*(self.pool if closure else []), *inputs]
        sub = Builder(
            self.draw, self.shared, self.ops, self.indent + 1, pool, self.ints if closure else (), self.depth + 1
        )
        return sub

    def body(self, name: str, params: str, inputs: Sequence[Val], outs: Sequence[tuple], closure=True, steps=None):
        """Write ``def name(params):`` whose body computes values of the types ``outs`` ((shape, dtype, bound))."""
        sub = self.sub(inputs, closure)
        sub.run(self.draw.integer(1, 3) if steps is None else steps)
        results = []
        for shape, dtype, bound in outs:
            v = sub.pick() or inputs[0]
            v = sub.coerce(v, shape, dtype)
            if v.bound > bound:
                v = sub.emit(f"{_num(bound)} * jnp.tanh({v.name} / {_num(bound)})", v.shape, v.dtype, bound)
            results.append(v.name)
        self.line(f"def {name}({params}):")
        self.lines.extend(sub.lines)
        self.line(f"    return {', '.join(results)}{',' if len(results) == 1 and len(outs) > 1 else ''}")

    # -- the main loop

    def run(self, steps: int) -> None:
        """Append ``steps`` random operations."""
        ops = [o for o in self.ops if not (o.family == "control" and self.depth >= MAX_DEPTH)]
        if not ops:
            return
        weights = np.cumsum([o.weight for o in ops])
        for _ in range(steps):
            for _attempt in range(5):
                r = self.draw.integer(0, int(weights[-1]) - 1)
                o = ops[int(np.searchsorted(weights, r, side="right"))]
                v = o.build(self)
                if v is not None:
                    self.shared.used.append(o.name)
                    break


# ----------------------------------------------------------------------- inputs


def _leaf(draw, b: Builder, base: tuple[int, ...], diff: bool, force_float: bool = False):
    """Source of one input leaf and its description ("float"/"int"/"none", shape, dtype)."""
    roll = 2 if force_float else draw.integer(0, 11)
    if roll == 0:
        return "None", ("none", (), None)
    if roll == 1 and not diff:
        shape = b.subshape(base)
        return f"ints({b.seed()}, {shape!r}, 3)", ("int", shape, "int32")
    shape = b.subshape(base) if draw.integer(0, 7) else tuple(draw.integer(1, 3) for _ in range(draw.integer(0, 2)))
    dtype = draw.choice(FLOATS)
    kind = draw.choice(("normal", "normal", "uniform", "ties"))
    b.shared.dtypes.add(dtype)
    return f"rand({b.seed()}, {shape!r}, {dtype!r}, {kind!r})", ("float", shape, dtype)


def _tree(draw, b: Builder, base, diff: bool, depth: int = 0):
    """Source of an argument pytree and its leaves as (access path, description)."""
    kind = draw.choice(("leaf", "leaf", "dict", "tuple", "list")) if depth < 2 else "leaf"
    if kind == "leaf":
        src, desc = _leaf(draw, b, base, diff)
        return src, [("", desc)]
    n = draw.integer(1, 3)
    items, leaves = [], []
    for i in range(n):
        key = f"'{'wbsk'[i]}'" if kind == "dict" else str(i)
        src, sub = _tree(draw, b, base, diff, depth + 1)
        items.append(f"{key}: {src}" if kind == "dict" else src)
        leaves.extend((f"[{key}]{path}", desc) for path, desc in sub)
    if kind == "dict":
        return "{" + ", ".join(items) + "}", leaves
    if kind == "tuple":
        return "(" + ", ".join(items) + ("," if n == 1 else "") + ")", leaves
    return "[" + ", ".join(items) + "]", leaves


# --------------------------------------------------------------------- generate


def generate(draw, ops=None, steps: int | None = None) -> Program:
    """Draw one program.

    Args:
      draw: a ``RandomDraw`` or ``HypothesisDraw``.
      ops: the operations to draw from (default: ``tests.fuzz.ops.enabled_ops()``).
      steps: the number of operations (default: drawn from 1..10).

    Returns:
      A ``Program``.
    """
    from tests.fuzz.ops import enabled_ops

    ops = enabled_ops() if ops is None else ops
    shared = _Shared()
    b = Builder(draw, shared, ops)
    rank = draw.integer(0, 3)
    base = tuple(draw.choice((2, 3, 1, 4) if draw.integer(0, 9) else (0, 1, 2)) for _ in range(rank))
    nargs = draw.integer(1, 3)
    diff = [True] + [draw.boolean() for _ in range(nargs - 1)]
    arg_srcs = []
    for a in range(nargs):
        src, leaves = _tree(draw, b, base, diff[a])
        if a == 0 and not any(desc[0] == "float" for _, desc in leaves):
            src, desc = _leaf(draw, b, base, True, force_float=True)
            leaves = [("", desc)]
        arg_srcs.append(src)
        for path, (kind, shape, dtype) in leaves:
            if kind == "float":
                b.emit(f"a{a}{path}", shape, dtype, 3.0)
            elif kind == "int":
                v = Val(shared.fresh("i"), tuple(shape), dtype, 3.0)
                b.line(f"{v.name} = a{a}{path}")
                b.ints.append(v)
    b.run(draw.integer(1, 10) if steps is None else steps)
    # outputs: the last value and up to two others, as a single array, a tuple or a dict
    outs = [b.pool[-1]] + [b.pick() for _ in range(draw.integer(0, 2))]
    names = list(dict.fromkeys(v.name for v in outs))
    form = draw.choice(("tuple", "single", "dict"))
    if form == "single" or len(names) == 1:
        ret = names[0]
    elif form == "tuple":
        ret = "(" + ", ".join(names) + ")"
    else:
        ret = "{" + ", ".join(f"'o{i}': {n}" for i, n in enumerate(names)) + "}"
    params = ", ".join(f"a{a}" for a in range(nargs))
    source = f"def f({params}):\n" + "\n".join(b.lines) + f"\n    return {ret}\n"
    diff_nums = tuple(a for a in range(nargs) if diff[a])
    argnums = 0 if diff_nums == (0,) and draw.boolean() else diff_nums
    args = "(" + ", ".join(arg_srcs) + ("," if nargs == 1 else "") + ")"
    dtypes = tuple(sorted(d for d in shared.dtypes if d in FLOATS)) or ("float32",)
    return Program(source, args, argnums, draw.integer(0, 2**16), tuple(shared.used), dtypes)


@st.composite
def programs(draw, ops=None, steps: int | None = None) -> Program:
    """Hypothesis strategy of ``Program`` values (see ``generate``)."""
    return generate(HypothesisDraw(draw), ops, steps)
