"""Precision you ask for, in the least time a fair comparison allows: when to stop.

After the `runs` rounds every cell gets, rounds go on in batches while any cell's ratio ci95
(gostartbench.stats.intervals, the report's own interval) is still wider than
`measure.precision`; the rule stops on the *width* of an interval, never on its position or on
significance, so a cell's verdict is not chosen by when it stopped.

- Balanced by design: every cell that has not failed runs once per round in every batch, in a
  serially balanced order (run.schedule.balanced_order, continued across batches), until the
  whole run stops. A cell and its partner therefore always have the same rounds, and each
  follows itself and every other cell equally often: on hosts where a start after a start of
  the same binary is faster (carry-over, 1.5–6% seen), giving one side more runs would move
  its P50 by that much, so runs are never allocated by value.
- A cell's precision is the half-width of its ratio ci95 relative to the ratio (0.01: ±1%); a
  baseline cell (and a cell without one) is held to its own P50's. The run stops when every cell
  has reached it (each cell's stop reason: `precision`), at `max_runs` (flagged in the
  summary's warnings) or when `measure.budget_s` is spent (flagged too).
- Batches grow with the distance to the target (the runs the median unfinished cell still
  needs, by the 1/√n law, at most doubling its runs per batch) so the intervals are
  recomputed only a few times; a batch is whole stretches of the balanced order where that
  costs at most one more stretch.
- The stopping check uses STOP_MARGIN × the target, so the report's own resampling (more
  replicates, another draw) lands within the target too.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gostartbench.results.schema import (
    STOP_BUDGET,
    STOP_FAILED,
    STOP_INTERRUPTED,
    STOP_MAX_RUNS,
    STOP_PRECISION,
    STOP_RUNS,
)
from gostartbench.run.schedule import Session, Task, balanced_order
from gostartbench.stats import intervals

# The check's interval and the report's are two bootstrap draws over the same samples: a
# percentile half-width from B replicates moves by about 1.24/√B of itself (measured: sd 5% at
# B = 600 on a precision run's cell), so check (B = 1000) and report (B = 2000) differ by ~5%
# (sd), and a cell is stopped on the luckiest of several checks. Stopping at 0.9 × the target
# (two of those sd) keeps the report's interval within it; at 0.95, the 4 cells that stopped at
# ±2% in benchmarks/precision.py read 3–14% wider in the report (one over the target).
STOP_MARGIN = 0.9
CHECK_B = 1000  # bootstrap replicates per check (the report uses measure.bootstrap, 2000)
MIN_BATCH_ROUNDS = 5
MIN_EPOCHS = 20  # page-cache placements over a run's first `runs` rounds (at the least)



@dataclass(frozen=True)
class Target:
    """What the run asked for: precision (None: fixed runs), the minimum and cap of runs per
    cell, and a time budget for timing (None: none)."""

    precision: float | None
    min_runs: int
    max_runs: int
    budget_s: float | None = None
    # A run that is judged (a gate, --fail-on) must last long enough for the significance rule
    # to call a change at all (intervals.FULL_SPAN_S): until its timing has lasted this long,
    # max_runs and the budget give way, so a verdict is never cut short by its own caps.
    verdict_span_s: float = 0.0

    @property
    def adaptive(self) -> bool:
        """True when rounds go on past the minimum."""
        return self.precision is not None or self.budget_s is not None or \
            self.verdict_span_s > 0


@dataclass
class Tracker:
    """Each cell's timed runs (wall, when done) and the rule that picks the next batch."""

    cells: Sequence[str]
    baseline_of: Mapping[str, str | None]
    target: Target
    seed: int = 0
    walls: dict[str, list[int]] = field(default_factory=dict)
    epochs: dict[str, list[int]] = field(default_factory=dict)
    done_ns: dict[str, list[float]] = field(default_factory=dict)
    stopped: dict[str, str] = field(default_factory=dict)
    widths: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._cost_factor = 1.2  # until a batch has shown the real one
        self.extended = False  # max_runs or the budget gave way to the verdict's span
        self._foreseen_s = self._spent_s = 0.0
        self.start = ""  # the cell every stretch of the balanced order starts at
        self.rng = np.random.default_rng(self.seed)
        self.shuffle = random.Random(self.seed + 2)
        for c in self.cells:
            self.walls.setdefault(c, [])
            self.epochs.setdefault(c, [])
            self.done_ns.setdefault(c, [])

    def add(self, cell: str, wall_ns: int, epoch: int, done_ns: float) -> None:
        """One ok timed run, its page-cache placement epoch and when it was done."""
        self.walls.setdefault(cell, []).append(int(wall_ns))
        self.epochs.setdefault(cell, []).append(int(epoch))
        self.done_ns.setdefault(cell, []).append(float(done_ns))

    def n(self, cell: str) -> int:
        """Timed ok runs of a cell so far."""
        return len(self.walls.get(cell, ()))

    def base(self, cell: str, failures: Mapping[str, str]) -> str | None:
        """The cell's baseline, when it is another cell that has not failed."""
        b = self.baseline_of.get(cell)
        return b if b and b != cell and b not in failures and self.n(b) >= 2 else None

    def measure_widths(self, cells: Sequence[str], failures: Mapping[str, str]
                       ) -> dict[str, float]:
        """The half-width each cell has reached (ratio ci95, or its own P50's), with the
        report's blocks (intervals.run_blocks over every cell's samples)."""
        names = [c for c in self.cells if self.walls.get(c)]
        def cat(d: Mapping[str, Sequence[float]]) -> np.ndarray:
            return np.concatenate([np.asarray(d[c], dtype=float) for c in names]) \
                if names else np.array([])
        rounds = np.concatenate([np.arange(len(self.walls[c])) for c in names]) \
            if names else np.array([], dtype=np.int64)
        blocks = intervals.run_blocks(cat(self.epochs), cat(self.done_ns), rounds)
        at, by = 0, {}
        for c in names:
            by[c] = blocks[at:at + len(self.walls[c])]
            at += len(self.walls[c])
        out = {}
        for c in cells:
            if self.n(c) < 2:
                out[c] = math.inf
                continue
            x = np.asarray(self.walls[c], dtype=float)
            b = self.base(c, failures)
            if b is None:
                iv = intervals.median_interval(x, by[c], CHECK_B, self.rng)
            else:
                y = np.asarray(self.walls[b], dtype=float)
                iv = intervals.ratio_interval(x, by[c], y, by[b], CHECK_B, self.rng)
            out[c] = iv.half_width if math.isfinite(iv.half_width) else math.inf
        self.widths.update(out)
        return out

    def scored(self, failures: Mapping[str, str]) -> list[str]:
        """Cells held to the target: every cell that has not failed (a baseline cell, whose
        ratio to itself is exactly 1, is held to its own P50's interval, as a cell without a
        baseline is: a later `compare` of two runs reads those)."""
        return [c for c in self.cells if c not in failures]

    def next_batch(self, failures: Mapping[str, str], spent_s: float) -> list[str]:
        """The next batch's runs, cell by cell in run order (empty: the run has stopped;
        `stopped` then says why for each cell)."""
        t = self.target
        own = self.scored(failures)
        for c in self.cells:
            if c in failures:
                self.stopped[c] = STOP_FAILED
        widths = self.measure_widths(own, failures)
        goal = (t.precision or 0.0) * STOP_MARGIN
        # An interval narrow after a few seconds may be a calm moment's: no cell stops on
        # precision before the run has seen the machine for FULL_SPAN_S (MIN_BLOCKS blocks of
        # BLOCK_S, the coverage study's length).
        span = self.span_s()
        seen = span >= intervals.FULL_SPAN_S
        # a judged run short of its verdict's span goes on, past max_runs and the budget
        short = span < t.verdict_span_s
        if short:
            self.extended = True
        reached = {c: t.precision is not None and widths[c] <= goal and seen for c in own}
        unfinished = [c for c in own if not reached[c]]
        why = ""
        if not short:
            if not unfinished:
                why = STOP_PRECISION
            elif max((self.n(c) for c in own), default=0) >= t.max_runs:
                why = STOP_MAX_RUNS
            elif t.precision is None and t.budget_s is None:
                why = STOP_RUNS  # fixed runs, the verdict's span reached
        price = sum(float(np.median(self.walls[c])) / 1e9 if self.walls.get(c) else 1e-3
                    for c in own)  # one round of every cell
        rounds = self._rounds(unfinished or own, widths, goal)
        if t.precision is not None and not seen and all(widths[c] <= goal for c in own):
            # narrow already, but too soon to tell: the rounds that reach the span, at once
            rounds = max(rounds, self._rounds_to_span(intervals.FULL_SPAN_S - span))
        if short:
            rounds = max(MIN_BATCH_ROUNDS, self._rounds_to_span(t.verdict_span_s - span))
        k = len(own)
        if 0 < k <= rounds:  # whole stretches of the balanced order (at most doubles a batch)
            rounds = -(-rounds // k) * k
        if not short and not why and t.budget_s is not None:
            # a run costs more than its program's P50 (the harness, the slow tail, bursts):
            # the factor is the largest a batch has shown of what it took over what was
            # foreseen, so the budget is kept rather than overrun
            if self._foreseen_s > 0:
                self._cost_factor = min(3.0, max(self._cost_factor, (spent_s - self._spent_s)
                                                 / self._foreseen_s))
            per_round = self._cost_factor * price
            left = t.budget_s - spent_s
            rounds = min(rounds, int(left / per_round)) if per_round > 0 else rounds
            self._foreseen_s, self._spent_s = max(rounds, 0) * per_round / self._cost_factor, \
                spent_s
            if rounds < 1:
                why = STOP_BUDGET
        if not short and not why:
            rounds = min(rounds, t.max_runs - max(self.n(c) for c in own))
        if why or not own or rounds < 1:
            for c in own:
                self.stopped[c] = STOP_PRECISION if reached[c] else (why or STOP_MAX_RUNS)
            return []
        for c in own:
            self.stopped.pop(c, None)
        if self.start not in own:
            self.start = own[self.shuffle.randrange(k)]
        return balanced_order(own, rounds, self.shuffle, self.start)

    def _rounds_to_span(self, left_s: float) -> int:
        """Rounds that take about `left_s` more seconds at the run's pace so far (its span
        over the most rounds a cell has had), with a tenth more for the slow tail."""
        most = max((self.n(c) for c in self.cells), default=0)
        span = self.span_s()
        if most < 2 or span <= 0:
            return MIN_BATCH_ROUNDS
        return math.ceil(1.1 * left_s / (span / most))

    def _rounds(self, active: Sequence[str], widths: Mapping[str, float], goal: float) -> int:
        """Rounds in the next batch: the median unfinished cell's runs still needed (1/√n law),
        at least MIN_BATCH_ROUNDS, at most doubling the fewest runs of a cell."""
        if not active:
            return 0
        fewest = min(self.n(c) for c in active)
        if goal <= 0:
            need = fewest
        else:
            needs = [self.n(c) * ((widths[c] / goal) ** 2 - 1) if math.isfinite(widths[c])
                     else self.n(c) for c in active]
            need = math.ceil(float(np.median(needs)))
        return max(MIN_BATCH_ROUNDS, min(need, max(fewest, MIN_BATCH_ROUNDS)))

    def span_s(self) -> float:
        """Seconds from the run's first timed sample to its last, over every cell."""
        ts = [t for c in self.cells for t in (self.done_ns.get(c) or [])[:1]
              + (self.done_ns.get(c) or [])[-1:]]
        return (max(ts) - min(ts)) / 1e9 if len(ts) >= 2 else 0.0

    def need_s(self, cell: str) -> float | None:
        """Seconds of timing (the run's, at its pace) a cell short of the precision target
        would need to reach it, by the 1/√time law of block intervals; None when it is not
        short of it or nothing is known."""
        p, w, span = self.target.precision, self.widths.get(cell), self.span_s()
        if p is None or w is None or not math.isfinite(w) or w <= p * STOP_MARGIN or span <= 0:
            return None
        return span * (w / (p * STOP_MARGIN)) ** 2

    def eta_s(self) -> float:
        """Seconds of running the run still needs: the rounds its least precise cell needs by
        the 1/√n law, each a run of every cell (NaN without a precision target)."""
        p = self.target.precision
        if p is None:
            return float("nan")
        goal = p * STOP_MARGIN
        rounds = 0.0
        for c, w in self.widths.items():
            if c in self.stopped or not math.isfinite(w) or w <= goal:
                continue
            rounds = max(rounds, min(self.n(c) * ((w / goal) ** 2 - 1),
                                     self.target.max_runs - self.n(c)))
        # every cell runs in every round until the run stops
        price = sum(float(np.median(v)) / 1e9 for c, v in self.walls.items()
                    if v and c not in self.stopped)
        return rounds * price

    def record(self) -> dict[str, dict[str, Any]]:
        """Per cell: runs taken, the half-width reached and why it stopped (run.json)."""
        out: dict[str, dict[str, Any]] = {}
        for c in self.cells:
            out[c] = {"runs": self.n(c), "half_width": _round(self.widths.get(c)),
                      "stopped": self.stopped.get(c, STOP_RUNS)}
            need = self.need_s(c) if out[c]["stopped"] in (STOP_MAX_RUNS, STOP_BUDGET) else None
            if need is not None:
                out[c]["need_s"] = round(need, 1)
        return out


def _round(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), 5)


def run_batches(session: Session, tracker: Tracker, spent_s: Callable[[], float],
                progress: Callable[[Tracker, int], Callable[[int, int, str], None]] | None
                = None) -> None:
    """After the minimum rounds: batches from the tracker, run by the session, until every
    cell has stopped. The session's sink must hand each ok timed run to `tracker.add`."""
    nxt = {c: 1 + max((r for (cell, r, timer) in session.done
                       if cell == c and timer == "spawn"), default=-1) for c in tracker.cells}
    budget = tracker.target.budget_s
    # a batch is planned to fit the budget by the runs' cost so far; should it cost more, it
    # ends where the budget does (the next check then stops the unfinished cells: "budget")
    floor = tracker.target.verdict_span_s
    spent = (lambda: spent_s() >= budget and tracker.span_s() >= floor) \
        if budget is not None else None
    while True:
        batch = tracker.next_batch(session.failures, spent_s())
        if not batch:
            return
        tasks = []
        for c in batch:
            tasks.append(Task(nxt[c], c))
            nxt[c] += 1
        session.progress = progress(tracker, len(tasks)) if progress else None
        session.measure(tasks, prepare=False, until=spent)
        if session.should_stop():
            for c in tracker.cells:
                tracker.stopped.setdefault(c, STOP_INTERRUPTED)
            return


def epoch_runs(runs: int, cells: int) -> int:
    """Runs per page-cache placement epoch: MIN_EPOCHS placements over the minimum rounds
    (each a fresh draw of every binary's placement effect, averaged in the P50s)."""
    return max(1, runs // MIN_EPOCHS) * max(cells, 1)
