"""A fake executor: known wall times, nothing started — for tests of scheduling and statistics
(never the only test of a feature)."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
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


@dataclass
class BurstyMachine:
    """A simulated machine with known truth, for the fake executor: each program's wall time
    is its P50 × its placement effect (lognormal, redrawn by `new_placement`, as when its
    pages are read into the page cache afresh) × lognormal noise (σ), × `burst_factor` while a
    burst is on. Bursts come and go
    in simulated time (exponential gaps and lengths, in seconds), so runs close in time share
    them, as on a shared host. `wall_ns` is the executor's function; `clock` the session's."""

    p50_ns: Mapping[str, int]  # by the program (argv[0])
    sigma: float = 0.08
    sigma_of: Mapping[str, float] = field(default_factory=dict)  # per program, else sigma
    burst_gap_s: float = 3.0
    burst_s: float = 1.0
    burst_factor: float = 1.25
    overhead_ns: int = 300_000  # the harness's time between runs
    placement_sigma: float = 0.02  # each program's page-cache placement effect (lognormal σ)
    seed: int = 0
    now_ns: int = 1_700_000_000 * 10**9
    _in_burst: bool = False
    _switch_ns: int = 0
    _rng: random.Random = field(default_factory=random.Random)
    _placed: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._switch_ns = self.now_ns + self._gap()
        self.new_placement()

    def new_placement(self) -> None:
        """The programs' pages land elsewhere: each gets a new placement effect."""
        self._placed = {p: math.exp(self._rng.gauss(0, self.placement_sigma))
                        for p in self.p50_ns}

    def _gap(self) -> int:
        mean = self.burst_s if self._in_burst else self.burst_gap_s
        return int(self._rng.expovariate(1.0 / mean) * 1e9)

    def wall_ns(self, spec: RunSpec, n: int) -> int:
        """One run's wall time; the simulated clock moves on by it."""
        while self.now_ns >= self._switch_ns:
            self._in_burst = not self._in_burst
            self._switch_ns += self._gap()
        factor = self.burst_factor if self._in_burst else 1.0
        p = spec.argv[0]
        wall = int(self.p50_ns[p] * self._placed.get(p, 1.0)
                   * math.exp(self._rng.gauss(0, self.sigma_of.get(p, self.sigma))) * factor)
        self.now_ns += wall + self.overhead_ns
        return wall

    def clock(self) -> int:
        """The simulated time (ns)."""
        return self.now_ns
