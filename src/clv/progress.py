"""Progress of long work (training rounds, customers scored, forecasts published).

On a terminal, one line rewritten in place; in a log (stderr not a terminal), a plain
line at most every LOG_SECONDS, so a scheduler's log shows a run is alive without
drowning in lines. dbt runs the Python models in the same process as `clv run`, so
their reports reach the same stderr.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

TERMINAL_SECONDS = 1.0
LOG_SECONDS = 15.0


class Progress:
    """Reports `what: done of total unit` as work advances; call done() at the end."""

    def __init__(
        self,
        what: str,
        total: int | None,
        unit: str,
        stream: TextIO | None = None,
        every: float | None = None,
    ) -> None:
        self.what = what
        self.total = total
        self.unit = unit
        self.stream = stream or sys.stderr
        self.on_terminal = bool(getattr(self.stream, "isatty", lambda: False)())
        self.every = (
            every if every is not None else (TERMINAL_SECONDS if self.on_terminal else LOG_SECONDS)
        )
        self.started = time.monotonic()
        self.shown_at = self.started
        self.done_count = 0

    def line(self) -> str:
        of = f" of {self.total:,}" if self.total is not None else ""
        seconds = time.monotonic() - self.started
        return f"  {self.what}: {self.done_count:,}{of} {self.unit} ({seconds:.0f} s)"

    def advance(self, done: int) -> None:
        """done is the count so far (not an increment)."""
        self.done_count = done
        now = time.monotonic()
        if now - self.shown_at >= self.every:
            self.shown_at = now
            self._show(final=False)

    def done(self) -> None:
        """The last line on a terminal, so the next output starts on a fresh one."""
        if self.on_terminal:
            self._show(final=True)

    def _show(self, final: bool) -> None:
        if self.on_terminal:
            end = "\n" if final else ""
            self.stream.write(f"\r{self.line()}\033[K{end}")
        else:
            self.stream.write(self.line() + "\n")
        self.stream.flush()
