"""pytest glue: one pytest-benchmark case per cell (the case ships in `gostartbench.run.cases`; its
fixtures and hooks in `gostartbench.run.plugin`).

The times pytest-benchmark sees are the instrument's own measurement of each run — the spawn
helper's posix_spawn .. wait4 taken in C, or hyperfine's per-run wall time — handed over
through a replay clock: pytest-benchmark's public `timer` option (the `benchmark` marker) gets
a clock that advances by exactly the measured amount per round, so its statistics are of the
same numbers samples.csv holds, without Python's call overhead in them. The clock's name is
the instrument's, so pytest-benchmark.json says what measured.

Before any timing, every selected cell gets one untimed verification run through the spawn
helper (expect / ready checked, whatever the timer); a cell that fails it is failed untimed.

order=sequential: each case's `benchmark.pedantic` rounds are real spawns, one per round.
order=interleaved (default): the shuffled schedule runs once, for the cells pytest selected
(`-k`, node ids, `--lf`), when the first case starts (rounds must go across cells, which
pytest's one-case-at-a-time cannot do); each case then hands its cell's measured rounds, in
order, to `benchmark.pedantic`. Rounds read back from samples.csv after `--resume` are counted
in the case's `extra_info` (`rounds_from_disk`).
"""

from __future__ import annotations

import math
import os
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gostartbench.host.tools import HOW_TO_GET, find_tool
from gostartbench.matrix import Expect, Ready
from gostartbench.measure import RunSpec, SpawnExecutor, hyperfine_available, run_env
from gostartbench.measure.spec import Inside
from gostartbench.progress import Progress
from gostartbench.results import (
    SAMPLES_COLUMNS,
    SAMPLES_CSV,
    STOPPING_JSON,
    AppendCsv,
    main_timer,
    read_csv_rows,
    write_json,
)
from gostartbench.results.plan import Plan, read_plan
from gostartbench.results.schema import STOP_FAILED, STOP_INTERRUPTED
from gostartbench.run.adaptive import Target, Tracker, epoch_runs, run_batches
from gostartbench.run.schedule import Session, Unit, hyperfine_skip_reason

RUN_DIR_ENV = "GOSTARTBENCH_RUN_DIR"
NO_PLAN_REASON = ("no run plan: start the bench with `gostartbench run` or `nox -s bench`, or "
                  f"point {RUN_DIR_ENV} at a run folder made with `gostartbench run --plan-only`")


class CellFailed(Exception):
    """A cell's program did not do what its app expects (or its build failed); the message is
    the reason. Any other exception in a case is the harness's own failure."""


class ReplayClock:
    """A clock for pytest-benchmark that advances only by measured wall times (seconds).

    All instances share one time line (a round's duration is a difference of two readings);
    each is named after the instrument whose figures it replays, which is the timer name
    pytest-benchmark records."""

    _now_s = 0.0

    def __init__(self, name: str) -> None:
        self.__name__ = name
        self.__module__ = "gostartbench"

    @classmethod
    def advance_ns(cls, ns: int) -> None:
        """Move the shared time line on by one measured run."""
        cls._now_s += ns / 1e9

    def __call__(self) -> float:
        return ReplayClock._now_s


CLOCKS = {
    "spawn": ReplayClock("gsb_spawn_helper_posix_spawn_to_wait4_monotonic"),
    "hyperfine": ReplayClock("hyperfine_N_wall_clock"),
}


def unit_from_plan(u: dict[str, Any]) -> Unit:
    """A measurable unit from one plan.json entry, with the harness's environment added."""
    ready = Ready(**u["ready"]) if u.get("ready") else None
    base = {k: v for k, v in os.environ.items() if k != RUN_DIR_ENV}
    ins = u.get("inside")
    inside = Inside(**{**ins, "engine_run": tuple(ins["engine_run"])}) if ins else None
    spec = RunSpec(
        # inside an image the program gets its own variables only, not the host's
        argv=tuple(u["argv"]), env=dict(u["env"]) if inside else run_env(base, dict(u["env"])),
        timeout_s=float(u["timeout_s"]), ready=ready,
        cpus=tuple(u["cpus"]) if u.get("cpus") else None, expect=Expect(**u["expect"]),
        inside=inside, prewarm=u.get("prewarm", ""), drop_caches=bool(u.get("drop_caches")),
        after=tuple(u.get("after") or ()),
    )
    return Unit(cell=u["cell"], binary=Path(u["binary"]), spec=spec, cache=u["cache"])


@dataclass
class BenchState:
    """What the cases of one pytest session share: the plan, the session over the selected
    cells, and every measured wall time by (cell, timer) and round."""

    run_dir: Path
    plan: Plan
    selected: list[str] = field(default_factory=list)
    units: dict[str, Unit] = field(default_factory=dict)
    walls: dict[tuple[str, str], dict[int, int]] = field(default_factory=dict)
    done_at: dict[str, dict[int, int]] = field(default_factory=dict)  # spawn: round → Unix ns
    epochs: dict[str, dict[int, int]] = field(default_factory=dict)  # spawn: round → epoch
    tracker: Tracker | None = None
    from_disk: dict[tuple[str, str], int] = field(default_factory=dict)
    session: Session | None = None
    measured: bool = False
    prepared: bool = False
    writer: AppendCsv | None = None

    @classmethod
    def load(cls, run_dir: Path, selected: Iterable[str] | None = None,
             plan: Plan | None = None) -> BenchState:
        """The state for the cells pytest selected (all of the plan's when None); `plan` when
        the caller has read it already."""
        plan = plan if plan is not None else read_plan(run_dir)
        chosen = list(plan.order) if selected is None else \
            [c for c in plan.order if c in set(selected)]
        st = cls(run_dir=run_dir, plan=plan, selected=chosen)
        st.units = {u["cell"]: unit_from_plan(u) for u in plan.units if u["cell"] in chosen}
        done: set[tuple[str, int, str]] = set()
        failures: dict[str, str] = {}
        for r in read_csv_rows(run_dir / SAMPLES_CSV):  # resume: what is on disk counts
            if r["cell"] not in st.units:
                continue
            rnd = int(r["round"])
            if r["ok"] == "true" and rnd >= 0:
                st.walls.setdefault((r["cell"], r["timer"]), {})[rnd] = int(r["wall_ns"])
                done.add((r["cell"], rnd, r["timer"]))
                if r["timer"] == "spawn" and r.get("done_unix_ns"):
                    st.done_at.setdefault(r["cell"], {})[rnd] = int(r["done_unix_ns"])
                if r.get("epoch"):
                    st.epochs.setdefault(r["cell"], {})[rnd] = int(r["epoch"])
            elif r["ok"] != "true":
                failures.setdefault(r["cell"], r["reason"])
        st.from_disk = {k: len(v) for k, v in st.walls.items()}
        return st._with_session(done, failures)

    def _with_session(self, done: set[tuple[str, int, str]], failures: dict[str, str]
                      ) -> BenchState:
        m = self.plan.measure
        if m["timer"] in ("hyperfine", "both") and not hyperfine_available():
            raise RuntimeError(f"measure.timer={m['timer']} but hyperfine is not found: "
                               f"{HOW_TO_GET['hyperfine']}")
        self.writer = AppendCsv(self.run_dir / SAMPLES_CSV, SAMPLES_COLUMNS)
        runnable = [self.units[c] for c in self.selected if c in self.units]
        self.session = Session(
            units=runnable, executor=SpawnExecutor(), sink=self._sink, runs=m["runs"],
            warmup=m["warmup"], order=m["order"], seed=m["seed"], done=done,
            failures=failures, epoch_runs=epoch_runs(m["runs"], len(runnable)),
            epoch=max((e for by in self.epochs.values() for e in by.values()), default=0),
        )
        return self

    def _sink(self, row: dict[str, Any]) -> None:
        assert self.writer is not None
        self.writer.write(row)
        if row["ok"] and int(row["round"]) >= 0:
            self.walls.setdefault((row["cell"], row["timer"]), {})[int(row["round"])] = \
                int(row["wall_ns"])
            if row["timer"] == "spawn":
                rnd = int(row["round"])
                self.done_at.setdefault(row["cell"], {})[rnd] = int(row["done_unix_ns"])
                self.epochs.setdefault(row["cell"], {})[rnd] = int(row["epoch"])
                if self.tracker is not None:
                    self.tracker.add(row["cell"], int(row["wall_ns"]), int(row["epoch"]),
                                     int(row["done_unix_ns"]))

    def ensure_verified(self) -> None:
        """One untimed verification run per selected cell (once per session)."""
        assert self.session is not None
        self.session.verify()

    def ensure_measured(self) -> None:
        """Interleaved order: run every pending round of every selected cell, once."""
        if self.measured:
            return
        self.measured = True
        assert self.session is not None
        self.ensure_verified()
        m = self.plan.measure
        if m["timer"] in ("spawn", "both"):
            t0 = time.monotonic()
            tasks = self.session.pending()
            prog = Progress(len(tasks), "timing", quiet=not tasks)
            self.session.progress = _every(prog)
            self.session.measure(tasks)
            prog.close()
            self._precise(t0)
        if m["timer"] in ("hyperfine", "both"):
            self.session.measure_hyperfine(self.run_dir)

    def target(self) -> Target:
        """The run's precision target (fixed runs when it has none)."""
        m = self.plan.measure
        return Target(precision=m.get("precision"), min_runs=int(m["runs"]),
                      max_runs=int(m.get("max_runs") or m["runs"]), budget_s=m.get("budget_s"),
                      verdict_span_s=float(m.get("verdict_span_s") or 0.0))

    def _new_tracker(self) -> Tracker:
        base = {u["cell"]: u.get("baseline") for u in self.plan.units}
        cells = [c for c in self.selected if c in self.units]
        tr = Tracker(cells=cells, baseline_of=base, target=self.target(),
                     seed=int(self.plan.measure["seed"]))
        for c in cells:
            walls = self.walls.get((c, "spawn"), {})
            epoch, when = self.epochs.get(c, {}), self.done_at.get(c, {})
            for rnd in sorted(walls):  # rows of older versions: no epoch, no time
                tr.add(c, walls[rnd], epoch.get(rnd, -1 - rnd), when.get(rnd, float("nan")))
        return tr

    def _precise(self, t0: float) -> None:
        """Rounds past the minimum among cells short of the precision target (or within the
        budget); then every cell's runs, reached half-width and stop reason in stopping.json."""
        assert self.session is not None
        session = self.session
        tr = self.tracker = self._new_tracker()
        target = tr.target
        try:
            if target.adaptive:
                run_batches(session, tr, lambda: time.monotonic() - t0, _batch_progress)
            else:
                tr.measure_widths(tr.scored(session.failures), session.failures)
                tr.stopped.update({c: STOP_FAILED for c in session.failures if c in tr.cells})
        except KeyboardInterrupt:
            for c in tr.cells:
                tr.stopped.setdefault(c, STOP_INTERRUPTED)
            raise
        finally:
            write_json(self.run_dir / STOPPING_JSON, {
                "precision": target.precision, "min_runs": target.min_runs,
                "max_runs": target.max_runs, "budget_s": target.budget_s,
                "timing_s": round(time.monotonic() - t0, 2),
                "verdict_span_s": target.verdict_span_s, "caps_gave_way": tr.extended,
                "cells": tr.record()})

    def rounds_for(self, cell: str, timer: str) -> list[int]:
        """The measured wall times of a cell, in round order."""
        w = self.walls.get((cell, timer), {})
        return [w[r] for r in sorted(w)]

    def close(self) -> None:
        """Stop the helper and flush samples.csv."""
        if self.session is not None:
            close = getattr(self.session.executor, "close", None)
            if close:
                close()
        if self.writer:
            self.writer.close()


def _every(prog: Progress, step: int = 20) -> Callable[[int, int, str], None]:
    """A session's progress callback that updates `prog` every `step` runs and at the end."""
    def update(done: int, total: int, current: str) -> None:
        if done % step == 0 or done == total:
            prog.update(done, current)
    return update


def _batch_progress(tr: Tracker, runs: int) -> Callable[[int, int, str], None]:
    """The progress line of one batch of a precision target."""
    prog = Progress(runs, _precision_line(tr))
    update = _every(prog)

    def on_run(done: int, total: int, current: str) -> None:
        update(done, total, current)
        if done == total:
            prog.close()
    return on_run


def _precision_line(tr: Tracker) -> str:
    """Progress label: the precision reached and an ETA by the 1/√n law."""
    p = tr.target.precision
    w = [x for c, x in tr.widths.items() if math.isfinite(x) and c not in tr.stopped]
    done = sum(1 for c in tr.widths if c in tr.stopped)
    widest = f"widest ±{max(w):.1%}" if w else ""
    goal = f"{done}/{len(tr.widths)} cells within ±{p:.1%}, " if p else ""
    eta = tr.eta_s()
    return f"precision: {goal}{widest}" + (f", ~{eta:.0f}s of runs left" if eta == eta else "")


def install_sigterm() -> None:
    """SIGTERM stops a run like Ctrl-C does: samples on disk, run.json says interrupted."""

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)


def instrument(timer: str) -> str:
    """What measured a case's rounds, in words (pytest-benchmark.json's extra_info)."""
    if timer == "hyperfine":
        return f"{find_tool('hyperfine').version or 'hyperfine'} -N, per-run wall clock"
    return "gsb-spawn helper: posix_spawn .. wait4, CLOCK_MONOTONIC, in C"


def run_case(benchmark: Any, cell: str, state: BenchState) -> None:
    """The body of one case: skip, fail with the cell's reason, or hand its rounds over."""
    import pytest

    meta = state.plan.cells[cell]
    timer = main_timer(state.plan.measure["timer"])
    benchmark.group = meta["app"]
    benchmark.name = cell
    benchmark.extra_info.update({
        "app": meta["app"], "toolchain": meta["toolchain"], **meta["axes"],
        "size_bytes": meta.get("size_bytes"), "binary": meta.get("binary"),
        "build_id": meta.get("build_id"), "instrument": instrument(timer),
        "order": state.plan.measure["order"],
    })
    if meta["status"] == "skipped":
        pytest.skip(meta["reason"])
    if meta["status"] == "failed":
        raise CellFailed(str(meta["reason"]))  # the build's or the image's own words
    if timer == "hyperfine" and cell in state.units:
        unit = state.units[cell]
        why = hyperfine_skip_reason(unit.cache, unit.spec.ready is not None,
                                    unit.spec.inside is not None)
        if why:
            pytest.skip(why)
    assert state.session is not None
    if state.plan.measure["order"] == "interleaved" or timer == "hyperfine":
        state.ensure_measured()
        if cell in state.session.failures:
            raise CellFailed(state.session.failures[cell])
        walls = state.rounds_for(cell, timer)
        if not walls:
            raise CellFailed("no sample was measured")
        benchmark.extra_info["rounds_from_disk"] = state.from_disk.get((cell, timer), 0)
        benchmark.extra_info["measured_before_case"] = True  # replayed in round order
        it = iter(walls)

        def replay() -> None:
            ReplayClock.advance_ns(next(it))

        benchmark.pedantic(replay, rounds=len(walls), iterations=1, warmup_rounds=0)
        return
    _sequential_case(benchmark, cell, state)


def _sequential_case(benchmark: Any, cell: str, state: BenchState) -> None:
    """One real spawn per pedantic round (rounds already on disk from an interrupted run are
    handed over as measured, and counted in extra_info)."""
    session = state.session
    assert session is not None
    session.verify([cell])
    if cell in session.failures:
        raise CellFailed(session.failures[cell])
    if not state.prepared:
        session.prepare()
        state.prepared = True
    tasks = [t for t in session.pending() if t.cell == cell]
    warm = [t for t in tasks if t.round < 0]
    timed = [t for t in tasks if t.round >= 0]
    existing = state.rounds_for(cell, "spawn")
    benchmark.extra_info["rounds_from_disk"] = len(existing)
    benchmark.extra_info["measured_before_case"] = False
    queue: list[tuple[str, Any]] = [("replay", w) for w in existing] + [("task", t) for t in timed]
    steps = iter([("task", t) for t in warm] + queue)

    def one_round() -> None:
        kind, x = next(steps)
        if kind == "replay":
            ReplayClock.advance_ns(x)
            return
        res = session.run_one(x)
        if res is None or not res.ok:
            raise CellFailed(session.failures.get(cell, "run failed"))
        ReplayClock.advance_ns(res.wall_ns)

    if not queue:
        raise CellFailed("no round to measure")
    benchmark.pedantic(one_round, rounds=len(queue), iterations=1, warmup_rounds=len(warm))
    if state.plan.measure["timer"] == "both":
        sub = Session(units=[state.units[cell]], executor=session.executor, sink=state._sink,
                      runs=session.runs, warmup=0, seed=session.seed, done=session.done,
                      failures=session.failures)
        sub.measure_hyperfine(state.run_dir)
        if cell in session.failures:
            raise CellFailed(session.failures[cell])
