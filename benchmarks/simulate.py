"""The run's own schedule and stopping rule on a simulated machine, for the simulations in
benchmarks/ and the stopping rule's unit tests (a fake executor: scheduling and statistics only;
every feature is also tested on real binaries)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gostartbench.measure import FakeExecutor, RunSpec
from gostartbench.measure.fake import BurstyMachine
from gostartbench.run.adaptive import Target, Tracker, epoch_runs, run_batches
from gostartbench.run.schedule import Session, Unit


def simulate(machine: BurstyMachine, baseline_of: Mapping[str, str | None], target: Target,
             warmup: int = 0, seed: int = 0) -> tuple[Tracker, list[dict[str, Any]]]:
    """The run's own schedule and stopping rule on a simulated machine (cell = its program
    name in machine.p50_ns): the minimum rounds, then batches. Returns the tracker (runs,
    widths, why each stopped) and every sample row, as samples.csv would hold them."""
    units = [Unit(c, Path(c), RunSpec(argv=(c,), env={}, timeout_s=1.0)) for c in baseline_of]
    rows: list[dict[str, Any]] = []
    tracker = Tracker(cells=list(baseline_of), baseline_of=baseline_of, target=target,
                      seed=seed)
    t0 = machine.clock()

    def sink(row: dict[str, Any]) -> None:
        rows.append(row)
        if row["ok"] and row["round"] >= 0:
            tracker.add(row["cell"], row["wall_ns"], row["epoch"], row["done_unix_ns"])

    session = Session(units=units, executor=FakeExecutor(machine.wall_ns), sink=sink,
                      runs=target.min_runs, warmup=warmup, seed=seed, clock=machine.clock,
                      epoch_runs=epoch_runs(target.min_runs, len(units)))

    def new_epoch() -> None:  # nothing to evict: a new placement is a new draw of its effect
        machine.new_placement()
        session.epoch += 1
    session.prepare = new_epoch  # type: ignore[method-assign]
    session.measure()
    if target.adaptive:
        run_batches(session, tracker, lambda: (machine.clock() - t0) / 1e9)
    else:
        tracker.measure_widths(tracker.scored(session.failures), session.failures)
    return tracker, rows
