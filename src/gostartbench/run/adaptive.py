"""Precision you ask for, in the least time: which cells run next, and when to stop.

After the `runs` rounds every cell gets, rounds go on in batches among the cells whose ratio
ci95 (gostartbench.stats.intervals, the report's own interval) is still wider than
`measure.precision`; each batch is interleaved and shuffled like the fixed rounds. The rule
stops on the *width* of an interval, never on its position or on significance, so a cell's
verdict is not chosen by when it stopped.

- A cell's precision is the half-width of its ratio ci95 relative to the ratio (0.01: ±1%); a
  baseline cell (and a cell without one) is held to its own P50's. A baseline cell is measured
  while any cell compared with it is: in each round it runs ⌈√k⌉ times for its k unfinished
  cells (the square-root rule for many comparisons with one control, Dunnett 1955): its runs
  serve all k ratios, so more of them narrows k intervals at the price of one cell's runs.
- Batches grow with the distance to the target (the runs a cell still needs, by the 1/√n law,
  at most doubling a cell's runs per batch) so the intervals are recomputed only a few times.
- A cell stops at the target (`precision`), at `max_runs` (flagged in the summary's warnings)
  or when `measure.budget_s` is spent (flagged too). With a budget, every unfinished cell keeps
  running (a cell left out would stop gaining blocks of time, and its interval with them) and
  the half where a second of running narrows an interval most runs twice per round: a run's
  price is its cell's P50 (plus its baseline's share).
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
from gostartbench.run.schedule import Session, Task
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
        """The next batch's runs, cell by cell in run order (empty: every cell has stopped;
        `stopped` then says why for each)."""
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
        # a judged run short of its verdict's span: every cell not yet stopped on precision
        # goes on, past max_runs and the budget
        short = span < t.verdict_span_s
        if short:
            self.extended = True
        active = []
        for c in own:
            if t.precision is not None and widths[c] <= goal and seen:
                self.stopped[c] = STOP_PRECISION
            elif short:
                active.append(c)
            elif self.n(c) >= t.max_runs:
                self.stopped[c] = STOP_MAX_RUNS
            elif t.precision is None and t.budget_s is None:
                self.stopped[c] = STOP_RUNS  # fixed runs, the verdict's span reached
            else:
                active.append(c)
        price = {c: float(np.median(self.walls[c])) / 1e9 if self.walls.get(c) else 1e-3
                 for c in self.cells}
        unfinished = list(active)
        per = self._runs_per_round(active, failures)
        if t.budget_s is not None and active:
            # every unfinished cell keeps running (its blocks must spread over the run: an
            # interval is as narrow as its blocks are many); the half where a second narrows
            # an interval most runs twice per round
            for c in self._best_value(active, widths, price, failures):
                per[c] += 1
        rounds = self._rounds(active, widths, goal)
        if short:
            rounds = max(MIN_BATCH_ROUNDS, self._rounds_to_span(t.verdict_span_s - span))
        elif t.budget_s is not None:
            # a run costs more than its program's P50 (the harness, the slow tail, bursts):
            # the factor is the largest a batch has shown of what it took over what was
            # foreseen, so the budget is kept rather than overrun
            if self._foreseen_s > 0:
                self._cost_factor = min(3.0, max(self._cost_factor, (spent_s - self._spent_s)
                                                 / self._foreseen_s))
            per_round = self._cost_factor * sum(price[c] * m for c, m in per.items())
            left = t.budget_s - spent_s
            rounds = min(rounds, int(left / per_round)) if per_round > 0 else rounds
            self._foreseen_s, self._spent_s = max(rounds, 0) * per_round / self._cost_factor, \
                spent_s
            if rounds < 1:
                for c in unfinished:
                    self.stopped[c] = STOP_BUDGET
                per = {}
        if not per:
            return []
        for c in per:
            self.stopped.pop(c, None)  # running again (a baseline serving its cells)
        batch: list[str] = []
        cap = t.max_runs if not short else max(t.max_runs, max(self.n(c) for c in per) + rounds
                                               * max(per.values()))
        left_runs = {c: cap - self.n(c) for c in per}
        for _ in range(rounds):
            one: list[str] = []
            for c, m in per.items():
                one += [c] * min(m, max(left_runs[c], 0))
            for c in one:
                left_runs[c] -= 1
            self.shuffle.shuffle(one)
            batch += one
        return batch

    def _rounds_to_span(self, left_s: float) -> int:
        """Rounds that take about `left_s` more seconds at the run's pace so far (its span
        over the most rounds a cell has had), with a tenth more for the slow tail."""
        most = max((self.n(c) for c in self.cells), default=0)
        span = self.span_s()
        if most < 2 or span <= 0:
            return MIN_BATCH_ROUNDS
        return math.ceil(1.1 * left_s / (span / most))

    def _runs_per_round(self, active: Sequence[str], failures: Mapping[str, str]
                        ) -> dict[str, int]:
        """Each running cell's runs per round: one for an unfinished cell; ⌈√k⌉ for a baseline
        with k unfinished cells (it runs to serve them, finished or not)."""
        per = {c: 1 for c in active}
        k: dict[str, int] = {}
        for c in active:
            b = self.base(c, failures)
            if b is not None:
                k[b] = k.get(b, 0) + 1
        for b, m in k.items():
            per[b] = max(per.get(b, 0), math.ceil(math.sqrt(m)))
        return per

    def _rounds(self, active: Sequence[str], widths: Mapping[str, float], goal: float) -> int:
        """Rounds in the next batch: the median active cell's runs still needed (1/√n law),
        at least MIN_BATCH_ROUNDS, at most doubling the fewest runs of an active cell."""
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

    def _best_value(self, active: list[str], widths: Mapping[str, float],
                    price: Mapping[str, float], failures: Mapping[str, str]) -> list[str]:
        """With a budget: the half of the unfinished cells where a second narrows an interval
        most (a run narrows a width w by about w / 2n)."""
        def value(c: str) -> float:
            b = self.base(c, failures)
            cost = price[c] + (price[b] / 2 if b else 0.0)
            w = widths[c] if math.isfinite(widths[c]) else 1.0
            return w / (2 * max(self.n(c), 1)) / max(cost, 1e-6)
        ranked = sorted(active, key=value, reverse=True)
        return ranked[:max(1, (len(ranked) + 1) // 2)]

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
        """Seconds of running the unfinished cells still need, by the 1/√n law (NaN without a
        precision target)."""
        p = self.target.precision
        if p is None:
            return float("nan")
        goal = p * STOP_MARGIN
        total = 0.0
        for c, w in self.widths.items():
            if c in self.stopped or not math.isfinite(w) or w <= goal:
                continue
            need = min(self.n(c) * ((w / goal) ** 2 - 1), self.target.max_runs - self.n(c))
            total += max(need, 0) * float(np.median(self.walls[c])) / 1e9
        return total

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
