"""A progress bar for training loops: tqdm's (``tqdm.auto``: a widget in Jupyter and Colab, a line
redrawn in place on a terminal), with the epoch's metrics beside it.

tqdm is the project's one optional dependency for this (``pip install funcgrad[examples]``); it is
imported only when a bar is asked for, and its absence is then a clear error.
"""

from __future__ import annotations

import sys


def _tqdm(stream):
    try:
        if stream is None or stream is sys.stderr:
            from tqdm.auto import tqdm  # a notebook widget where one can be shown
        else:
            from tqdm import tqdm  # an explicit stream: plain text into it
    except ImportError as err:
        raise ImportError(
            "funcgrad.nn's progress bar uses tqdm, which is not installed.\n"
            "  fix: pip install tqdm (or funcgrad[examples]), or call fit(..., progress=False)"
        ) from err
    return tqdm


class ProgressBar:
    """``demo: 100%|██████████| 20/20 [00:01<00:00, 15.2epochs/s, loss=0.1234, acc=0.951]``.

    On a terminal or in a notebook the bar is redrawn in place; into another stream (logs, pipes,
    CI) it writes a line about ``lines`` times over the run, so logs stay short.

    Args:
      total: the number of units (e.g. epochs).
      desc: a label printed first.
      unit: the unit's name.
      stream: where to write (default ``sys.stderr``, so stdout stays parseable).
      lines: how many lines to write when ``stream`` is not a terminal.
    """

    def __init__(self, total: int, desc: str = "", unit: str = "epochs", stream=None, lines: int = 5):
        self.total = max(int(total), 1)
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.every = max(self.total // max(lines, 1), 1)
        self.count = 0
        tqdm = _tqdm(stream)
        if self.tty or stream is None:
            # tqdm draws: in place on a terminal, as a widget in a notebook (tqdm.auto)
            self._bar = tqdm(total=self.total, desc=desc or None, unit=unit, file=stream, dynamic_ncols=True)
            self._log = None
        else:
            # into a log: tqdm formats (str(bar)), and whole lines are written every `every` units
            self._bar = tqdm(total=self.total, desc=desc or None, unit=unit, file=_Discard(), ascii=True, ncols=80)
            self._log = self.stream

    def update(self, n: int = 1, **metrics) -> None:
        """Advance by ``n`` units and show ``metrics`` (name -> number)."""
        self.count = min(self.count + n, self.total)
        self._bar.set_postfix({name: f"{float(value):.4g}" for name, value in metrics.items()}, refresh=False)
        self._bar.update(n)
        if self._log is not None and (self.count % self.every == 0 or self.count == self.total):
            self._log.write(str(self._bar) + "\n")
            self._log.flush()
        if self.count == self.total:
            self._bar.close()


class _Discard:
    """A stream that drops what tqdm would draw (the bar's lines are written whole instead)."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass
