"""examples/quickstart.ipynb runs headlessly on CPU (nbclient) and prints the graph, the check and the accuracy,
and shows funcgrad.explore's page inline."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]


def _text(cell) -> str:
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            parts.append(out["text"])
        elif "data" in out and "text/plain" in out["data"]:
            parts.append(out["data"]["text/plain"])
    return "".join(parts)


def test_quickstart_notebook_runs(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("QUICKSTART_EPOCHS", "3")  # a short run: this checks the notebook, not the model
    nb = nbformat.read(ROOT / "examples" / "quickstart.ipynb", as_version=4)
    client = NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT / "examples")}}
    )
    client.execute()
    text = "\n".join(_text(c) for c in nb.cells if c.cell_type == "code")
    assert "backend: CPU" in text
    assert "{ lambda" in text and "dot_general" in text  # the printed graph
    assert "gradient check: max |funcgrad - jax.grad| =" in text
    before, after = (float(v) for v in text.split("training loss ")[1].split()[0:3:2])
    assert after < before
    accuracy = float(text.split("test accuracy: ")[1].split()[0])
    assert 0.5 < accuracy <= 1.0  # three epochs already beat chance (0.1) by far
    # funcgrad.explore's page, inline (an iframe holding the whole page) with the lecture's blocks
    assert "<funcgrad Exploration of loss:" in text
    (page,) = [
        o["data"]["text/html"] for c in nb.cells for o in c.get("outputs", []) if "text/html" in o.get("data", {})
    ]
    assert page.startswith("<iframe") and "fg-explorer" in page and "&quot;m0&quot;" in page
