"""Screenshots of funcgrad.explore's pages for docs/seeing_backprop.md, taken in headless Chromium.

    python scripts/explorer_screenshots.py [--out docs/img]

Writes, for the lecture's mynet (examples/lecture/mynet.py) and the benchmark transformer block
(benchmarks/workloads.py, a small batch):

* explorer_mynet.png: the page as it opens, the lecture's block diagram;
* explorer_mynet_backward.png: z1 selected, the backward pass stepped to the rule that completes dC/dz1;
* explorer_transformer.png: the transformer block, opened at its lines, fitted to the window;
* transformer_blocks.png: the same grouping as a static picture, ``funcgrad.draw(loss, level=2)``.

The browser is the system's Chromium (apt-get install chromium chromium-driver), driven by selenium as
tests/test_explorer_browser.py drives it.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples" / "lecture"))
sys.path.insert(0, str(ROOT))

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from mynet import init_params, loss  # noqa: E402

import funcgrad  # noqa: E402
from benchmarks.workloads import make_workloads, transformer_mse  # noqa: E402
from tests.test_explorer_browser import start_chromium  # noqa: E402


def main(argv=None) -> list[pathlib.Path]:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "img"))
    args = parser.parse_args(argv)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="fg-explorer-"))
    params = init_params(0)
    image = jnp.asarray(np.random.default_rng(1).normal(size=(3, 10, 20)), jnp.float32)
    mynet_page = funcgrad.explore(loss, title="mynet")(params, image, 3).save(tmp / "mynet.html")
    w = make_workloads()["D"]
    block_params = {k: jnp.asarray(v) for k, v in w.params.items()}
    x = jnp.asarray(w.batch[0][:4, :32])
    block_page = funcgrad.explore(transformer_mse, title="transformer block")(block_params, x).save(tmp / "block.html")
    written = []
    driver = start_chromium()
    try:
        driver.set_window_size(1400, 860)
        driver.get(mynet_page.as_uri())
        written.append(_shot(driver, out / "explorer_mynet.png"))
        driver.find_element("css selector", 'g.fg-node[data-kind="tag"][data-label="z1"]').click()
        driver.find_element("css selector", ".fg-backward").click()
        while not driver.find_elements("css selector", '.fg-selection table[data-of="ct"]'):
            driver.find_element("css selector", ".fg-next").click()
        driver.execute_script("document.querySelector('.fg-canvas').scrollTop = 1e4")  # z1 sits low in the diagram
        written.append(_shot(driver, out / "explorer_mynet_backward.png"))
        driver.get(block_page.as_uri())
        driver.find_element("css selector", ".fg-fit").click()
        written.append(_shot(driver, out / "explorer_transformer.png"))
        errors = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        if errors:
            raise RuntimeError(f"the pages logged errors in Chromium: {errors}")
    finally:
        driver.quit()
    drawing = funcgrad.draw(transformer_mse, level=2, engine="python", title="transformer block, level=2")
    written.append(drawing(block_params, x).save(out / "transformer_blocks.png"))
    for path in written:
        print(f"wrote {path}")
    return written


def _shot(driver, path: pathlib.Path) -> pathlib.Path:
    driver.save_screenshot(str(path))
    return path


if __name__ == "__main__":
    main()
