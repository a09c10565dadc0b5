"""The house's plan, checked: every module imports on its own, conventions the sweep owns stay there.

The layering itself (core <- rules <- api <- inspect | checking | nn, no cycles) is the import
contract in pyproject.toml, run by ``lint-imports`` in .ci/run.
"""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.extend.core import Primitive

import funcgrad
from funcgrad.core.registry import lookup, records

PACKAGE = pathlib.Path(funcgrad.__file__).parent


def _modules() -> list[str]:
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def test_every_package_has_an_init():
    # a folder without __init__.py is a namespace package: setuptools would not install it
    for folder in [p for p in PACKAGE.rglob("*") if p.is_dir() and p.name != "__pycache__"]:
        assert (folder / "__init__.py").exists(), f"{folder} has no __init__.py"


@pytest.mark.parametrize("module", _modules())
def test_module_imports_on_its_own_in_a_fresh_interpreter(module):
    # no module works only because another was imported first
    code = f"import importlib; importlib.import_module({module!r})"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"import {module} failed on its own:\n{done.stderr[-2000:]}"


def test_no_rule_normalises_its_cotangent():
    # the sweep decides once whether ct is a list (multiple results); rules never re-decide it
    pattern = re.compile(r"isinstance\((ct|out)\b|_as_list|len\(eqn\.outputs\)")
    for path in sorted((PACKAGE / "rules").glob("*.py")):
        hits = [f"{path.name}:{i}" for i, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)]
        assert not hits, f"a rule normalises ct/out itself at {hits}"


def test_every_record_is_one_of_the_four_kinds():
    for name, record in records().items():
        assert record.kind in ("rule", "zero", "stop", "refused"), name
        assert (record.vjp is not None) == (record.kind in ("rule", "zero")), name
        assert (record.reason is not None) == (record.kind == "refused"), name


# a primitive with JAX's multiple_results flag and a single output: its rule must get a list
_pair_p = Primitive("funcgrad_test_single_of_many")
_pair_p.multiple_results = True
_pair_p.def_impl(lambda x: [jnp.sin(x)])
_pair_p.def_abstract_eval(lambda x: [jax.core.ShapedArray(x.shape, x.dtype)])


def test_a_multiple_results_primitive_with_one_output_gets_list_cotangents():
    received = {}

    def rule(ct, x, *, out, **params):
        received["ct"], received["out"] = ct, out
        return (ct[0] * jnp.cos(x),)

    x = jnp.array([0.3, 0.7])
    with funcgrad.defvjp("funcgrad_test_single_of_many", rule):
        g = funcgrad.grad(lambda x: jnp.sum(_pair_p.bind(x)[0] ** 2))(x)
    assert isinstance(received["ct"], list) and len(received["ct"]) == 1
    assert isinstance(received["out"], list) and len(received["out"]) == 1
    np.testing.assert_allclose(g, 2 * np.sin(x) * np.cos(x), rtol=1e-6)
    assert lookup("funcgrad_test_single_of_many") is None


class _NeedsTwoArguments(Exception):
    def __init__(self, code, detail):
        super().__init__(f"{code}: {detail}")
        self.code = code


def test_an_error_inside_a_rule_keeps_its_type_and_gains_a_note():
    def rule(ct, x, *, out, **params):
        raise _NeedsTwoArguments(7, "the rule failed")

    with funcgrad.defvjp("sin", rule):
        with pytest.raises(_NeedsTwoArguments) as info:
            funcgrad.grad(lambda x: jnp.sum(jnp.sin(x)))(jnp.ones(2))
    assert info.value.code == 7  # the same object, not a re-built one
    notes = "\n".join(getattr(info.value, "__notes__", []))
    assert "'sin'" in notes and "test_architecture.py" in notes
