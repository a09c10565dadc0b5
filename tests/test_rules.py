"""Table-driven rule test: funcgrad's VJP of each primitive against ``jax.vjp`` of the same function.

Every registered rule must have at least one row in ``tests/rule_specs``; each row
is checked in float32 and float64, on random inputs, broadcasting (array with a
rank-0 operand), 0-d and size-0 inputs, and at its tie/kink points.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import funcgrad
from funcgrad.rules.registry import vjp_rules
from tests.conftest import x64
from tests.jax_compat import row_unavailable
from tests.rule_specs import CASES, UNAVAILABLE, all_specs

SPECS = all_specs()
TOL = {"float32": (2e-5, 2e-5), "float64": (1e-10, 1e-10), "float16": (1e-2, 1e-2), "bfloat16": (2e-2, 2e-2)}


def _primitives_in(graph) -> set[str]:
    found = set()
    stack = [graph]
    while stack:
        g = stack.pop()
        for e in g.eqns:
            found.add(e.primitive)
            stack.extend(g.subgraphs())
    return found


def row_cases(spec) -> list[tuple[str, str, int | None, str]]:
    """Every check of one row: ``(dtype, case, kink, id)``, each dtype's cases first, then its kinks.

    ``case`` is one of ``CASES`` the row's ``args`` builder supports, or ``"kink"`` with ``kink`` the
    index into ``spec.kinks``; ``id`` is the pytest id of the check.
    """
    probe = np.random.default_rng(0)
    applicable = [c for c in CASES if spec.args(probe, np.dtype("float32"), c) is not None]
    cases = []
    for dtype in spec.dtypes:
        for case in applicable:
            cases.append((dtype, case, None, f"{spec.id}-{dtype}-{case}"))
        for k, _ in enumerate(spec.kinks):
            cases.append((dtype, "kink", k, f"{spec.id}-{dtype}-kink{k}"))
    return cases


def _cases(spec):
    for dtype, case, kink, case_id in row_cases(spec):
        yield pytest.param(spec, dtype, case, kink, id=case_id)


def _float_dtype(x):
    return jnp.issubdtype(jnp.result_type(x), jnp.inexact)


def _random_cotangent(rng, out):
    """A random cotangent like ``out``: complex outputs get random real and imaginary parts."""
    shape, dtype = np.shape(out), jnp.result_type(out)
    if jnp.issubdtype(dtype, jnp.complexfloating):
        return jnp.asarray(rng.normal(size=shape) + 1j * rng.normal(size=shape), dtype)
    if jnp.issubdtype(dtype, jnp.floating):
        return jnp.asarray(rng.normal(size=shape), dtype)
    return np.zeros(shape, jax.dtypes.float0)


def _widened(x):
    """``x`` in complex128 if complex (keeping the imaginary part), else float64, for comparison."""
    x = np.asarray(x)
    return x.astype(np.complex128 if np.iscomplexobj(x) else np.float64)


def differentiated(spec, args, fn=None):
    """``(f, diff_args, argnums)``: the row's function (or ``fn``) of its differentiated arguments only,
    their values, and which arguments they are (the row's ``argnums``, or every floating-point argument)."""
    argnums = (
        tuple(spec.argnums) if spec.argnums is not None else tuple(i for i, a in enumerate(args) if _float_dtype(a))
    )
    fn = spec.fn if fn is None else fn

    def f(*diff):
        full = list(args)
        for i, d in zip(argnums, diff):
            full[i] = d
        return fn(*full)

    return f, [args[i] for i in argnums], argnums


def check_against_jax(spec, args, dtype):
    f, diff_args, argnums = differentiated(spec, args)
    # JAX differentiates the row's function, or the row's reference where JAX's own rule fails
    f_jax = f if spec.reference is None else differentiated(spec, args, spec.reference)[0]
    out_j, vjp_j = jax.vjp(f_jax, *diff_args)
    out_f, vjp_f = funcgrad.vjp(f, *diff_args)
    rng = np.random.default_rng(1)
    ct = jax.tree.map(lambda o: _random_cotangent(rng, o), out_j)
    rtol, atol = TOL[dtype]
    rtol, atol = spec.rtol or rtol, spec.atol or atol
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(_widened(a), _widened(b), rtol=rtol, atol=atol),
        out_f,
        out_j,
    )
    ct_f, ct_j = vjp_f(ct), vjp_j(ct)
    for i, (a, b) in enumerate(zip(ct_f, ct_j)):
        assert jnp.result_type(a) == jnp.result_type(b), (
            f"input {argnums[i]}: dtype {jnp.result_type(a)} vs jax {jnp.result_type(b)}"
        )
        assert np.shape(a) == np.shape(b), f"input {argnums[i]}: shape {np.shape(a)} vs jax {np.shape(b)}"
        if jnp.result_type(b) == jax.dtypes.float0:
            continue
        np.testing.assert_allclose(
            _widened(a),
            _widened(b),
            rtol=rtol,
            atol=atol,
            err_msg=f"cotangent of input {argnums[i]}",
        )


# rows whose forward mode funcgrad may refuse, with the reason its error states: forward mode is funcgrad's
# VJP transposed, which differentiates the rule's own ragged_dot_general with a ragged contracting dimension,
# and that has no VJP (JAX's JVP exists, but JAX cannot transpose it either). Where it runs, it must match.
FORWARD_UNAVAILABLE = {
    "ragged_dot_general": "ragged contracting dimension",
    "ragged_dot_partial_groups": "ragged contracting dimension",
    "ragged_dot_batched": "ragged contracting dimension",
}
# kink rows where JAX's own JVP and VJP disagree (they are not each other's transpose there); funcgrad's
# forward mode is its VJP transposed, and its VJP is JAX's: the tangent is the transpose of JAX's VJP
JAX_JVP_IS_NOT_ITS_VJP_TRANSPOSED = {"min_pool-kink0"}


def _random_tangent(rng, x):
    """A random tangent like the primal ``x`` (``float0`` for an integer one)."""
    shape, dtype = np.shape(x), jnp.result_type(x)
    if jnp.issubdtype(dtype, jnp.inexact):
        return _random_cotangent(rng, jnp.zeros(shape, dtype))
    return np.zeros(shape, jax.dtypes.float0)


def check_forward_against_jax(spec, args, dtype):
    """funcgrad's forward mode (its VJP transposed) against ``jax.jvp`` on one row: outputs and tangents."""
    f, diff_args, argnums = differentiated(spec, args)
    f_jax = f if spec.reference is None else differentiated(spec, args, spec.reference)[0]
    rng = np.random.default_rng(2)
    tangents = tuple(jax.tree.map(lambda a: _random_tangent(rng, a), a) for a in diff_args)
    try:
        out_j, t_j = jax.jvp(f_jax, tuple(diff_args), tangents)
    except (TypeError, NotImplementedError) as e:  # custom_vjp: forward mode is an error in JAX, and in funcgrad
        with pytest.raises(type(e), match="forward-mode"):
            funcgrad.jvp(f, tuple(diff_args), tangents)
        return
    try:
        out_f, t_f = funcgrad.jvp(f, tuple(diff_args), tangents)
    except NotImplementedError as e:
        if spec.id not in FORWARD_UNAVAILABLE or FORWARD_UNAVAILABLE[spec.id] not in str(e):
            raise
        return
    rtol, atol = TOL[dtype]
    rtol, atol = spec.rtol or rtol, spec.atol or atol

    def same(a, b, what):
        assert np.shape(a) == np.shape(b), f"{what}: shape {np.shape(a)} vs jax {np.shape(b)}"
        if jnp.result_type(b) == jax.dtypes.float0:
            assert jnp.result_type(a) == jax.dtypes.float0, f"{what}: dtype {jnp.result_type(a)} vs jax float0"
            return
        assert jnp.result_type(a) == jnp.result_type(b), f"{what}: dtype {jnp.result_type(a)} vs {jnp.result_type(b)}"
        np.testing.assert_allclose(_widened(a), _widened(b), rtol=rtol, atol=atol, err_msg=what)

    # values only for the output: under jax.jvp a custom_jvp function's primal output is its rule's, whose
    # dtype may differ from the function's (custom_jvp_int_arg); funcgrad's is the function's
    jax.tree.map(lambda a, b: np.testing.assert_allclose(_widened(a), _widened(b), rtol=rtol, atol=atol), out_f, out_j)
    typed_alike = jax.tree.leaves(jax.tree.map(lambda a, b: jnp.result_type(a) == jnp.result_type(b), out_f, out_j))
    if all(typed_alike):
        jax.tree.map(lambda a, b: same(a, b, "tangent"), t_f, t_j)
    else:
        jax.tree.map(lambda a, b: same(a, b.astype(jnp.result_type(a)), "tangent"), t_f, t_j)


def _row_args(spec, dtype, case, kink):
    rng = np.random.default_rng(0)
    np_dtype = jnp.dtype(dtype)
    if case == "kink":
        return [
            np.asarray(a).astype(np_dtype) if np.issubdtype(np.asarray(a).dtype, np.floating) else np.asarray(a)
            for a in spec.kinks[kink]
        ]
    return spec.args(rng, np_dtype, case)


def check_row(spec, dtype, case, kink=None):
    """One check of the rule table: row ``spec`` in ``dtype`` on ``case`` (or kink point ``kink``).

    Raises ``AssertionError`` if the row does not produce its primitive or funcgrad's VJP differs from
    ``jax.vjp``'s, and ``pytest.skip.Exception`` if this JAX release is too old for the row. The
    mutation script (scripts/mutate_rules.py) calls this very function with deliberately wrong rules.
    """
    with x64():
        args = _row_args(spec, dtype, case, kink)
        why = row_unavailable(spec.id, spec.min_jax)
        if why is not None:  # only on JAX releases older than the row needs (tests/jax_compat.py)
            pytest.skip(why)
        graph = funcgrad.trace(spec.fn)(*args)
        assert spec.primitive in _primitives_in(graph), f"row {spec.id} does not produce {spec.primitive!r}"
        check_against_jax(spec, args, dtype)


@pytest.mark.parametrize("spec,dtype,case,kink", [c for s in SPECS for c in _cases(s)])
def test_rule_matches_jax_vjp(spec, dtype, case, kink):
    check_row(spec, dtype, case, kink)


# the forward-mode column runs each row's random case and its kinks (in both dtypes): forward mode is the
# row's VJP rule transposed, which the VJP column already checks on the other cases
@pytest.mark.parametrize(
    "spec,dtype,case,kink", [c for s in SPECS for c in _cases(s) if c.values[2] in ("random", "kink")]
)
def test_forward_mode_matches_jax_jvp(spec, dtype, case, kink):
    # the forward-mode column of the table: funcgrad.jvp (the row's VJP rule, transposed) against jax.jvp
    with x64():
        why = row_unavailable(spec.id, spec.min_jax)
        if why is not None:
            pytest.skip(why)
        args = _row_args(spec, dtype, case, kink)
        if f"{spec.id}-{case}{kink if kink is not None else ''}" in JAX_JVP_IS_NOT_ITS_VJP_TRANSPOSED:
            check_transpose_of_jax_vjp(spec, args, dtype)
        else:
            check_forward_against_jax(spec, args, dtype)


def check_transpose_of_jax_vjp(spec, args, dtype):
    """<J t, c> from funcgrad's forward mode equals <t, J^T c> from jax.vjp, for random t and c."""
    f, diff_args, _ = differentiated(spec, args)
    rng = np.random.default_rng(3)
    tangents = tuple(_random_tangent(rng, a) for a in diff_args)
    out, t_out = funcgrad.jvp(f, tuple(diff_args), tangents)
    c = _random_cotangent(rng, out)
    ct_in = jax.vjp(f, *diff_args)[1](c)
    lhs = float(jnp.vdot(t_out, c))
    rhs = sum(float(jnp.vdot(t, g)) for t, g in zip(tangents, ct_in))
    np.testing.assert_allclose(lhs, rhs, rtol=TOL[dtype][0] * 10, atol=TOL[dtype][1] * 10)


def test_every_registered_rule_has_a_row():
    if UNAVAILABLE:  # on an older JAX release some families' rows are not even importable
        pytest.skip(f"spec modules not imported on jax {jax.__version__}: {UNAVAILABLE}")
    covered = {s.primitive for s in SPECS}
    missing = sorted(set(vjp_rules) - covered)
    assert not missing, f"registered rules without a row in tests/rule_specs: {missing}"
