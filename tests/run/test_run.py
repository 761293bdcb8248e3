"""The main job end to end on a small real matrix: `gostartbench run` (pytest +
pytest-benchmark over bench/), every file of the run folder, statistics equal to pandas' own."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import FIXTURES, GOAPPS, WriteMatrix, gsb, require

RUNS = 12

MATRIX = f"""
version: 1
apps:
  hello:
    path: {GOAPPS}/hello
    args: ["<script>alert(1)</script>"]
    expect: {{exit: 0, stdout: "Hello, Go!"}}
  wrong:
    path: {FIXTURES}/wrongout
    expect: {{exit: 0, stdout: "Hello, Go!"}}
axes:
  buildmode: [exe, pie]
run:
  cache: [warm, cold]
baseline: {{buildmode: exe}}
measure: {{runs: {RUNS}, warmup: 2, timer: both, inittrace_runs: 2}}
"""


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, str]:
    require("hyperfine")
    d = tmp_path_factory.mktemp("run")
    (d / "matrix.yaml").write_text(MATRIX)
    p = gsb("run", "-m", str(d / "matrix.yaml"), "--out", str(d / "r"))
    return d / "r", p.returncode, p.stdout + p.stderr


def test_every_file_is_written(run_dir: tuple[Path, int, str]) -> None:
    d, code, out = run_dir
    assert code == 1, out  # a cell failed: exit 1, results still written
    for f in ("run.json", "cells.csv", "samples.csv", "summary.csv", "effects.csv",
              "inittrace.csv", "pytest-benchmark.json", "report.md", "report.html",
              "matrix.yaml"):
        assert (d / f).stat().st_size > 0, f
    for name in ("p50_per_cell", "distribution", "size_vs_p50", "main_effects", "warm_vs_cold",
                 "init_by_package", "rss_vs_p50", "timers"):
        for ext in ("png", "svg"):
            assert (d / "plots" / f"{name}.{ext}").stat().st_size > 1000, name
    run = json.loads((d / "run.json").read_text())
    assert run["status"] == "cells_failed" and run["failure"] is None  # the harness worked
    assert run["host"]["cpu_model"] and run["host"]["kernel"]
    assert run["harness_floor"]["noop_p50_ms"] > 0
    assert run["cells"] == {"total": 8, "ok": 4, "failed": 4, "skipped": 0}


def test_samples_and_summary(run_dir: tuple[Path, int, str]) -> None:
    d, _, _ = run_dir
    s = pd.read_csv(d / "samples.csv")
    spawn = s[(s["timer"] == "spawn") & s["ok"]]
    assert len(spawn) == RUNS * 4  # runs × ok cells; warmups not recorded
    assert set(spawn.groupby("cell").size()) == {RUNS}
    hf = s[s["timer"] == "hyperfine"]
    assert len(hf) == RUNS * 2  # warm cells only
    summ = pd.read_csv(d / "summary.csv")
    for (cell, timer), g in s[s["ok"] & (s["round"] >= 0)].groupby(["cell", "timer"]):
        row = summ[(summ["cell"] == cell) & (summ["timer"] == timer)].iloc[0]
        assert row["p50_ms"] == pytest.approx(g["wall_ns"].median() / 1e6, rel=1e-5)
        assert row["stddev_ms"] == pytest.approx(g["wall_ns"].std() / 1e6, rel=1e-5)
    sp = summ[summ["timer"] == "spawn"]
    # the child's own RSS: a 2 MB hello, not the harness's tens of MB
    assert (sp["maxrss_p50_bytes"] < 8e6).all()
    cold = sp[sp["cache"] == "cold"]
    warm = sp[sp["cache"] == "warm"]
    assert (cold["majflt_p50"] > 0).all() and (warm["majflt_p50"] == 0).all()


def test_failed_cell_has_its_reason(run_dir: tuple[Path, int, str]) -> None:
    d, _, out = run_dir
    cells = pd.read_csv(d / "cells.csv", keep_default_na=False)
    bad = cells[cells["app"] == "wrong"]
    assert (bad["status"] == "failed").all()
    assert bad["reason"].str.contains("Goodbye, Go!").all()
    assert (cells[cells["app"] == "hello"]["status"] == "ok").all()
    assert "Goodbye" in out


def test_pytest_benchmark_json_has_one_case_per_cell(run_dir: tuple[Path, int, str]) -> None:
    d, _, _ = run_dir
    data = json.loads((d / "pytest-benchmark.json").read_text())
    benches = {b["param"]: b for b in data["benchmarks"]}
    summ = pd.read_csv(d / "summary.csv")
    for cell, b in benches.items():
        assert b["extra_info"]["app"] == "hello" and "buildmode" in b["extra_info"]
        assert b["params"] == {"gsb_cell": cell}
        row = summ[(summ["cell"] == cell) & (summ["timer"] == "spawn")].iloc[0]
        assert b["stats"]["median"] * 1e3 == pytest.approx(row["p50_ms"], rel=1e-6)
        assert b["stats"]["rounds"] == RUNS


def test_report_is_self_contained_and_escaped(run_dir: tuple[Path, int, str]) -> None:
    d, _, _ = run_dir
    html = (d / "report.html").read_text()
    assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "http://" not in html and "https://" not in html and "src='data:image/png" in html
    md = (d / "report.md").read_text()
    assert "## Findings" in md and "p50_per_cell.png" in md


def test_report_is_redrawn_from_files(run_dir: tuple[Path, int, str], tmp_path: Path) -> None:
    d, _, _ = run_dir
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(d, copy)
    for f in ("summary.csv", "effects.csv", "report.html"):
        (copy / f).unlink()
    p = gsb("report", str(copy))
    assert p.returncode == 0, p.stderr
    a = pd.read_csv(d / "summary.csv")
    b = pd.read_csv(copy / "summary.csv")
    assert list(a["p50_ms"]) == list(b["p50_ms"])


def test_results_load_is_typed_and_refuses_a_newer_major(run_dir: tuple[Path, int, str],
                                                         tmp_path: Path) -> None:
    """results.load reads a run once (typed); a run folder written by a newer major version
    of the schema is refused in one line (exit 2), an older one without the key is read."""
    import shutil

    from gostartbench import results

    d, _, _ = run_dir
    data = results.load(d)
    assert data.run["schema_version"] == results.SCHEMA_VERSION
    assert data.settings.min_effect == 0.01 and "buildmode" in data.settings.axes
    assert len(data.timed) == len(data.samples[data.samples["ok"]
                                               & (data.samples["round"] >= 0)])
    copy = tmp_path / "newer"
    shutil.copytree(d, copy)
    run = json.loads((copy / "run.json").read_text())
    run["schema_version"] = "2.0"
    (copy / "run.json").write_text(json.dumps(run))
    p = gsb("report", str(copy))
    assert p.returncode == 2 and p.stderr.strip().count("\n") == 0, p.stderr
    assert "schema 2.0" in p.stderr and "upgrade gostartbench" in p.stderr
    del run["schema_version"]
    (copy / "run.json").write_text(json.dumps(run))
    assert results.load(copy).id == run["id"]  # no version: read as 1.0


def test_sequential_order_is_real_spawns_per_round(write_matrix: WriteMatrix,
                                                   tmp_path: Path) -> None:
    p = write_matrix(f"""
    version: 1
    apps: {{hello: {{path: {GOAPPS}/hello, expect: {{stdout: "Hello, Go!"}}}}}}
    axes: {{ldflags: ["", "-s -w"]}}
    measure: {{runs: 5, warmup: 1, order: sequential, inittrace: false, phases: false}}
    """)
    r = gsb("run", "-m", str(p), "--out", str(tmp_path / "r"), "--no-report")
    assert r.returncode == 0, r.stdout + r.stderr
    s = pd.read_csv(tmp_path / "r" / "samples.csv")
    # sequential: all of the first cell's rounds come before the second's
    cells = list(s["cell"])
    assert cells == sorted(cells, key=cells.index) and len(set(cells)) == 2
    assert len(s) == 10


def test_hyperfine_timer_alone(write_matrix: WriteMatrix, tmp_path: Path) -> None:
    require("hyperfine")
    p = write_matrix(f"""
    version: 1
    apps: {{hello: {{path: {GOAPPS}/hello, expect: {{stdout: "Hello, Go!"}}}}}}
    run: {{cache: [warm, cold]}}
    measure: {{runs: 6, warmup: 1, timer: hyperfine, inittrace: false, phases: false}}
    """)
    r = gsb("run", "-m", str(p), "--out", str(tmp_path / "r"))
    assert r.returncode == 0, r.stdout + r.stderr
    cells = pd.read_csv(tmp_path / "r" / "cells.csv", keep_default_na=False)
    cold = cells[cells["cache"] == "cold"].iloc[0]
    assert cold["status"] == "skipped" and "warm cells only" in cold["reason"]
    s = pd.read_csv(tmp_path / "r" / "samples.csv")
    assert set(s["timer"]) == {"hyperfine"} and len(s) == 6
    data = json.loads((tmp_path / "r" / "pytest-benchmark.json").read_text())
    assert [b["param"] for b in data["benchmarks"]] == ["hello_go1.27.3_warm"]
