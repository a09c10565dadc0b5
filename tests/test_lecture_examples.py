"""Run every script in examples/lecture/ (each asserts its own numbers) and check it wrote its pictures."""

from __future__ import annotations

import pathlib
import runpy
import sys

import pytest

LECTURE = pathlib.Path(__file__).resolve().parents[1] / "examples" / "lecture"
SCRIPTS = sorted(p for p in LECTURE.glob("*.py") if not p.name.startswith("_"))
PICTURES = {
    "fig1_parametrised_model": ["fig1_parametrised_model.svg"],
    "fig2_average_loss": ["fig2_average_loss.svg"],
    "fig3_sgd_vs_gd": ["fig3_sgd_vs_gd.png"],
    "backprop_nonlinearity": ["backprop_nonlinearity.svg"],
    "weighted_sum_fanout": ["weighted_sum_fanout.svg", "weighted_sum_fanout.html"],
    "functional_module_jacobian": ["functional_module.svg"],
    "multistage_jacobians": ["multistage.svg"],
    "mynet": ["mynet_forward.svg", "mynet_backward.svg", "mynet_explorer.html"],
    "tensor_axes": ["tensor_axes.svg"],
    "transpose_reshape": ["transpose_reshape.svg"],
}


def test_every_script_is_listed():
    assert sorted(p.stem for p in SCRIPTS) == sorted(PICTURES)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_lecture_script(script, tmp_path, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(LECTURE))
    module = runpy.run_path(str(script), run_name="lecture_example")
    module["main"](["--out", str(tmp_path)])
    for name in PICTURES[script.stem]:
        picture = tmp_path / name
        assert picture.exists() and picture.stat().st_size > 1000, name
        head = picture.read_bytes()[:200]
        if name.endswith(".html"):  # funcgrad.explore's page
            assert head.startswith(b"<!DOCTYPE html>") or head.startswith(b"<!doctype html>"), head[:40]
        else:
            assert (b"<svg" in head or b"<?xml" in head) if name.endswith(".svg") else head.startswith(b"\x89PNG")
    assert "wrote" in capsys.readouterr().out
    sys.modules.pop("_common", None)


def test_readme_graph_script(tmp_path):
    script = LECTURE.parents[1] / "scripts" / "draw_readme_graph.py"
    module = runpy.run_path(str(script), run_name="readme_graph")
    out = module["main"](["--out", str(tmp_path / "mynet_graph.svg")])
    svg = out.read_text()
    assert svg.startswith("<svg") and 'class="node backward"' in svg and "∂C/∂params[0]['W']" in svg
    assert (LECTURE.parents[1] / "docs" / "img" / "mynet_graph.svg").exists()
