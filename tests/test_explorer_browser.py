"""funcgrad.explore's saved pages in a real browser: the system's headless Chromium, driven by selenium.

Needs Debian's ``chromium`` and ``chromium-driver`` (``apt-get install chromium chromium-driver``;
.ci/run installs them) and the ``selenium`` package (the test extra). Without them these tests FAIL,
naming what to install: a page nobody opened in a browser is not tested. Chromium runs headless,
without a sandbox, GPU, network services or first-run setup, in a fresh profile: on a closed
network those services would stall it.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import tempfile

import jax
import numpy as np
import pytest

import funcgrad
from funcgrad.inspect.explorer import diagnostics as diag
from tests.test_explorer import IMAGE, MYNET, PARAMS, _rnn, _transformer

CHROMIUM = "/usr/bin/chromium"
DRIVER = "/usr/bin/chromedriver"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1400,900",
]


class Browser:
    """A headless Chromium started on first use (so that a missing browser fails the test, by name)."""

    def __init__(self):
        self.driver = None
        self.profile = None

    def open(self, path: pathlib.Path):
        if self.driver is None:
            self.driver = start_chromium()
        self.driver.get(path.resolve().as_uri())
        return self.driver

    def close(self):
        if self.driver is not None:
            self.driver.quit()


def start_chromium():
    """The system's Chromium under selenium (no driver or browser download), or a failure saying what to install."""
    binary = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
    driver_path = DRIVER if os.path.exists(DRIVER) else shutil.which("chromedriver")
    if binary is None or driver_path is None:
        pytest.fail(
            "headless Chromium is not installed: the explorer's pages are tested in a real browser.\n"
            "  fix: apt-get install -y chromium chromium-driver (as root; .ci/run does this)"
        )
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail("selenium is not installed.\n  fix: pip install -e '.[test]' (it is in the test extra)")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in [*FLAGS, f"--user-data-dir={tempfile.mkdtemp(prefix='fg-chromium-')}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver_path), options=options)


@pytest.fixture(scope="module")
def browser():
    b = Browser()
    yield b
    b.close()


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    out = tmp_path_factory.mktemp("explorer")
    mynet = funcgrad.explore(MYNET.loss)(PARAMS, IMAGE, 3)
    fun, params, x = _transformer()
    block = funcgrad.explore(fun)(params, x)
    rnn, w, xs = _rnn(0.05)
    loop = funcgrad.explore(rnn)(w, xs)

    def data_loop(w, x):  # a tag in a while loop: no numbers, and the page says why
        body = lambda c: (c[0] + 1, funcgrad.tag(c[1] * 0.5, "wh"))  # noqa: E731
        return jax.numpy.sum(jax.lax.while_loop(lambda c: c[0] < 3, body, (0, x))[1] @ w)

    unreached = funcgrad.explore(data_loop)(w, xs)
    return {
        "while": (unreached, unreached.save(out / "while.html")),
        "rnn": (loop, loop.save(out / "rnn.html"), rnn, w, xs),
        "mynet": (mynet, mynet.save(out / "mynet.html")),
        "transformer": (block, block.save(out / "transformer.html"), fun, params, x),
    }


# ------------------------------------------------------------------------------ helpers


def errors(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def css(driver, selector):
    return driver.find_elements("css selector", selector)


def node_labels(driver) -> list[str]:
    return [n.get_attribute("data-label") for n in css(driver, "svg.fg-graph g.fg-node")]


def crumbs(driver) -> list[str]:
    return [a.text for a in css(driver, ".fg-crumbs a")]


def dispatch_click(driver, element):
    """A click event on ``element`` (an SVG edge's hit area: its bounding box's centre may miss the curve)."""
    driver.execute_script("arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true}))", element)


def step_until_cotangent(driver, limit: int) -> dict:
    """Start the backward pass, step until the selected value's cotangent is complete, return its table."""
    css(driver, ".fg-backward")[0].click()
    for _ in range(limit):
        table = css(driver, '.fg-selection table[data-of="ct"]')
        if table:
            return {row.get_attribute("data-stat"): row.find_element("css selector", "td").text for row in
                    table[0].find_elements("css selector", "tr")}  # fmt: skip
        assert css(driver, ".fg-selection .ct-pending"), "the selection should say its cotangent is pending"
        css(driver, ".fg-next")[0].click()
    raise AssertionError("the cotangent never appeared while stepping the backward pass")


def assert_table_matches(table: dict, array):
    a = np.asarray(array, np.float64)
    want = {
        "mean": a.mean(),
        "std": a.std(),
        "min": a.min(),
        "max": a.max(),
        "l2": np.linalg.norm(a),
        "zeros": np.mean(a == 0),
    }
    scale = float(np.abs(a).max())
    for stat, value in want.items():
        # the page prints six significant digits
        np.testing.assert_allclose(float(table[stat]), value, rtol=2e-5, atol=1e-6 * scale, err_msg=stat)
    assert table["nan"] == "0" and table["inf"] == "0"


# ------------------------------------------------------------------------------ the tests


def test_mynet_page_in_chromium(browser, pages):
    ex, path = pages["mynet"]
    driver = browser.open(path)
    assert errors(driver) == []
    # collapsed: the lecture's block diagram, the model's blocks inside the "mynet" cluster
    labels = node_labels(driver)
    assert labels.count("linear") == 3 and labels.count("relu") == 2 and {"z1", "z2", "log_softmax"} <= set(labels)
    assert "mynet ▸" in [t.text for t in css(driver, "svg.fg-graph .fg-cluster text")]
    assert crumbs(driver) == ["loss"]
    # the diagnostics panel says what it flags (the thresholds of diagnostics.py)
    assert f"dead units over {diag.DEAD_SHARE * 100:g}%" in css(driver, ".fg-limits")[0].text
    # clicking a block opens it
    css(driver, 'g.fg-node[data-kind="block"][data-label="linear"]')[0].click()
    assert crumbs(driver) == ["loss", "mynet", "linear"]
    assert {"dot_general", "add"} <= set(node_labels(driver))
    css(driver, ".fg-crumbs a")[0].click()
    assert crumbs(driver) == ["loss"]
    # the backward pass, step by step, up to z1's cotangent: funcgrad.sensitivities' numbers
    css(driver, 'g.fg-node[data-kind="tag"][data-label="z1"]')[0].click()
    assert css(driver, '.fg-selection table[data-of="value"]')
    table = step_until_cotangent(driver, len(ex.steps) + 1)
    assert_table_matches(table, funcgrad.sensitivities(MYNET.loss)(PARAMS, IMAGE, 3)["z1"])
    # the step on screen is the rule that completed it, highlighted in the graph, with its maths
    assert css(driver, ".fg-step .fg-math") and css(driver, "svg.fg-graph g.fg-node.fg-current")
    assert errors(driver) == []


def test_transformer_block_page_in_chromium(browser, pages):
    ex, path, fun, params, x = pages["transformer"]
    driver = browser.open(path)
    assert errors(driver) == []
    labels = node_labels(driver)
    assert {"layer_norm", "q, k, v", "scores", "mask", "probs", "att"} <= set(labels)
    assert "transformer_block ▸" in [t.text for t in css(driver, "svg.fg-graph .fg-cluster text")]
    css(driver, 'g.fg-node[data-kind="block"][data-label="probs"]')[0].click()
    assert crumbs(driver)[-1] == "probs" and {"exp", "reduce_max", "div"} <= set(node_labels(driver))
    css(driver, ".fg-crumbs a")[0].click()
    # choose the attention's output (what the "att" line makes) by clicking the edge that carries it
    (att,) = ex.find("att")
    out = list(att.eqns())[-1].outputs[0]
    vid = ex.index.value_ids[id(out)]
    (edge,) = css(driver, f'g.fg-edge[data-values~="{vid}"] path.fg-hit')
    dispatch_click(driver, edge)
    assert css(driver, f'.fg-selection .fg-value[data-value="{vid}"]')
    table = step_until_cotangent(driver, len(ex.steps) + 1)
    sens = funcgrad.sensitivities(fun, every=True)(params, x)
    assert_table_matches(table, sens[ex.names[id(out)]])
    assert errors(driver) == []


def test_pages_work_offline_with_no_requests(browser, pages):
    """The page asks for nothing: every resource it uses is inside the file."""
    _, path = pages["mynet"]
    driver = browser.open(path)
    urls = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert urls == []
    assert driver.execute_script("return document.querySelector('.fg-explorer').explorer !== undefined")


def test_a_loop_bodys_tag_shows_its_cotangent_per_iteration_in_chromium(browser, pages):
    ex, path, rnn, w, xs = pages["rnn"]
    driver = browser.open(path)
    assert errors(driver) == []
    # the scan is one box; clicking it selects it, clicking again opens its body, where the tag h is
    css(driver, 'g.fg-node[data-kind="body"][data-label="scan"]')[0].click()
    css(driver, 'g.fg-node[data-kind="body"][data-label="scan"]')[0].click()
    assert crumbs(driver)[-1] == "scan" and {"tanh", "h"} <= set(node_labels(driver))
    css(driver, 'g.fg-node[data-kind="tag"][data-label="h"]')[0].click()
    table = step_until_cotangent(driver, len(ex.steps) + 1)
    stacked = funcgrad.sensitivities(rnn)(w, xs)["h"]  # (30, 4): dC/dh_t for every t
    assert_table_matches(table, stacked)
    (bars,) = css(driver, ".fg-selection svg.fg-iterations")
    # one bar per iteration whose gradient is not 0 (the earliest ones can underflow in float32)
    nonzero = sum(1 for n in ex.inner_cotangent("h").per_iteration if n > 0)
    assert nonzero > len(xs) // 2 and len(bars.find_elements("css selector", "rect")) == nonzero
    # the vanishing gradient over the iterations is listed with the diagnostics
    assert any("over the iterations of a loop" in d.text for d in css(driver, ".fg-diag"))
    assert errors(driver) == []


def test_a_tag_no_perturbation_reaches_says_why_in_chromium(browser, pages):
    ex, path = pages["while"]
    driver = browser.open(path)
    css(driver, 'g.fg-node[data-kind="body"][data-label="while"]')[0].click()
    css(driver, 'g.fg-node[data-kind="body"][data-label="while"]')[0].click()
    css(driver, 'g.fg-node[data-kind="tag"][data-label="wh"]')[0].click()
    (why,) = css(driver, ".fg-selection .fg-why")
    assert why.text == next(iter(ex.unreached.values())) and "while_loop" in why.text
    assert errors(driver) == []
