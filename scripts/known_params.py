"""Write funcgrad/core/known_params.json: the parameter names of every primitive funcgrad has a rule
for, as the rule table's rows produce them on the installed JAX (run it on the newest tested release).

On a JAX release newer than funcgrad was tested with, the reverse sweep checks each differentiated
equation against this list (``funcgrad.core.jax_compat.unknown_params``): a parameter a rule was
never written for may change the derivative, so it is an error, never a silently wrong gradient.

    python scripts/known_params.py            # rewrite the file
    python scripts/known_params.py --check    # exit 1 if the file differs from what the rows give
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import funcgrad  # noqa: E402
from funcgrad.core.jax_compat import KNOWN_PARAMS_FILE  # noqa: E402
from funcgrad.core.registry import records  # noqa: E402
from tests.rule_specs import all_specs  # noqa: E402


def collect() -> dict[str, list[str]]:
    seen: dict[str, set[str]] = {name: set() for name, r in records().items() if r.kind == "rule"}
    rng = np.random.default_rng(0)
    for spec in all_specs():
        for case in ("random", "scalar", "broadcast"):
            args = spec.args(rng, np.dtype(spec.dtypes[0]), case)
            if args is None:
                continue
            try:
                graph = funcgrad.trace(spec.fn)(*[jnp.asarray(a) for a in args])
            except Exception:  # noqa: BLE001  (a row this release cannot build)
                continue
            for eqn, _ in graph.walk():
                if eqn.primitive in seen:
                    seen[eqn.primitive].update(eqn.params)
    return {name: sorted(names) for name, names in sorted(seen.items())}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true")
    opts = parser.parse_args(argv)
    found = {"jax": jax.__version__, "params": collect()}
    text = json.dumps(found, indent=1, sort_keys=True) + "\n"
    if opts.check:
        current = KNOWN_PARAMS_FILE.read_text() if KNOWN_PARAMS_FILE.exists() else ""
        if current != text:
            print(f"{KNOWN_PARAMS_FILE} is out of date: run python scripts/known_params.py", file=sys.stderr)
            return 1
        return 0
    KNOWN_PARAMS_FILE.write_text(text)
    print(f"wrote {KNOWN_PARAMS_FILE} ({len(found['params'])} primitives, jax {jax.__version__})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
