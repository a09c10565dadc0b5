"""The coverage page (docs/coverage.md) regenerates from the installed JAX with no differentiable primitive missing."""

from __future__ import annotations

import importlib.util
import pathlib

from funcgrad.core import jax_compat
from funcgrad.core.registry import records

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("coverage_page", ROOT / "scripts" / "coverage_page.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_coverage_page_has_no_missing_primitive(tmp_path):
    # written to a temporary file: test processes register extra primitives (tests/test_extend.py),
    # which would change the page; docs/coverage.md is rewritten by running the script itself
    page = _script()
    out = tmp_path / "coverage.md"
    assert page.main(["--out", str(out)]) == 0
    table = page.classify()
    missing = sorted(name for name, (category, _) in table.items() if category == "missing")
    assert not missing, (
        f"JAX can differentiate {missing} but funcgrad has no VJP rule for them.\n  fix: add a rule "
        "(funcgrad/rules/) with a row in tests/rule_specs, or, for internal primitives that ordinary "
        "programs never produce, an entry with its reason in EXCLUDED in scripts/coverage_page.py"
    )
    assert out.read_text().count("## missing (0)") == 1


def test_hand_written_lists_name_real_primitives_with_reasons():
    page = _script()
    known = set(page.jax_primitives())
    for table_name in ("EXCLUDED", "NO_FLOAT_OUTPUT"):
        entries = getattr(page, table_name)
        stale = sorted(set(entries) - known)
        assert not stale, f"{table_name} lists primitives this JAX does not have: {stale}"
        assert all(reason.strip() for reason in entries.values())
    # an exclusion must not hide a primitive funcgrad handles: no excluded name has a record
    # (a rule, a zero, a stop or a refusal) in the registry, under JAX's name or funcgrad's
    registered = set(records())
    hidden = sorted(n for n in page.EXCLUDED if n in registered or jax_compat.canonical_name(n) in registered)
    assert not hidden, f"EXCLUDED lists primitives funcgrad has a record for: {hidden}"
