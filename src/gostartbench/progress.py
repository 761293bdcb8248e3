"""A one-line progress display on a terminal; sparse plain lines in CI logs and pipes."""

from __future__ import annotations

import os
import sys
import time


class Progress:
    """A one-line progress display on a terminal; sparse plain lines in CI logs and pipes."""

    def __init__(self, total: int, label: str, *, quiet: bool = False) -> None:
        self.total = max(total, 1)
        self.label = label
        self.start = time.monotonic()
        self.tty = sys.stderr.isatty() and os.environ.get("CI", "") not in ("true", "1")
        self.quiet = quiet
        self._last_pct = -1

    def update(self, done: int, current: str = "") -> None:
        """Show `done` of the total, with an ETA."""
        if self.quiet:
            return
        elapsed = time.monotonic() - self.start
        left = elapsed / done * (self.total - done) if done else float("nan")
        eta = f"{left:5.0f}s left" if left == left else "       "
        if self.tty:
            width = 24
            fill = int(width * done / self.total)
            bar = "#" * fill + "-" * (width - fill)
            sys.stderr.write(f"\r{self.label} [{bar}] {done}/{self.total} {eta} {current[:60]:60}")
            sys.stderr.flush()
        else:
            pct = int(100 * done / self.total) // 25 * 25  # 0, 25, 50, 75, 100: quiet in CI
            if pct != self._last_pct:
                self._last_pct = pct
                sys.stderr.write(f"{self.label}: {done}/{self.total} ({pct}%)\n")

    def note(self, line: str) -> None:
        """A line of its own above the progress (a slow step, named with its time)."""
        if self.quiet:
            return
        sys.stderr.write(("\r\033[K" if self.tty else "") + f"{self.label}: {line}\n")
        sys.stderr.flush()

    def close(self) -> None:
        """End the progress line."""
        if self.tty and not self.quiet:
            sys.stderr.write("\n")
