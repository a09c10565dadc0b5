"""Rules that compute a cotangent in a platform's own way: each formulation equals the general one.

``conv_general_dilated``'s kernel cotangent is one dot per kernel position on CPU
(``ct_rhs_shifted``, faster there) and JAX's convolution elsewhere (``ct_rhs_convolution``). The rule
table's rows run on CPU, so they check the first against JAX; here both are compared directly, on
every conv row where the CPU formulation applies, so the one other platforms run is checked as well.
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import funcgrad
from funcgrad.rules import conv
from tests.conftest import x64
from tests.rule_specs.conv import SPECS


def _conv_eqn(spec, args):
    graph = funcgrad.trace(spec.fn)(*args)
    (eqn,) = [e for e in graph.eqns if e.primitive == "conv_general_dilated"]
    return eqn


@pytest.mark.parametrize("spec", SPECS, ids=[s.id for s in SPECS])
def test_kernel_cotangent_formulations_agree(spec):
    with x64():
        rng = np.random.default_rng(0)
        lhs, rhs = (jnp.asarray(a) for a in spec.args(rng, np.float64, "random"))
        eqn = _conv_eqn(spec, (lhs, rhs))
        p = dict(eqn.params, precision=eqn.params.get("precision"))
        p.setdefault("preferred_element_type", None)
        ct = jnp.asarray(rng.normal(size=eqn.outputs[0].type.shape))
        applies = conv.shifted_applies(ct, rhs, p)
        if spec.id in ("conv_feature_groups", "conv_batch_groups", "conv_dilated"):
            assert not applies  # groups and lhs dilation keep the convolution everywhere
            return
        if np.size(ct) == 0:
            return
        assert applies
        want = conv.ct_rhs_convolution(ct, lhs, rhs, p)
        got = conv.ct_rhs_shifted(ct, lhs, rhs, p)
        assert got.shape == want.shape == rhs.shape and got.dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_cpu_runs_the_shifted_kernel_cotangent_and_matches_jax():
    # on this CPU the compiled backward of a 3x3 convolution has no convolution for the kernel's
    # cotangent (only the forward's), and the gradient is JAX's within float32 rounding
    def loss(w, x):
        return jnp.sum(jax.lax.conv_general_dilated(x, w, (1, 1), "VALID") ** 2)

    rng = np.random.default_rng(1)
    w = jnp.asarray(rng.normal(size=(8, 4, 3, 3)), jnp.float32)
    x = jnp.asarray(rng.normal(size=(2, 4, 9, 9)), jnp.float32)
    ours, theirs = (jax.jit(g(loss)).lower(w, x).compile().as_text() for g in (funcgrad.grad, jax.grad))
    assert len(re.findall(r"\bconvolution\(", theirs)) == 2  # JAX's: the forward and the kernel's cotangent
    assert len(re.findall(r"\bconvolution\(", ours)) == 1 and len(re.findall(r"\bdot\(", ours)) == 9
    np.testing.assert_allclose(funcgrad.grad(loss)(w, x), jax.grad(loss)(w, x), rtol=2e-5, atol=1e-4)
