"""compare: runs side by side, unmatched cells listed, benchstat's text format round-trips;
and a run with crashing and hanging programs goes on and says why."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from gostartbench.cli import main
from tests.conftest import FIXTURES, GOAPPS, skip_or_fail


def _run(tmp: Path, name: str, body: str, expect_code: int = 0) -> Path:
    m = tmp / f"{name}.yaml"
    m.write_text(body)
    out = tmp / name
    r = subprocess.run([sys.executable, "-m", "gostartbench", "run", "-m", str(m), "--out",
                        str(out)], capture_output=True, text=True, timeout=900, check=False)
    assert r.returncode == expect_code, r.stdout + r.stderr
    return out


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("cmp")
    common = f"""version: 1
apps: {{hello: {{path: {GOAPPS}/hello, expect: {{stdout: "Hello, Go!"}}}}}}
measure: {{runs: 8, warmup: 1, inittrace: false, phases: false}}
"""
    a = _run(tmp, "a", common + 'axes: {ldflags: ["", "-s -w"]}\n')
    b = _run(tmp, "b", common + 'axes: {ldflags: [""], buildmode: [exe, pie]}\n'
             .replace("ldflags: [\"\"], ", "ldflags: [\"\"], "))
    return a, b


def _parse_benchfmt(text: str) -> list[dict[str, Any]]:
    """A parser of Go's benchmark format (golang.org/design/14313-benchmark-format):
    `key: value` configuration lines, `Benchmark<Name> <N> <value> <unit> …` result lines."""
    config: dict[str, str] = {}
    out = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("Unit "):
            continue
        m = re.match(r"^([a-z][^:\s]*): *(.*)$", line)
        if m:
            config[m.group(1)] = m.group(2)
            continue
        f = line.split()
        assert f[0].startswith("Benchmark") and f[1].isdigit(), line
        assert len(f) % 2 == 0, line
        metrics = {f[i + 1]: float(f[i]) for i in range(2, len(f), 2)}
        out.append({"name": f[0], "iters": int(f[1]), "config": dict(config), **metrics})
    return out


def test_compare_lists_mismatched_cells(two_runs: tuple[Path, Path],
                                        capsys: pytest.CaptureFixture[str]) -> None:
    a, b = two_runs
    assert main(["compare", str(a), str(b)]) == 0
    md = capsys.readouterr().out
    assert "## Cells not in every run" in md
    # a's cells have only ldflags in their ids, b's also buildmode: none match → all listed
    ids_a = set(pd.read_csv(a / "cells.csv")["cell"])
    ids_b = set(pd.read_csv(b / "cells.csv")["cell"])
    for cid in ids_a ^ ids_b:
        assert cid in md
    assert main(["compare", str(a), str(a), "--format", "csv"]) == 0
    csv = capsys.readouterr().out
    df = pd.read_csv(pd.io.common.StringIO(csv), comment="#")
    assert len(df) == len(ids_a) and (df["B_ratio"] == 1.0).all()
    assert not df["B_significant"].any()


def test_benchstat_format_round_trips(two_runs: tuple[Path, Path],
                                      capsys: pytest.CaptureFixture[str]) -> None:
    a, b = two_runs
    assert main(["compare", str(a), str(b), "--format", "benchstat"]) == 0
    rows = _parse_benchfmt(capsys.readouterr().out)
    for run in (a, b):
        s = pd.read_csv(run / "samples.csv")
        s = s[s["ok"] & (s["round"] >= 0)]
        mine = [r for r in rows if r["config"]["gsbrun"] == run.name]
        assert len(mine) == len(s)
        assert sorted(r["ns/op"] for r in mine) == sorted(float(x) for x in s["wall_ns"])
        assert all(r["iters"] == 1 and r["size-B"] > 1e6 for r in mine)
        assert mine[0]["config"]["goos"] == "linux"


def test_compare_rejects_a_non_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", str(tmp_path), str(tmp_path)]) == 2
    assert "not a run folder" in capsys.readouterr().err


def test_crash_and_hang_cells_fail_and_the_run_goes_on(tmp_path: Path) -> None:
    d = _run(tmp_path, "faulty", f"""version: 1
apps:
  hello: {{path: {GOAPPS}/hello, expect: {{stdout: "Hello, Go!"}}}}
  crash: {{path: {FIXTURES}/crash}}
  abort: {{path: {FIXTURES}/crash, args: ["-signal"]}}
  hang: {{path: {FIXTURES}/hang}}
  broken: {{path: {FIXTURES}/compileerr}}
measure: {{runs: 6, warmup: 1, timeout_s: 1, inittrace: false, phases: false}}
""", expect_code=1)
    cells = pd.read_csv(d / "cells.csv", keep_default_na=False).set_index("app")
    assert cells.loc["hello", "status"] == "ok"
    assert "exit code 2" in cells.loc["crash", "reason"]
    assert "SIGABRT" in cells.loc["abort", "reason"]
    assert "timed out after 1s" in cells.loc["hang", "reason"]
    assert "go build failed" in cells.loc["broken", "reason"]
    assert cells.loc["broken", "status"] == "failed"
    s = pd.read_csv(d / "samples.csv")
    assert (s[s["cell"].str.startswith("hello")]["ok"]).sum() == 6
    assert (s[s["cell"].str.startswith("hang")]).shape[0] == 1  # stopped at its first failure


# benchstat itself, pinned (golang.org/x/perf), built with the project's toolchain.
BENCHSTAT = "golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da"


def _benchstat() -> Path:
    from gostartbench.host.tools import cache_dir, get_toolchain, go_env
    from tests.conftest import TOOLCHAIN

    tc = get_toolchain(TOOLCHAIN)
    gobin = cache_dir() / "gobin"
    p = subprocess.run([str(tc.go), "install", BENCHSTAT], capture_output=True, text=True,
                       env=go_env(tc.goroot, {"GOBIN": str(gobin)}), timeout=600, check=False)
    if p.returncode != 0:
        skip_or_fail("benchstat", f"go install {BENCHSTAT} failed: {p.stderr.strip()[-300:]}")
    return gobin / "benchstat"


def test_real_benchstat_reads_two_runs(tmp_path: Path) -> None:
    """The real benchstat on `compare --format benchstat` of two real runs of one matrix: its
    table names every matched cell, with both runs as columns."""
    body = f"""version: 1
apps: {{hello: {{path: {GOAPPS}/hello, expect: {{stdout: "Hello, Go!"}}}}}}
axes: {{ldflags: ["", "-s -w"]}}
measure: {{runs: 8, warmup: 1, inittrace: false, phases: false, calibration: off}}
"""
    a, b = _run(tmp_path, "base", body), _run(tmp_path, "head", body)
    text = subprocess.run([sys.executable, "-m", "gostartbench", "compare", str(a), str(b),
                           "--format", "benchstat"], capture_output=True, text=True,
                          check=True).stdout
    (tmp_path / "bench.txt").write_text(text)
    p = subprocess.run([str(_benchstat()), "-col", "gsbrun", str(tmp_path / "bench.txt")],
                       capture_output=True, text=True, timeout=120, check=False)
    assert p.returncode == 0, p.stderr
    table = p.stdout
    assert "base" in table and "head" in table and "vs base" in table
    cells = set(pd.read_csv(a / "cells.csv")["cell"]) & set(pd.read_csv(b / "cells.csv")["cell"])
    assert len(cells) == 2
    for cell in cells:
        assert f"cell={cell}/timer=spawn" in table, table
