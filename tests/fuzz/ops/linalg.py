"""Linear algebra on well-conditioned matrices: solve, inv, det, cholesky, eigvalsh, ..."""

from __future__ import annotations

from tests.fuzz.ops.table import (
    OPS,
    Op,
    _emit_auto,
)
from tests.fuzz.programs import Builder, Val

# --------------------------------------------------------------------- linalg


def _well_conditioned(b: Builder, x: Val) -> Val:
    """n I + 0.5 tanh(x x^T) over the last axis of ``x``: eigenvalues in [n/2, 3n/2]."""
    n = x.shape[-1]
    return b.emit(
        f"{n}.0 * jnp.eye({n}, dtype=jnp.{x.dtype}) + 0.5 * jnp.tanh({x.name}[..., :, None] * {x.name}[..., None, :])",
        (*x.shape, n),
        x.dtype,
        n + 0.5,
    )


LINALG = {
    "solve": "jnp.linalg.solve({a}, {a}[..., :, :1] + 1.0)",
    "inv": "jnp.linalg.inv({a})",
    "det": "jnp.linalg.det({a}) / {n}.0 ** {n}",
    "slogdet": "jnp.linalg.slogdet({a})[1]",
    "cholesky": "jnp.linalg.cholesky({a} @ jnp.swapaxes({a}, -1, -2))",
    "eigvalsh": "jnp.linalg.eigvalsh({a} + jnp.swapaxes({a}, -1, -2))",
    "solve_triangular": "jax.scipy.linalg.solve_triangular(jnp.tril({a}), {a}[..., :, :2], lower=True)",
}


def _linalg(name: str, template: str) -> None:
    def build(b: Builder) -> Val | None:
        x = b.pick(lambda v: 1 <= v.ndim <= 2 and 0 < v.shape[-1] <= 4)
        if x is None:
            return None
        a = _well_conditioned(b, x)
        n = x.shape[-1]
        return _emit_auto(b, template.format(a=a.name, n=n), [a], 4.0 * n * n)

    OPS.append(Op(name, "linalg", build, 1))


for _name, _template in LINALG.items():
    _linalg(_name, _template)
