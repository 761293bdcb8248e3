"""The waterfall as production needs it: a server timed to ready on a TCP port gets every phase
of its start (main ends when the port accepts), and a binary whose marks never fire is named —
in run.json `phases.cells_without_marks`, the summary's warnings and the report — never drawn
with a traced total made of the phases that were left."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from gostartbench.cli import main
from tests.conftest import WriteMatrix, require

REQUIRED = ("exec", "pre_entry", "runtime_entry", "bootstrap", "package_init", "main")


def _phase_row(out: Path, start: str) -> str:
    """The report's phase-table row of a cell."""
    md = (out / "report.md").read_text().split("## Where the start goes", 1)[1]
    return next(ln for ln in md.splitlines() if ln.startswith(start))


def test_a_server_ready_on_a_port_gets_every_phase(write_matrix: WriteMatrix,
                                                  tmp_path: Path) -> None:
    m = write_matrix("""version: 1
apps:
  httpd:
    path: @GOAPPS@/httpd
    args: ["-addr", "127.0.0.1:18941"]
    ready: {tcp: 18941}
measure: {runs: 10, warmup: 1, inittrace: false, phases: true, phase_runs: 4,
          calibration: "off"}
""")
    out = tmp_path / "run"
    assert main(["run", "-m", str(m), "--out", str(out)]) == 0
    ph = pd.read_csv(out / "phases.csv")
    ph = ph[ph["stage"].isna()]
    assert set(REQUIRED) <= set(ph["phase"]), sorted(set(ph["phase"]))
    assert "teardown" not in set(ph["phase"])  # a start timed to ready ends there
    run = json.loads((out / "run.json").read_text())
    assert run["phases"]["cells_without_marks"] == {}
    row = _phase_row(out, "| httpd")
    assert "incomplete" not in row and "not traced" not in row


def test_a_binary_whose_marks_never_fire_is_named_not_drawn(write_matrix: WriteMatrix,
                                                            tmp_path: Path) -> None:
    """cgo, externally linked, -s -w: the runtime's marks do not fire (seen here on x86-64,
    Go 1.27.3). Where they do fire on another toolchain, the test says so and checks the
    complete waterfall instead."""
    require("cc")
    m = write_matrix("""version: 1
apps:
  cgo: {path: @GOAPPS@/cgo}
axes:
  ldflags: ["-s -w"]
  linkmode: [external]
  cgo: [1]
measure: {runs: 6, warmup: 1, inittrace: false, phases: true, phase_runs: 3,
          calibration: "off"}
""")
    out = tmp_path / "run"
    assert main(["run", "-m", str(m), "--out", str(out)]) == 0
    run = json.loads((out / "run.json").read_text())
    without = run["phases"]["cells_without_marks"]
    row = _phase_row(out, "| cgo")
    s = pd.read_csv(out / "summary.csv").iloc[0]
    if not without:  # every mark fired: a complete start, drawn
        assert "incomplete" not in row
        return
    (_cell, why), = without.items()
    assert "phases not traced" in why or "marks not placed" in why
    assert "incomplete" in row and "not traced" in row
    assert "phases not traced" in str(s["warnings"])
