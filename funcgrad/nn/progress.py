"""A dependency-free text progress bar for training loops (redrawn in place on a terminal)."""

from __future__ import annotations

import sys
import time


class ProgressBar:
    """``[#######-------]  7/20 epochs  loss 0.1234  acc 0.951  1.2s``.

    On a terminal the line is redrawn in place; otherwise (logs, pipes, CI) a full line
    is printed about ``lines`` times over the run, so logs stay short.

    Args:
      total: the number of units (e.g. epochs).
      desc: a label printed first.
      unit: the unit's name.
      width: the number of bar characters.
      stream: where to write (default ``sys.stderr``, so stdout stays parseable).
      lines: how many lines to print when ``stream`` is not a terminal.
    """

    def __init__(self, total: int, desc: str = "", unit: str = "epochs", width: int = 24, stream=None, lines: int = 5):
        self.total, self.desc, self.unit, self.width = max(int(total), 1), desc, unit, width
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.every = max(self.total // max(lines, 1), 1)
        self.count, self.start = 0, time.perf_counter()

    def format(self, **metrics) -> str:
        """The bar's text for the current count and ``metrics`` (name -> number)."""
        filled = round(self.width * self.count / self.total)
        bar = "#" * filled + "-" * (self.width - filled)
        shown = "  ".join(f"{name} {float(value):.4g}" for name, value in metrics.items())
        elapsed = time.perf_counter() - self.start
        head = f"{self.desc}  " if self.desc else ""
        return f"{head}[{bar}] {self.count:>{len(str(self.total))}}/{self.total} {self.unit}  {shown}  {elapsed:.1f}s"

    def update(self, n: int = 1, **metrics) -> None:
        """Advance by ``n`` units and show ``metrics``."""
        self.count = min(self.count + n, self.total)
        if self.tty:
            self.stream.write("\r" + self.format(**metrics))
            if self.count == self.total:
                self.stream.write("\n")
        elif self.count % self.every == 0 or self.count == self.total:
            self.stream.write(self.format(**metrics) + "\n")
        self.stream.flush()
