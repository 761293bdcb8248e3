"""The schedule and the session: interleaving, isolation, resume, cold eviction (a fake
executor: scheduling only)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gostartbench.measure import FakeExecutor, RunSpec
from gostartbench.run.schedule import Session, Unit, schedule


def _units(tmp_path: Path, names: list[str], cache: str = "warm") -> list[Unit]:
    out = []
    for n in names:
        b = tmp_path / n
        b.write_bytes(b"\x7fELF" + b"\0" * 100)
        out.append(Unit(cell=n, binary=b, spec=RunSpec(argv=(str(b),)), cache=cache))
    return out


def test_interleaved_schedule_visits_every_cell_once_per_round() -> None:
    cells = [f"c{i}" for i in range(6)]
    tasks = schedule(cells, runs=10, warmup=2, order="interleaved", seed=7)
    assert len(tasks) == 12 * 6
    rounds: dict[int, list[str]] = {}
    for t in tasks:
        rounds.setdefault(t.round, []).append(t.cell)
    assert sorted(rounds) == list(range(-2, 10))
    assert all(sorted(v) == cells for v in rounds.values())
    assert len({tuple(v) for v in rounds.values()}) > 1  # shuffled afresh
    assert schedule(cells, 10, 2, "interleaved", seed=7) == tasks  # reproducible
    assert schedule(cells, 10, 2, "interleaved", seed=8) != tasks



def test_sequential_schedule_groups_cells() -> None:
    tasks = schedule(["a", "b"], runs=3, warmup=1, order="sequential")
    assert [(t.cell, t.round) for t in tasks] == [
        ("a", -1), ("a", 0), ("a", 1), ("a", 2), ("b", -1), ("b", 0), ("b", 1), ("b", 2)]



def test_session_records_runs_not_warmups_and_isolates_failures(tmp_path: Path) -> None:
    rows: list[dict[str, Any]] = []
    units = _units(tmp_path, ["good1", "bad", "good2"])
    fail_at = {"bad": 3}
    count: dict[str, int] = {}

    def fail(spec: RunSpec, n: int) -> str:
        name = Path(spec.argv[0]).name
        count[name] = count.get(name, 0) + 1
        return "boom" if count[name] == fail_at.get(name, -1) else ""

    ex = FakeExecutor(lambda spec, n: 1_000_000 + n, fail)
    s = Session(units=units, executor=ex, sink=rows.append, runs=20, warmup=2)
    failures = s.measure()
    assert failures == {"bad": "boom"}
    ok = [r for r in rows if r["ok"]]
    assert sum(r["cell"] == "good1" for r in ok) == 20
    assert sum(r["cell"] == "good2" for r in ok) == 20
    assert all(r["round"] >= 0 for r in ok)  # warmups not recorded
    bad = [r for r in rows if r["cell"] == "bad"]
    assert bad[-1]["ok"] is False and bad[-1]["reason"] == "boom"
    assert count["bad"] == 3  # stopped at its first failure



def test_resume_measures_only_what_is_missing(tmp_path: Path) -> None:
    units = _units(tmp_path, ["a", "b"])
    done = {("a", r, "spawn") for r in range(10)} | {("b", r, "spawn") for r in range(4)}
    rows: list[dict[str, Any]] = []
    ex = FakeExecutor(lambda spec, n: 1000)
    s = Session(units=units, executor=ex, sink=rows.append, runs=10, warmup=0, done=done)
    s.measure()
    assert sorted((r["cell"], r["round"]) for r in rows) == [("b", r) for r in range(4, 10)]



def test_cold_cells_evict_before_each_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                          ) -> None:
    monkeypatch.setattr("gostartbench.run.schedule.normalise_warm", lambda ps: None)
    warm = _units(tmp_path, ["x"])
    cold = [Unit(cell="x_cold", binary=warm[0].binary, spec=warm[0].spec, cache="cold")]
    ex = FakeExecutor(lambda s, n: 1)
    s = Session(units=warm + cold, executor=ex, sink=lambda r: None, runs=5, warmup=1)
    s.measure()
    assert len(ex.calls) == 12
    assert ex.evicted == [warm[0].binary] * 6  # every cold run, warmup included
    assert ex.read_back == [warm[0].binary] * 6  # read back: a warm cell shares the binary
