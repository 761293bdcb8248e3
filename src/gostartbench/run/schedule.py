"""Scheduling and running the timed rounds over many cells.

`schedule` is pure. `Session.measure` drives an executor over the schedule, applies the cache
condition of each run, and hands every sample to a sink as soon as it is taken. Interleaved
order (the default) runs every cell equally often, in a serially balanced order
(`balanced_order`): slow drift of the machine hits every cell alike, and so does carry-over —
a start that follows a start of the same binary is faster on some hosts (1.5–6% seen), so each
cell must follow itself, and every other cell, as often as any other cell does.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from gostartbench.measure import (
    Executor,
    RunItem,
    RunResult,
    RunSpec,
    hyperfine_check,
    normalise_warm,
    run_hyperfine,
)
from gostartbench.measure.pagecache import cold_paths
from gostartbench.results.schema import VERIFY_ROUND

T = TypeVar("T")


@dataclass(frozen=True)
class Unit:
    """One cell ready to measure."""

    cell: str
    binary: Path
    spec: RunSpec
    cache: str = "warm"


@dataclass(frozen=True)
class Task:
    """One run of the schedule: a cell and a round (< 0: warmup)."""

    round: int  # < 0: warmup, not recorded
    cell: str


def schedule(cells: Sequence[str], runs: int, warmup: int, order: str, seed: int = 0
             ) -> list[Task]:
    """Warmup rounds then measured rounds. interleaved: the warmups in shuffled rounds, then
    `runs` runs of every cell in a serially balanced order (balanced_order; seeded: the same
    seed gives the same schedule); a cell's n-th measured run is its round n. sequential: all
    of a cell's rounds, then the next cell."""
    tasks: list[Task] = []
    if order == "sequential":
        for c in cells:
            tasks += [Task(r, c) for r in range(-warmup, runs)]
        return tasks
    rng = random.Random(seed)
    for r, perm in zip(range(-warmup, 0), shuffled_rounds(cells, warmup, rng), strict=True):
        tasks += [Task(r, c) for c in perm]
    return tasks + numbered(balanced_order(cells, runs, rng))


def numbered(order: Sequence[str]) -> list[Task]:
    """Tasks for a sequence of cells: each cell's runs numbered from 0 in the order given."""
    nxt: dict[str, int] = {}
    out = []
    for c in order:
        r = nxt.get(c, 0)
        out.append(Task(r, c))
        nxt[c] = r + 1
    return out


def balanced_order(cells: Sequence[str], rounds: int, rng: random.Random,
                   start: str | None = None) -> list[str]:
    """`rounds` runs of every cell, serially balanced (Finney & Outhwaite 1956): in every
    stretch of k rounds (k cells, k² runs) each cell follows each cell, itself included,
    exactly once, so whatever a start leaves behind for the next one (carry-over) falls on
    every cell alike, and each cell still runs k times per stretch. A stretch is a random
    Eulerian circuit of the complete directed graph with loops over the cells; every stretch
    starts at the same cell (`start`, else a random one), so the step from one stretch into the
    next is the circuit's closing edge and the balance holds across stretches. The last
    `rounds mod k` rounds, too few for a stretch, are shuffled rounds (balanced on average)."""
    items = list(dict.fromkeys(cells))
    k = len(items)
    if k == 0 or rounds <= 0:
        return []
    if k == 1:
        return items * rounds
    s = start if start in items else items[rng.randrange(k)]
    out: list[str] = []
    for _ in range(rounds // k):
        out += _eulerian_circuit(items, s, rng)
    for perm in shuffled_rounds(items, rounds % k, rng):
        out += perm
    return out


def _eulerian_circuit(items: Sequence[str], start: str, rng: random.Random) -> list[str]:
    """The k² nodes of a random closed walk from `start` that takes every edge (a, b) of the
    complete directed graph with loops exactly once (Hierholzer), without its closing node."""
    left = {a: rng.sample(list(items), len(items)) for a in items}  # edges still to take
    stack, walk = [start], []
    while stack:
        v = stack[-1]
        if left[v]:
            stack.append(left[v].pop())
        else:
            walk.append(stack.pop())
    walk.reverse()  # start … start: k² edges, k² + 1 nodes
    return walk[:-1]


def shuffled_rounds(items: Sequence[T], rounds: int, rng: random.Random) -> list[list[T]]:
    """`rounds` rounds that each visit every item once, each in a fresh shuffled order: the
    one way this project interleaves (timing, calibration, traced and probed runs), so a drift
    of the machine falls on every item alike."""
    out = []
    for _ in range(rounds):
        perm = list(items)
        rng.shuffle(perm)
        out.append(perm)
    return out


SampleSink = Callable[[dict[str, Any]], None]
EPOCH_OVERHEAD = 0.15  # the page-cache re-reading's largest share of the timing time


def sample_row(unit: Unit, rnd: int, timer: str, res: RunResult, done_ns: int, epoch: int,
               after: str = "") -> dict[str, Any]:
    """A samples.csv row from a run's result (`done_ns`: when its result came in, Unix ns;
    `epoch`: the page-cache placement it ran under; `after`: the cell started just before)."""
    return {
        "cell": unit.cell, "round": rnd, "cache": unit.cache, "timer": timer,
        "wall_ns": res.wall_ns, "user_ns": res.user_ns, "sys_ns": res.sys_ns,
        "maxrss_bytes": res.maxrss_bytes, "rss_floor_bytes": res.rss_floor_bytes,
        "minflt": res.minflt, "majflt": res.majflt,
        "exit_code": res.exit_code, "signal": res.signal, "ok": res.ok, "reason": res.reason,
        "done_unix_ns": done_ns, "epoch": epoch, "after_cell": after,
    }


@dataclass
class Session:
    """Runs a schedule over cells with an executor, handing every sample to a sink as taken."""

    units: Sequence[Unit]
    executor: Executor
    sink: SampleSink
    runs: int
    warmup: int
    order: str = "interleaved"
    seed: int = 0
    done: set[tuple[str, int, str]] = field(default_factory=set)  # (cell, round, timer) on disk
    progress: Callable[[int, int, str], None] | None = None
    should_stop: Callable[[], bool] = lambda: False
    failures: dict[str, str] = field(default_factory=dict)
    verified: set[str] = field(default_factory=set)
    # when each result came in (samples.csv done_unix_ns: the intervals' blocks of time);
    # a fake clock makes a simulation's bursts a function of simulated time
    clock: Callable[[], int] = time.time_ns
    # Placement epochs: where a binary's pages land in the page cache moves its start time by
    # a few percent for as long as they stay (docs/validation.md, "Placement"), so warm
    # binaries are read in afresh every `epoch_runs` runs — with the re-reading kept under
    # EPOCH_OVERHEAD of the time — and each sample records its epoch: the intervals resample
    # whole epochs.
    epoch_runs: int = 0  # 0: one placement for the whole session
    epoch: int = 0
    placement_s: float = 0.0  # what the last re-reading cost
    # the cell started last ("" after a re-reading of the binaries): each sample's after_cell
    last_cell: str = ""

    def __post_init__(self) -> None:
        self.by_cell = {u.cell: u for u in self.units}
        # Binaries that warm cells use: after a cold run of a shared binary, read it back in.
        self.warm_binaries = {u.binary for u in self.units if u.cache == "warm"}

    def pending(self, timer: str = "spawn") -> list[Task]:
        """The schedule's tasks not yet on disk (resume), warmups always."""
        tasks = schedule([u.cell for u in self.units], self.runs, self.warmup, self.order,
                         self.seed)
        complete = {c for c in self.by_cell
                    if all((c, r, timer) in self.done for r in range(self.runs))}
        return [t for t in tasks if t.cell not in complete and
                (t.round < 0 or (t.cell, t.round, timer) not in self.done)]

    def prepare(self) -> None:
        """Warm cells: evict every binary, then read each back the same way (a new
        placement epoch)."""
        t = time.monotonic()
        normalise_warm(sorted({u.binary for u in self.units}))
        self.placement_s = time.monotonic() - t
        self.epoch += 1
        self.last_cell = ""

    def _item(self, task: Task) -> tuple[Unit, RunSpec, Path | None, Path | None]:
        unit = self.by_cell[task.cell]
        ev, back = cold_paths(unit.cache, unit.binary, self.warm_binaries)
        return unit, unit.spec, ev, back

    def _record(self, task: Task, unit: Unit, res: RunResult, timer: str = "spawn",
                after: str = "") -> None:
        if task.round >= 0 or not res.ok:
            self.sink(sample_row(unit, task.round, timer, res, self.clock(), self.epoch, after))
            self.done.add((unit.cell, task.round, timer))
        if not res.ok:
            # A failing cell stops here (a hang would otherwise cost runs × timeout); the others
            # go on.
            self.failures[unit.cell] = res.reason

    def run_one(self, task: Task, timer: str = "spawn") -> RunResult | None:
        """One task, run and recorded (None when its cell already failed)."""
        unit, spec, ev, back = self._item(task)
        if unit.cell in self.failures:
            return None
        res = self.executor.run(spec, ev, back)
        self._record(task, unit, res, timer, self.last_cell)
        self.last_cell = unit.cell
        return res

    def measure(self, tasks: Iterable[Task] | None = None, prepare: bool = True,
                until: Callable[[], bool] | None = None) -> dict[str, str]:
        """Run the pending (or given) tasks in order, back to back (the executor keeps the
        next run queued); returns cell → failure reason. `prepare`: normalise the page cache
        first (later batches of a precision target go on in the current epoch). `until`: a
        further reason to stop early, besides `should_stop` (a spent time budget)."""
        stop = self.should_stop if until is None else \
            (lambda: self.should_stop() or until())
        todo = list(tasks) if tasks is not None else self.pending()
        if prepare:
            self.prepare()
        total = len(todo)
        step = self.epoch_runs or max(total, 1)
        at = 0
        epoch_start = time.monotonic()
        while at < total and not stop():
            seg = todo[at:at + step]
            self._measure_segment(seg, at, total, stop)
            at += len(seg)
            # a new placement once this one has run EPOCH_OVERHEAD⁻¹ × its own cost
            if self.epoch_runs and at < total and time.monotonic() - epoch_start >= \
                    self.placement_s / EPOCH_OVERHEAD:
                self.prepare()
                epoch_start = time.monotonic()
        return self.failures

    def _measure_segment(self, todo: Sequence[Task], offset: int, total: int,
                         stop: Callable[[], bool]) -> None:
        sent: list[Task] = []
        after: list[str] = []  # the cell started before each sent task (runs go in order)

        def items() -> Iterator[RunItem]:
            for t in todo:
                if stop():
                    return
                if t.cell in self.failures:
                    continue
                sent.append(t)
                after.append(self.last_cell)
                self.last_cell = t.cell
                _, spec, ev, back = self._item(t)
                yield spec, ev, back

        results = self.executor.run_many(items())
        try:
            for i, res in enumerate(results):
                t = sent[i]
                if t.cell in self.failures:
                    continue  # queued before its cell failed: not recorded
                self._record(t, self.by_cell[t.cell], res, after=after[i])
                if self.progress:
                    self.progress(offset + i + 1, total, t.cell)
        finally:
            close = getattr(results, "close", None)
            if close:
                close()

    def verify(self, cells: Iterable[str] | None = None) -> dict[str, str]:
        """One untimed run per cell through the spawn executor, whatever the timer: it checks
        `expect` / `ready` (hyperfine sees only exit codes). A cell that fails it is failed
        before any timing, its failed run recorded (round VERIFY_ROUND)."""
        want = set(cells) if cells is not None else set(self.by_cell)
        todo = [u for u in self.units if u.cell in want and u.cell not in self.failures
                and u.cell not in self.verified]
        for u, res in zip(todo, self.executor.run_many(iter((u.spec, None, None) for u in todo)),
                          strict=True):
            self.verified.add(u.cell)
            if not res.ok:
                reason = f"verification run: {res.reason}"
                self.sink(sample_row(u, VERIFY_ROUND, "spawn",
                                     RunResult(**{**res.__dict__, "reason": reason}),
                                     self.clock(), self.epoch))
                self.failures[u.cell] = reason
        return self.failures

    def measure_hyperfine(self, workdir: Path, chunks: int = 10) -> dict[str, str]:
        """The second timer: hyperfine -N over each warm, exit-mode cell, in chunks interleaved
        across cells (cold cells need eviction between runs, which hyperfine cannot do without
        a shell; ready-mode cells are timed to ready, while hyperfine times to exit). Every run
        is recorded with its check; a failed run or a hyperfine error fails the cell, as the
        spawn timer's do."""
        cells = [u for u in self.units
                 if hyperfine_skip_reason(u.cache, u.spec.ready is not None,
                                          u.spec.inside is not None) == ""
                 and u.cell not in self.failures]
        per = max(1, -(-self.runs // chunks))
        rng = random.Random(self.seed + 1)
        next_round = {u.cell: 0 for u in cells}
        for u in cells:  # resume: rounds on disk are not measured again
            while (u.cell, next_round[u.cell], "hyperfine") in self.done:
                next_round[u.cell] += 1
        while any(next_round[u.cell] < self.runs for u in cells):
            if self.should_stop():
                break
            order = [u for u in cells if next_round[u.cell] < self.runs
                     and u.cell not in self.failures]
            if not order:
                break
            rng.shuffle(order)
            if self.epoch_runs:
                self.prepare()  # each chunk round its own placement epoch
            for u in order:
                n = min(per, self.runs - next_round[u.cell])
                next_round[u.cell] += self._hyperfine_chunk(u, next_round[u.cell], n, workdir)
        return self.failures

    def _hyperfine_chunk(self, u: Unit, first: int, n: int, workdir: Path) -> int:
        """Time rounds first .. first+n-1 of one cell with hyperfine; record every run."""
        base: dict[str, Any] = {"cell": u.cell, "cache": u.cache, "timer": "hyperfine"}
        try:
            hr = run_hyperfine(u.spec, n, 1, workdir)
            # hyperfine reports no per-run times of day: a chunk's runs share its end
            base.update(done_unix_ns=self.clock(), epoch=self.epoch)
        except Exception as exc:  # hyperfine's own failure: recorded, the cell fails
            reason = str(exc)
            self.sink({**base, "round": first, "ok": False, "reason": reason,
                       "done_unix_ns": self.clock()})
            self.failures[u.cell] = reason
            return n
        for j, m in enumerate(hr.runs):
            ok, reason = hyperfine_check(u.spec, m)
            self.sink({**base, "round": first + j, "wall_ns": m.wall_ns, "user_ns": m.user_ns,
                       "sys_ns": m.sys_ns, "maxrss_bytes": m.maxrss_bytes,
                       "exit_code": m.exit_code, "ok": ok, "reason": reason,
                       "after_cell": u.cell})
            self.done.add((u.cell, first + j, "hyperfine"))
            if not ok:
                self.failures[u.cell] = f"hyperfine: {reason}"
                break
        return n


def hyperfine_skip_reason(cache: str, ready: bool, inside: bool = False) -> str:
    """Why hyperfine does not time a cell of this cache state and mode ('' when it does):
    the one rule, for the plan (cells.csv) and the session alike."""
    if inside:
        return HYPERFINE_INSIDE_REASON
    if cache != "warm":
        return HYPERFINE_COLD_REASON
    if ready:
        return HYPERFINE_READY_REASON
    return ""


HYPERFINE_INSIDE_REASON = (
    "timer=hyperfine runs on the host: a program inside a container image is timed by the "
    "spawn helper running in it; use timer: both or spawn")
HYPERFINE_COLD_REASON = (
    "timer=hyperfine measures warm cells only (it cannot evict the page cache between runs "
    "without a shell); use timer: both or spawn for cold cells")
HYPERFINE_READY_REASON = (
    "hyperfine times a program until it exits, not until it is ready: ready-mode apps are "
    "timed by the spawn timer (timer: spawn or both)")
