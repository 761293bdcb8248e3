"""`gostartbench gate`: base and head built from their own trees and timed in one run. A head
made slower fails it; a head that does not build fails it; a new app, a base whose output the
head's matrix no longer expects are reported, not failed; `rev` is an axis like any other."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from gostartbench.cli import main

from .conftest import GOAPPS

HELLO = (GOAPPS / "hello" / "main.go").read_text()
SLOW_INIT = """
func init() {
	t0 := time.Now()
	for time.Since(t0) < 2*time.Millisecond {
	}
}
"""


def _tree(root: Path, apps: dict[str, str], matrix: str | None = None) -> Path:
    """A checkout: go.mod, one folder per app (its main.go), and bench/gate.yaml."""
    root.mkdir(parents=True)
    (root / "go.mod").write_text("module example.test/gate\n\ngo 1.21\n")
    for name, src in apps.items():
        (root / name).mkdir()
        (root / name / "main.go").write_text(src)
    if matrix is not None:
        (root / "bench").mkdir()
        (root / "bench" / "gate.yaml").write_text(matrix)
    return root


def _slower(src: str) -> str:
    """hello with a 2 ms busy-wait in init (hello starts in ~1–3 ms here: +60% or more)."""
    src = src.replace('import "fmt"', 'import (\n\t"fmt"\n\t"time"\n)')
    return src + SLOW_INIT


def _say(text: str) -> str:
    return f'package main\n\nimport "fmt"\n\nfunc main() {{ fmt.Println("{text}") }}\n'


def test_a_slower_head_fails_and_rev_is_an_axis(tmp_path: Path) -> None:
    assert 'import "fmt"' in HELLO
    matrix = """version: 1
apps:
  hello: {path: ../hello, expect: {stdout: "Hello, Go!"}}
measure: {precision: 0.05, runs: 30, max_runs: 20000, budget_s: 40, warmup: 2,
          inittrace: false, phases: false, calibration: "off"}
"""
    base = _tree(tmp_path / "base", {"hello": HELLO})
    head = _tree(tmp_path / "head", {"hello": _slower(HELLO)}, matrix)
    out = tmp_path / "run"
    code = main(["gate", "--base", str(base), "--head", str(head), "--out", str(out),
                 "--fail-on", "startup>+3%", "--fail-on", "size>+50%",
                 "-o", str(tmp_path / "gate.md")])
    md = (tmp_path / "gate.md").read_text()
    assert code == 1, md
    assert md.startswith("## ❌ Startup gate failed")
    assert "hello" in md.split("<details>")[0] and "`startup>+3%`" in md
    # rev is an axis of the run like any other: cells, summary and effects read it.
    cells = pd.read_csv(out / "cells.csv", dtype=str)
    assert sorted(cells["rev"]) == ["base", "head"]
    run = json.loads((out / "run.json").read_text())
    assert run["settings"]["axes"][0] == "rev" and run["settings"]["baseline"] == {"rev": "base"}
    assert run["stopping"]["timing_s"] >= 24 or any(
        c["stopped"] != "precision" for c in run["stopping"]["cells"].values())
    eff = pd.read_csv(out / "effects.csv", dtype={"value": str})
    assert ((eff["axis"] == "rev") & (eff["value"] == "head")).any()


def test_gate_faults_are_reported_per_cell(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """In one run: an unchanged app (judged), an app new in head, an app whose output the
    head's matrix changed (the base cell fails: reported, not failed), and an app whose head
    does not compile (fails the gate). Never a traceback."""
    matrix = """version: 1
apps:
  same: {path: ../same, expect: {stdout: "same"}}
  added: {path: ../added, expect: {stdout: "added"}}
  changed: {path: ../changed, expect: {stdout: "new"}}
  broken: {path: ../broken, expect: {stdout: "ok"}}
measure: {runs: 10, warmup: 1, inittrace: false, phases: false, calibration: "off"}
"""
    base = _tree(tmp_path / "base", {"same": _say("same"), "changed": _say("old"),
                                     "broken": _say("ok")})
    head = _tree(tmp_path / "head", {"same": _say("same"), "added": _say("added"),
                                     "changed": _say("new"),
                                     "broken": "package main\n\nfunc main() { nope() }\n"},
                 matrix)
    code = main(["gate", "--base", str(base), "--head", str(head), "--out",
                 str(tmp_path / "run"), "--no-report", "-o", str(tmp_path / "gate.md")])
    err = capsys.readouterr().err
    md = (tmp_path / "gate.md").read_text()
    assert code == 1, md
    assert "Traceback" not in err
    assert md.startswith("## ❌ Startup gate failed: the head does not build or run")
    head_rows = md.split("| head cell | why |")[1].split("\n\n")[0]
    assert "broken" in head_rows and "nope" in head_rows
    assert "same" not in head_rows and "changed" not in head_rows
    assert "New in head (no base to compare with): added" in md
    base_part = md.split("Base cells that did not build or run")[1]
    assert "changed" in base_part.split("\n\n")[1]


def test_gate_input_errors_are_one_line(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    base = _tree(tmp_path / "base", {"hello": HELLO})
    head = _tree(tmp_path / "head", {"hello": HELLO}, "version: 1\napps: {hello: {path: "
                 "../hello}}\naxes: {rev: [base, head]}\n")
    for argv, key in (
        (["--base", str(tmp_path / "nope"), "--head", str(head)], "--base"),
        (["--base", str(base), "--head", str(head), "--fail-on", "startup>3"], "--fail-on"),
        (["--base", str(base), "--head", str(head)], "rev"),
    ):
        assert main(["gate", *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and key in err, err
    shutil.rmtree(tmp_path)
