"""Draw the README's picture: mynet's forward and backward graph, docs/img/mynet_graph.svg.

    python scripts/draw_readme_graph.py [--engine python|dot|auto] [--out docs/img/mynet_graph.svg]

The default engine is funcgrad's own layout, so the file comes out the same on any
machine, with or without Graphviz.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples" / "lecture"))
sys.path.insert(0, str(ROOT))

from mynet import init_params, loss  # noqa: E402

import funcgrad  # noqa: E402


def main(argv=None) -> pathlib.Path:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--engine", default="python", choices=("python", "dot", "auto"))
    parser.add_argument("--out", default=str(ROOT / "docs" / "img" / "mynet_graph.svg"))
    args = parser.parse_args(argv)
    import jax.numpy as jnp
    import numpy as np

    params = init_params(0)
    image = jnp.asarray(np.random.default_rng(1).normal(size=(3, 10, 20)), jnp.float32)
    drawing = funcgrad.draw(
        loss, backward=True, collapse=True, engine=args.engine, title="mynet: forward (blue) and backward (orange)"
    )(params, image, 3)
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    drawing.save(out)
    print(f"wrote {out} ({drawing!r})")
    return out


if __name__ == "__main__":
    main()
