"""Machine description and markdown tables for ``benchmarks/RESULTS.md``."""

from __future__ import annotations

import argparse
import datetime
import os
import pathlib
import platform
import subprocess

import jax


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def top_processes(n: int = 5) -> str:
    """The ``n`` busiest other processes (``ps``), to judge how loaded the machine was."""
    try:
        out = subprocess.run(
            ["ps", "-eo", "pcpu,comm", "--sort=-pcpu"], capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    rows = [" ".join(r.split()) for r in out.splitlines()[1 : n + 1]]
    return "; ".join(rows)


def machine() -> dict[str, str]:
    versions = {"jax": jax.__version__, "python": platform.python_version()}
    for mod in ("torch", "autograd", "numpy"):
        try:
            versions[mod] = __import__(mod).__version__
        except (ImportError, AttributeError):
            versions[mod] = "not installed" if mod != "autograd" else _dist_version("autograd")
    try:
        import torch

        versions["torch threads"] = str(torch.get_num_threads())
    except ImportError:
        pass
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu_model(),
        "cores": str(os.cpu_count()),
        "devices": ", ".join(str(d) for d in jax.devices()),
        "versions": ", ".join(f"{k} {v}" for k, v in versions.items()),
    }


def _dist_version(name: str) -> str:
    try:
        from importlib.metadata import version

        return version(name)
    except Exception:
        return "not installed"


def table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def ms(seconds: float) -> str:
    v = seconds * 1e3
    return f"{v:.3g}" if v < 100 else f"{v:.0f}"


def spread(s: dict) -> str:
    """``median [p25-p75]`` in milliseconds."""
    return f"{ms(s['median'])} [{ms(s['p25'])}–{ms(s['p75'])}]"


def ratio(a: float, b: float) -> str:
    return "–" if not b else f"{a / b:.2f}"


def mib(n: float) -> str:
    return f"{n / 2**20:.2f}"


RESULTS = pathlib.Path(__file__).with_name("RESULTS.md")


def write_section(name: str, heading: str, text: str) -> None:
    """Put ``text`` between RESULTS.md's ``<!-- BEGIN name -->`` / ``<!-- END name -->`` markers,
    replacing what was there, or append it under ``## heading`` the first time."""
    begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"
    s = RESULTS.read_text()
    block = f"{begin}\n{text.rstrip()}\n{end}"
    if begin in s:
        s = s[: s.index(begin)] + block + s[s.index(end) + len(end) :]
    else:
        s += f"\n## {heading}\n\n{block}\n"
    RESULTS.write_text(s)


def section_main(doc: str, name: str, heading: str, make_block, argv=None) -> None:
    """The command line of a benchmark that writes one section: print ``make_block()`` and, unless
    ``--no-write``, put it into RESULTS.md's section ``name`` (``write_section``)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--no-write", action="store_true", help="print only; leave benchmarks/RESULTS.md alone")
    args = parser.parse_args(argv)
    block = make_block()
    print(block)
    if not args.no_write:
        write_section(name, heading, block)
