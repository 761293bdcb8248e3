"""pytest glue: one pytest-benchmark case per cell (bench/test_startup.py uses this).

The timer pytest-benchmark sees is the spawn helper's own measurement of each run (posix_spawn
.. wait4, taken in C), fed through a clock that advances by exactly that amount: so
pytest-benchmark's statistics are of the same numbers samples.csv holds, without Python's call
overhead in them.

order=sequential: each case's `benchmark.pedantic` rounds are real spawns, one per round.
order=interleaved (default): the shuffled schedule runs once for all selected cells when the
first case starts (rounds must go across cells, which pytest's one-case-at-a-time cannot do);
each case then hands its cell's measured rounds, in order, to `benchmark.pedantic`.
"""

from __future__ import annotations

import os
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gostartbench.matrix import Expect, Ready
from gostartbench.measure import RunSpec, SpawnExecutor, hyperfine_available, run_env
from gostartbench.progress import Progress
from gostartbench.results import (
    PLAN_JSON,
    SAMPLES_COLUMNS,
    SAMPLES_CSV,
    AppendCsv,
    read_csv_rows,
    read_json,
)
from gostartbench.session import Session, Unit

RUN_DIR_ENV = "GOSTARTBENCH_RUN_DIR"


class CellFailed(Exception):
    """A cell's run did not do what its app expects; the message is the reason."""


@dataclass
class VirtualClock:
    """A clock that advances only by the measured wall time of each run (seconds)."""

    now_s: float = 0.0

    def advance_ns(self, ns: int) -> None:
        self.now_s += ns / 1e9

    def __call__(self) -> float:
        return self.now_s

    __name__ = "gostartbench.spawn_helper_wall_clock"


def unit_from_plan(u: dict[str, Any]) -> Unit:
    ready = Ready(**u["ready"]) if u.get("ready") else None
    base = {k: v for k, v in os.environ.items() if k != RUN_DIR_ENV}
    spec = RunSpec(
        argv=tuple(u["argv"]), env=run_env(base, dict(u["env"])), timeout_s=float(u["timeout_s"]),
        ready=ready, cpus=tuple(u["cpus"]) if u.get("cpus") else None,
        expect=Expect(**u["expect"]),
    )
    return Unit(cell=u["cell"], binary=Path(u["binary"]), spec=spec, cache=u["cache"])


@dataclass
class BenchState:
    run_dir: Path
    plan: dict[str, Any]
    units: dict[str, Unit] = field(default_factory=dict)
    walls: dict[tuple[str, str], dict[int, int]] = field(default_factory=dict)
    session: Session | None = None
    measured: bool = False
    prepared: bool = False
    writer: AppendCsv | None = None

    @classmethod
    def load(cls, run_dir: Path) -> BenchState:
        plan = read_json(run_dir / PLAN_JSON)
        st = cls(run_dir=run_dir, plan=plan)
        st.units = {u["cell"]: unit_from_plan(u) for u in plan["units"]}
        done: set[tuple[str, int, str]] = set()
        failures: dict[str, str] = {}
        for r in read_csv_rows(run_dir / SAMPLES_CSV):  # resume: what is on disk counts
            rnd = int(r["round"])
            if r["ok"] == "true" and rnd >= 0:
                st.walls.setdefault((r["cell"], r["timer"]), {})[rnd] = int(r["wall_ns"])
                done.add((r["cell"], rnd, r["timer"]))
            elif r["ok"] != "true" and r["timer"] == "spawn":
                failures[r["cell"]] = r["reason"]
        return st._with_session(done, failures)

    def _with_session(self, done: set[tuple[str, int, str]], failures: dict[str, str]
                      ) -> BenchState:
        m = self.plan["measure"]
        self.writer = AppendCsv(self.run_dir / SAMPLES_CSV, SAMPLES_COLUMNS)
        runnable = [self.units[c] for c in self.plan["order"] if c in self.units]
        self.session = Session(
            units=runnable, executor=_executor(m["timer"]), sink=self._sink, runs=m["runs"],
            warmup=m["warmup"], order=m["order"], seed=m["seed"], done=done,
            failures=failures,
        )
        return self

    def _sink(self, row: dict[str, Any]) -> None:
        assert self.writer is not None
        self.writer.write(row)
        if row["ok"] and int(row["round"]) >= 0:
            self.walls.setdefault((row["cell"], row["timer"]), {})[int(row["round"])] = \
                int(row["wall_ns"])

    def ensure_measured(self) -> None:
        """Interleaved order: run every pending round of every cell, once."""
        if self.measured:
            return
        self.measured = True
        assert self.session is not None
        m = self.plan["measure"]
        if m["timer"] in ("spawn", "both"):
            tasks = self.session.pending()
            prog = Progress(len(tasks), "timing", quiet=not tasks)
            self.session.progress = lambda d, t, cur: prog.update(d, cur) if d % 20 == 0 \
                or d == t else None
            self.session.measure(tasks)
            prog.close()
        if m["timer"] in ("hyperfine", "both"):
            self.session.measure_hyperfine(self.run_dir)

    def rounds_for(self, cell: str, timer: str) -> list[int]:
        w = self.walls.get((cell, timer), {})
        return [w[r] for r in sorted(w)]

    def close(self) -> None:
        if self.writer:
            self.writer.close()


def _executor(timer: str) -> SpawnExecutor:
    # Every timer uses the spawn helper too (timer=hyperfine: for its expect checks).
    if timer in ("hyperfine", "both") and not hyperfine_available():
        raise RuntimeError(f"measure.timer={timer} but hyperfine is not installed")
    return SpawnExecutor()


def install_sigterm() -> None:
    """SIGTERM stops a run like Ctrl-C does: samples on disk, run.json says interrupted."""

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)


def run_case(benchmark: Any, cell: str, state: BenchState) -> None:
    import pytest

    meta = state.plan["cells"][cell]
    benchmark.group = meta["app"]
    benchmark.name = cell
    benchmark.extra_info.update({
        "app": meta["app"], "toolchain": meta["toolchain"], **meta["axes"],
        "size_bytes": meta.get("size_bytes"), "binary": meta.get("binary"),
        "build_id": meta.get("build_id"),
    })
    if meta["status"] == "skipped":
        pytest.skip(meta["reason"])
    if meta["status"] == "failed":
        raise CellFailed(f"build failed: {meta['reason']}")
    assert state.session is not None
    timer = state.plan["measure"]["timer"]
    main_timer = "hyperfine" if timer == "hyperfine" else "spawn"
    clock = VirtualClock()
    benchmark._timer = clock  # pytest-benchmark reads its timer from here (see module doc)
    if state.plan["measure"]["order"] == "interleaved" or main_timer == "hyperfine":
        state.ensure_measured()
        if cell in state.session.failures:
            raise CellFailed(state.session.failures[cell])
        walls = state.rounds_for(cell, main_timer)
        if not walls:
            raise CellFailed("no sample was measured")
        it = iter(walls)

        def replay() -> None:
            clock.advance_ns(next(it))

        benchmark.pedantic(replay, rounds=len(walls), iterations=1, warmup_rounds=0)
        return
    _sequential_case(benchmark, cell, state, clock)


def _sequential_case(benchmark: Any, cell: str, state: BenchState, clock: VirtualClock) -> None:
    """One real spawn per pedantic round (rounds already on disk from an interrupted run are
    handed over as measured)."""
    session = state.session
    assert session is not None
    if cell in session.failures:
        raise CellFailed(session.failures[cell])
    if not state.prepared:
        session.prepare()
        state.prepared = True
    tasks = [t for t in session.pending() if t.cell == cell]
    warm = [t for t in tasks if t.round < 0]
    timed = [t for t in tasks if t.round >= 0]
    existing = state.rounds_for(cell, "spawn")
    queue: list[tuple[str, Any]] = [("replay", w) for w in existing] + [("task", t) for t in timed]
    steps = iter([("task", t) for t in warm] + queue)

    def one_round() -> None:
        kind, x = next(steps)
        if kind == "replay":
            clock.advance_ns(x)
            return
        res = session.run_one(x)
        if res is None or not res.ok:
            raise CellFailed(session.failures.get(cell, "run failed"))
        clock.advance_ns(res.wall_ns)

    if not queue:
        raise CellFailed("no round to measure")
    benchmark.pedantic(one_round, rounds=len(queue), iterations=1, warmup_rounds=len(warm))
    if state.plan["measure"]["timer"] == "both":
        sub = Session(units=[state.units[cell]], executor=session.executor, sink=state._sink,
                      runs=session.runs, warmup=0, seed=session.seed, done=session.done)
        sub.measure_hyperfine(state.run_dir)


def state_from_env() -> BenchState | None:
    d = os.environ.get(RUN_DIR_ENV)
    if not d:
        return None
    return BenchState.load(Path(d))


def plan_cells() -> list[str]:
    d = os.environ.get(RUN_DIR_ENV)
    if not d:
        return []
    try:
        plan = read_json(Path(d) / PLAN_JSON)
    except (OSError, ValueError) as exc:
        print(f"gostartbench: cannot read the run plan: {exc}", file=sys.stderr)
        return []
    return list(plan["order"])
