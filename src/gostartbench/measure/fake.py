"""A fake executor: known wall times, nothing started — for tests of scheduling and statistics
(never the only test of a feature)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

from gostartbench.measure.spec import RunItem, RunResult, RunSpec


class FakeExecutor:
    """A deterministic executor for tests of scheduling and statistics: wall times come from a
    function of (argv, call number); nothing is started."""

    name = "fake"

    def __init__(self, wall_ns: Callable[[RunSpec, int], int],
                 fail: Callable[[RunSpec, int], str] | None = None) -> None:
        self.wall_ns = wall_ns
        self.fail = fail
        self.calls: list[RunSpec] = []
        self.evicted: list[Path] = []
        self.read_back: list[Path] = []
        self.t0 = time.monotonic()

    def run_many(self, items: Iterator[RunItem]) -> Iterator[RunResult]:
        """Every item's fake result, in order."""
        for spec, ev, back in items:
            yield self.run(spec, ev, back)

    def run(self, spec: RunSpec, evict: Path | None = None,
            read_back: Path | None = None) -> RunResult:
        """One fake run: recorded, never started."""
        if evict is not None:
            self.evicted.append(evict)
        if read_back is not None:
            self.read_back.append(read_back)
        n = len(self.calls)
        self.calls.append(spec)
        reason = self.fail(spec, n) if self.fail else ""
        return RunResult("exited", 0 if not reason else 1, 0, self.wall_ns(spec, n), 0, 0,
                         1 << 20, 100, 0, ok=not reason, reason=reason)
