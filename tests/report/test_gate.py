"""The CI gate on real runs: a program made 8% slower fails `compare --fail-on 'startup>+3%'`,
an A/A pair of runs passes it, and bad rules are one-line usage errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from gostartbench.cli import main
from tests.conftest import GOAPPS

REF = "noop_go1.27.3"  # the unchanged program both runs time: the gate's reference
CELL = "delay_go1.27.3"


def _run(tmp: Path, name: str, delay_us: int) -> Path:
    m = tmp / f"{name}.yaml"
    m.write_text(f"""version: 1
toolchains: ["1.27.3"]
apps:
  delay: {{path: {GOAPPS}/delay, env: {{GSB_DELAY_US: "{delay_us}"}}}}
  noop: {{path: {GOAPPS}/noop}}
measure: {{precision: 0.01, runs: 100, max_runs: 10000, warmup: 10, inittrace: false,
           phases: false, calibration: "off"}}
""")
    out = tmp / name
    r = subprocess.run([sys.executable, "-m", "gostartbench", "run", "-m", str(m), "--out",
                        str(out)], capture_output=True, text=True, timeout=900, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """BASE, an A/A repeat of it, and NEW: the same program busy-waiting 8% of BASE's P50
    longer in init. Each run to ±1% per cell (a gate's runs need a precision target: on this
    shared machine 300 fixed runs leave ±4%)."""
    tmp = tmp_path_factory.mktemp("gate")
    base = _run(tmp, "base", 0)
    s = pd.read_csv(base / "summary.csv").set_index("cell")
    slower_us = round(0.08 * float(s.loc[CELL, "p50_ms"]) * 1000)
    again = _run(tmp, "again", 0)
    new = _run(tmp, "new", slower_us)
    return base, again, new


def test_a_program_made_8_percent_slower_fails_the_gate(
        runs: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    base, _, new = runs
    code = main(["compare", str(base), str(new), "--fail-on", "startup>+3%",
                 "--fail-on", "size>+5%", "--reference", REF])
    md = capsys.readouterr().out
    assert code == 1, md
    assert md.startswith("## ❌ Startup gate failed")
    failed = md.split("<details>")[0]
    assert "`startup>+3%`" in failed and "delay" in failed
    assert "size" not in failed.split("|---|")[-1]  # same binary: no size change
    assert "<summary>Every cell</summary>" in md  # the full table, folded for a PR comment


def test_an_a_a_pair_passes_the_gate(runs: tuple[Path, Path, Path],
                                     capsys: pytest.CaptureFixture[str]) -> None:
    base, again, _ = runs
    code = main(["compare", str(base), str(again), "--fail-on", "startup>+3%",
                 "--fail-on", "rss>+10%", "--reference", REF])
    md = capsys.readouterr().out
    assert code == 0, md
    assert md.startswith("## ✅ Startup gate passed")


@pytest.mark.parametrize("args,key", [
    (["--fail-on", "startup>3"], "--fail-on"),
    (["--fail-on", "speed>+3%"], "--fail-on"),
    (["--fail-on", "startup>+3%", "--reference", "nope"], "--reference"),
    (["--fail-on", "startup>+3%", "--format", "benchstat"], "--fail-on"),
])
def test_bad_gate_arguments_are_usage_errors(runs: tuple[Path, Path, Path], args: list[str],
                                             key: str, capsys: pytest.CaptureFixture[str]
                                             ) -> None:
    base, again, _ = runs
    assert main(["compare", str(base), str(again), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and key in err, err


def test_compare_and_the_gate_give_the_same_interval_for_the_same_pair(
        runs: tuple[Path, Path, Path]) -> None:
    """One rule for a cross-run ratio (stats.intervals.cross_run_ratio): the ci95 `compare`
    prints for a cell is the one `compare --fail-on` judges."""
    from gostartbench.report.compare import compare_table, load_runs
    from gostartbench.report.gate import gate
    from gostartbench.report.rules import parse_rule

    base, _, new = runs
    a = load_runs([base, new])
    table, _ = compare_table(a)
    row = table[(table["cell"] == CELL) & (table["timer"] == "spawn")].iloc[0]
    label = str(row["label"])
    found = [f for f in gate(a[0], a[1], [parse_rule("startup>+3%")])
             if f.kind == "cell" and f.what == label]
    assert len(found) == 1
    f = found[0]
    assert (f.ratio, f.low, f.high) == pytest.approx(
        (row["B_ratio"], row["B_ratio_ci95_low"], row["B_ratio_ci95_high"]), rel=1e-12)
