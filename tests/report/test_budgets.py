"""Budgets — absolute --fail-on rules judged on one run's cells with their intervals — on a real
run: `run --fail-on`, and `compare --fail-on` on NEW. A budget fails only when the whole
interval is past it; what cannot be judged (no package-init runs) is inconclusive, exit 3."""

from __future__ import annotations

from pathlib import Path

import pytest

from gostartbench.cli import main
from gostartbench.errors import EXIT_FAILED, EXIT_INCONCLUSIVE, EXIT_OK
from gostartbench.report.budgets import NO_INITTRACE
from tests.conftest import GOAPPS, WriteMatrix


@pytest.fixture(scope="module")
def judged(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, str]:
    tmp = tmp_path_factory.mktemp("budgets")
    m = tmp / "m.yaml"
    m.write_text(f"""version: 1
apps:
  hello: {{path: {GOAPPS / 'hello'}}}
measure: {{runs: 20, warmup: 2, inittrace: false, phases: false, calibration: "off"}}
""")
    out = tmp / "run"
    code = main(["run", "-m", str(m), "--out", str(out), "--no-report",
                 "--fail-on", "startup>10s", "--fail-on", "size>1kB", "--fail-on", "rss>1GB"])
    return out, code, (out / "budgets.md").read_text()


def test_a_run_fails_the_budget_its_whole_interval_is_past(judged: tuple[Path, int, str]
                                                           ) -> None:
    out, code, md = judged
    assert code == EXIT_FAILED, md
    assert md.startswith("## ❌ Budgets failed: 1 significant change(s)")
    failed = md.split("\n\n")[2]
    assert "`size>1kB`" in failed and "startup>10s" not in failed and "rss>1GB" not in failed
    # the fixed 20 runs gave way to the verdict's 24 s of timing
    import json

    stop = json.loads((out / "run.json").read_text())["stopping"]
    assert stop["caps_gave_way"] and stop["timing_s"] >= 24


def test_budgets_in_compare_and_what_cannot_be_judged(judged: tuple[Path, int, str],
                                                      capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    out, _, _ = judged
    assert main(["compare", str(out), str(out), "--fail-on", "startup>10s"]) == EXIT_OK
    capsys.readouterr()
    assert main(["compare", str(out), str(out), "--fail-on", "init>1s"]) == EXIT_INCONCLUSIVE
    md = capsys.readouterr().out
    assert md.startswith("## ❔ Startup gate inconclusive") and NO_INITTRACE in md


@pytest.mark.parametrize("rule", ["startup>+3%", "init>+2%", "size>3ms", "init[a b]>1ms"])
def test_run_takes_budgets_only(rule: str, write_matrix: WriteMatrix,
                                capsys: pytest.CaptureFixture[str]) -> None:
    m = write_matrix("version: 1\napps: {hello: {path: @GOAPPS@/hello}}\n")
    assert main(["run", "-m", str(m), "--fail-on", rule]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--fail-on" in err, err
