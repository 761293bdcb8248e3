"""One replicate count: every interval a report, the gate and compare make takes the run's own
`measure.bootstrap` (fewer only for very many samples: summary.choose_b). Changing it in a
saved run's run.json moves every table's draws to it — none keeps a count of its own."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gostartbench import results
from gostartbench.analysis import analyse
from gostartbench.analysis.summary import choose_b
from gostartbench.report import containers_text
from gostartbench.stats import intervals, resample
from tests.conftest import REPO


def _with_bootstrap(src: Path, dst: Path, b: int) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("plots", "report.*"))
    run = json.loads((dst / "run.json").read_text())
    run["settings"]["measure"]["bootstrap"] = b
    (dst / "run.json").write_text(json.dumps(run))
    return dst


def _record(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every replicate count drawn: by blocks (intervals._draws) and by runs (resample)."""
    seen: list[int] = []

    def spy(fn: Callable[..., np.ndarray], at: int) -> Callable[..., np.ndarray]:
        def wrapped(*args: Any, **kw: Any) -> np.ndarray:
            seen.append(int(args[at]))
            return fn(*args, **kw)
        return wrapped

    monkeypatch.setattr(intervals, "_draws", spy(intervals._draws, 1))
    monkeypatch.setattr(resample, "bootstrap_medians", spy(resample.bootstrap_medians, 1))
    monkeypatch.setattr(resample, "paired_ratio_replicates",
                        spy(resample.paired_ratio_replicates, 2))
    return seen


@pytest.mark.parametrize("b", [700, 300])
def test_every_table_of_a_report_draws_the_runs_own_replicate_count(
        b: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the example run: summary, effects, phases and stages, both instruments, modules, the
    # knobs' phase and module effects, carry-over; the container run: prewarm and libc tables
    for name in ("example", "containers"):
        run = _with_bootstrap(REPO / "results" / name, tmp_path / name, b)
        seen = _record(monkeypatch)
        data = results.load(run)
        a = analyse(data)
        containers_text.section(a)
        want = choose_b(len(data.timed), b)
        assert want == b  # these runs are small enough for the full count
        assert seen, name
        assert set(seen) == {want}, (name, sorted(set(seen)))
        assert set(a.summary["bootstrap_b"]) == {want}
        monkeypatch.undo()
