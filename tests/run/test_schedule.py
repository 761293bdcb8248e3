"""The schedule and the session: interleaving, isolation, resume, cold eviction (a fake
executor: scheduling only)."""

from __future__ import annotations

import itertools
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from gostartbench.measure import FakeExecutor, RunSpec
from gostartbench.run.schedule import Session, Unit, balanced_order, schedule


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


@pytest.mark.parametrize("k", [1, 2, 3, 5, 8])
def test_the_balanced_order_has_every_cell_follow_every_cell_equally_often(k: int) -> None:
    cells = [f"c{i}" for i in range(k)]
    order = balanced_order(cells, 3 * k, random.Random(k), start="c0")
    assert Counter(order) == dict.fromkeys(cells, 3 * k)  # every cell equally often
    pairs = Counter(itertools.pairwise([*order, order[0]]))  # with the closing edge
    assert set(pairs) == set(itertools.product(cells, repeat=2))  # self-pairs included
    assert set(pairs.values()) == {3}, pairs
    assert order[0] == "c0" and order[k * k] == "c0"  # every stretch starts at `start`
    assert balanced_order(cells, 3 * k, random.Random(k), "c0") == order  # seeded
    if k > 2:
        assert balanced_order(cells, 3 * k, random.Random(k + 1), "c0") != order


def test_the_balanced_order_fills_a_partial_stretch_with_shuffled_rounds() -> None:
    order = balanced_order(["a", "b", "c"], 7, random.Random(1))
    assert Counter(order) == {"a": 7, "b": 7, "c": 7}
    tail = order[18:]  # 7 = 2 stretches of 3 rounds, then one shuffled round
    assert sorted(tail) == ["a", "b", "c"]


def test_each_sample_names_the_start_before_it(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("gostartbench.run.schedule.normalise_warm", lambda ps: None)
    units = _units(tmp_path, ["a", "b", "c"])
    rows: list[dict[str, Any]] = []
    ex = FakeExecutor(lambda spec, n: 1000 + n)
    s = Session(units=units, executor=ex, sink=rows.append, runs=6, warmup=1, seed=3)
    s.measure()
    ran = [Path(spec.argv[0]).name for spec in ex.calls]  # every start, warmups included
    timed = [r for r in rows if r["round"] >= 0]
    assert len(timed) == 18
    for r in timed:
        i = next(i for i, spec in enumerate(ex.calls) if spec.argv[0].endswith(r["cell"])
                 and 1000 + i == r["wall_ns"])
        assert r["after_cell"] == (ran[i - 1] if i else "")
    # the warmups ran first (after the read-in, whose first start has none), so every timed
    # start has a predecessor
    assert all(r["after_cell"] for r in timed)
