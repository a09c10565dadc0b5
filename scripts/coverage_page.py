"""Write docs/coverage.md: every primitive of the installed JAX and what funcgrad does with it.

Run ``python scripts/coverage_page.py`` (tests/test_coverage_page.py runs it too).
The primitives come from JAX's own registries (JVP and transpose rules,
batching rules, lowerings) after importing JAX's public modules; this script
is not part of funcgrad, so it may read them. Each primitive lands in one
category:

* rule: funcgrad has a VJP rule (``funcgrad.supported_primitives()``);
* built in: handled by funcgrad's tracer or reverse sweep (inlined ``jit``
  calls, ``stop_gradient``);
* zero: zero derivative by definition (``defzero``), or only integer, boolean
  or no outputs, so no gradient can flow (the table below says why);
* refused: funcgrad refuses it with a reason and a fix (``defnovjp``), as JAX does;
* not differentiable in JAX: JAX has no JVP rule for it either;
* excluded: internal or experimental primitives that ordinary programs do not
  produce, each with its reason;
* missing: JAX can differentiate it and funcgrad cannot. The test asserts
  there are none.
"""

from __future__ import annotations

import argparse
import collections
import importlib
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import jax  # noqa: E402

import funcgrad  # noqa: E402
from funcgrad.core import jax_compat  # noqa: E402
from funcgrad.core.registry import no_vjp_reasons, vjp_rules, zero_vjp_primitives  # noqa: E402

# JAX's public modules: importing them registers their primitives
PUBLIC_MODULES = [
    "jax.numpy", "jax.numpy.fft", "jax.numpy.linalg", "jax.scipy.special", "jax.scipy.linalg",
    "jax.scipy.signal", "jax.scipy.stats", "jax.scipy.sparse.linalg", "jax.nn", "jax.random", "jax.lax",
    "jax.lax.linalg", "jax.ad_checkpoint", "jax.custom_batching", "jax.experimental.shard_map",
    "jax.experimental.multihost_utils", "jax.experimental.checkify", "jax.ffi",
]  # fmt: skip

CATEGORIES = ["rule", "built in", "zero", "refused", "not differentiable in JAX", "excluded", "missing"]

# primitives funcgrad handles without a rule
BUILT_IN = {
    **{name: "nested call: inlined by funcgrad.trace" for name in jax_compat.INLINED_CALLS},
    "stop_gradient": "the reverse sweep never differentiates through it",
}

# primitives whose outputs are all integer / boolean / keys, or that have no outputs: nothing flows back
NO_FLOAT_OUTPUT = {
    "argmax": "integer indices",
    "argmin": "integer indices",
    "axis_index": "integer index",
    "platform_index": "integer index (which backend)",
    "lu_pivots_to_permutation": "integer permutation",
    "mulhi": "integer arithmetic",
    "eq_to": "boolean output",
    "le_to": "boolean output",
    "lt_to": "boolean output",
    "random_bits": "integer random bits",
    "random_seed": "PRNG key",
    "random_split": "PRNG keys",
    "random_fold_in": "PRNG key",
    "random_wrap": "PRNG key",
    "random_unwrap": "integer key data",
    "random_clone": "PRNG key",
    "threefry2x32": "integer random bits",
    "iota_2x32_shape": "integer counters",
    "debug_callback": "no outputs (jax.debug.callback)",
    "debug_print": "no outputs (jax.debug.print)",
    "check": "no outputs (jax.experimental.checkify.check)",
    "inspect_sharding": "no outputs",
    "dce_sink": "no outputs",
    "shape_assertion": "no outputs",
}

# not in ordinary programs, or not supported yet; each says why
EXCLUDED = {
    # mutable arrays and JAX's experimental state: funcgrad's IR is pure
    **{
        name: "mutable array refs (experimental jax.new_ref / Pallas state): funcgrad's graphs are pure"
        for name in (
            "accum_grad_in_ref",
            "addupdate",
            "get",
            "swap",
            "new_ref",
            "empty_ref",
            "free_ref",
            "freeze",
            "run_state",
        )
    },  # fmt: skip
    **{
        name: "hijax internals (experimental boxes, logs and hi-level primitives)"
        for name in ("box_get", "box_set", "new_box", "new_log", "log_extend", "log_read")
    },
    "custom_lin": "internal to JAX's own linearization; never in a traced program",
    "eval_jaxpr": "staged as closed_call; never in a traced program",
    "remat_opt": "only inside the fwd of custom_vjp(optimize_remat=True) while JAX differentiates it; "
    "funcgrad evaluates that fwd, never differentiates it",
    "stage": "internal staging marker",
    "tie": "internal ordering primitive",
    "linear_call": "experimental jax.custom_derivatives.linear_call: not supported yet",
    "layout_constraint": "experimental layout API (with_layout_constraint): not supported yet",
    "pbroadcast": "GPU-only collective (no CPU lowering, and JAX cannot vmap it): no rule, since the "
    "CPU test suite could not check one",
    **{
        name: "explicit-sharding reduced/unreduced types (experimental): not supported yet"
        for name in (
            "all_gather_reduced",
            "preduced",
            "unreduced_psum",
            "unreduced_reduce_scatter",
            "reduced_vary_cast_p",
            "vary_unreduced_cast_p",
        )
    },  # fmt: skip
    "ragged_all_to_all": "ragged collective (GPU/TPU only): not supported yet",
    "host_local_array_to_global_array": "multi-host array conversion, applied to inputs outside the "
    "differentiated function",
    "global_array_to_host_local_array": "multi-host array conversion, applied to outputs outside the "
    "differentiated function",
}


def jax_primitives() -> dict:
    """Every primitive registered by JAX's public modules, by name."""
    for module in PUBLIC_MODULES:
        try:
            importlib.import_module(module)
        except ImportError:
            pass
    from jax._src.interpreters import ad, batching, mlir

    owned = _jax_owned_primitives()
    found = {}
    registries = [ad.primitive_jvps, ad.primitive_transposes, batching.fancy_primitive_batchers, mlir._lowerings]
    registries += list(mlir._platform_specific_lowerings.values())
    for registry in registries:
        for prim in registry:
            if id(prim) in owned:
                found.setdefault(prim.name, prim)
    return found


def _jax_owned_primitives() -> set[int]:
    """Ids of the primitives JAX itself defines: module-level objects of ``jax``'s own modules.

    The registries also hold primitives that other code (e.g. a test defining a
    ``jax.extend.core.Primitive``) created in the same process; those are not JAX's,
    and leaving them out keeps the page the same whatever ran before.
    """
    from jax._src import core

    owned = set()
    for name, module in list(sys.modules.items()):
        if module is None or not (name == "jax" or name.startswith("jax.")):
            continue
        owned.update(id(v) for v in list(vars(module).values()) if isinstance(v, core.Primitive))
    return owned


def classify() -> dict[str, tuple[str, str]]:
    """primitive name -> (category, note)."""
    from jax._src.interpreters import ad

    primitives = jax_primitives()  # first: importing JAX's modules registers their JVP rules too
    with_jvp = {p.name for p in ad.primitive_jvps}
    table = {}
    for name in sorted(primitives):
        fg_name = jax_compat.canonical_name(name)
        note = "" if fg_name == name else f"funcgrad calls it {fg_name!r}"
        if fg_name in zero_vjp_primitives:
            table[name] = ("zero", "defzero")
        elif fg_name in vjp_rules:
            table[name] = ("rule", note)
        elif name in BUILT_IN:
            table[name] = ("built in", BUILT_IN[name])
        elif name in NO_FLOAT_OUTPUT:
            table[name] = ("zero", NO_FLOAT_OUTPUT[name])
        elif fg_name in no_vjp_reasons:
            table[name] = ("refused", no_vjp_reasons[fg_name].splitlines()[0])
        elif name not in with_jvp:
            table[name] = ("not differentiable in JAX", "no JVP rule in JAX")
        elif name in EXCLUDED:
            table[name] = ("excluded", EXCLUDED[name])
        else:
            table[name] = ("missing", "JAX has a JVP rule; funcgrad has no VJP rule")
    return table


def render(table: dict[str, tuple[str, str]]) -> str:
    by_category = collections.defaultdict(list)
    for name, (category, note) in table.items():
        by_category[category].append((name, note))
    lines = [
        "# Primitive coverage",
        "",
        f"Every primitive registered by JAX {jax.__version__} (its public modules), and what funcgrad "
        f"{funcgrad.__version__} does with it. Generated by `scripts/coverage_page.py`; "
        "`tests/test_coverage_page.py` regenerates it (to a temporary file) and fails if any primitive is *missing*.",
        "",
        "| category | count |",
        "|---|---|",
        *[f"| {c} | {len(by_category[c])} |" for c in CATEGORIES],
        "",
    ]
    for category in CATEGORIES:
        entries = by_category[category]
        lines += [f"## {category} ({len(entries)})", ""]
        if not entries:
            lines += ["(none)", ""]
            continue
        if category == "rule":
            lines += [", ".join(f"`{n}`" + (f" ({note})" if note else "") for n, note in entries), ""]
            continue
        lines += ["| primitive | why |", "|---|---|"]
        lines += [f"| `{n}` | {note.replace('|', '/')} |" for n, note in entries]
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "coverage.md"))
    args = parser.parse_args(argv)
    table = classify()
    pathlib.Path(args.out).write_text(render(table))
    missing = sorted(n for n, (c, _) in table.items() if c == "missing")
    print(f"wrote {args.out}: {len(table)} primitives, {len(missing)} missing {missing if missing else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
