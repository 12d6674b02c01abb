"""A one-line progress bar on standard error, only on a terminal and for longer runs."""

from __future__ import annotations

import sys
import time
from typing import Optional, TextIO

MIN_ITEMS = 4  # runs of fewer items show no bar


class Progress:
    def __init__(self, total: int, label: str, *, enabled: bool = True, stream: Optional[TextIO] = None) -> None:
        self.total = total
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = enabled and total >= MIN_ITEMS
        self.count = 0
        self.started = time.monotonic()
        self._width = 0

    def step(self, what: str = "") -> None:
        self.count += 1
        if not self.enabled:
            return
        width = 24
        filled = int(width * (self.count - 1) / max(self.total, 1))
        elapsed = time.monotonic() - self.started
        line = f"{self.label} [{'#' * filled}{'.' * (width - filled)}] {self.count}/{self.total} {elapsed:4.0f}s {what}"
        line = line[:100]
        pad = max(0, self._width - len(line))
        self.stream.write("\r" + line + " " * pad)
        self.stream.flush()
        self._width = len(line)

    def done(self) -> None:
        if self.enabled and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width = 0
