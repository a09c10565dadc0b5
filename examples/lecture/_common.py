"""Shared by the lecture scripts: the --out folder and saving pictures."""

from __future__ import annotations

import argparse
import pathlib


def out_dir(argv, doc: str) -> pathlib.Path:
    """Parse ``--out`` (default ./out/lecture) and create the folder."""
    parser = argparse.ArgumentParser(description=doc.strip().splitlines()[0])
    parser.add_argument("--out", default="out/lecture", help="where to write the pictures")
    args = parser.parse_args(argv)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    return out


def save(drawing, out: pathlib.Path, name: str) -> pathlib.Path:
    """Write ``drawing`` as ``name`` (.svg or .png) and say where."""
    path = drawing.save(out / name)
    print(f"wrote {path}")
    return path
