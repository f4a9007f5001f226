"""Progress of a long replay on stderr: events done / total, events per second, ETA."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Events done / total, events per second and ETA on stderr, at most every ``every_s``."""

    def __init__(self, label: str, total: int, done: int = 0, stream: TextIO | None = None,
                 every_s: float = 0.5) -> None:
        self.label = label
        self.total = total
        self.done = done
        self.stream = stream or sys.stderr
        self.every_s = every_s
        self._start_done = done
        self._started = time.monotonic()
        self._last = 0.0

    @property
    def rate(self) -> float:
        elapsed = time.monotonic() - self._started
        return (self.done - self._start_done) / elapsed if elapsed > 0 else 0.0

    def advance(self, n: int, force: bool = False) -> None:
        self.done += n
        now = time.monotonic()
        if force or now - self._last >= self.every_s:
            self._last = now
            self.stream.write(self.line() + ("\r" if self.stream.isatty() else "\n"))
            self.stream.flush()

    def line(self) -> str:
        rate = self.rate
        left = max(0, self.total - self.done)
        eta = time.strftime("%H:%M:%S", time.gmtime(left / rate)) if rate > 0 else "--:--:--"
        pct = 100.0 * self.done / self.total if self.total else 100.0
        return (f"{self.label}: {self.done:,}/{self.total:,} events ({pct:5.1f}%)"
                f"  {rate:,.0f} ev/s  ETA {eta}")

    def finish(self) -> None:
        self.advance(0, force=True)
        if self.stream.isatty():
            self.stream.write("\n")
