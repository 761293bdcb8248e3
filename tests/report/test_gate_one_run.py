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
from tests.conftest import GOAPPS

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
                 "--fail-on", "size>1kB", "--fail-on", "startup>10s",
                 "-o", str(tmp_path / "gate.md")])
    md = (tmp_path / "gate.md").read_text()
    assert code == 1, md
    assert md.startswith("## ❌ Startup gate failed")
    assert "hello" in md.split("<details>")[0] and "`startup>+3%`" in md
    # budgets judge the head alone: over 1 kB (exact) fails, under 10 s passes
    rows = [ln for ln in md.split("<details>")[0].splitlines() if ln.startswith("| `")]
    assert any(r.startswith("| `size>1kB`") for r in rows)
    assert not any(r.startswith("| `startup>10s`") for r in rows), rows
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


def _busy(src: str, micros: int) -> str:
    """hello with a busy-wait of `micros` µs in init."""
    src = src.replace('import "fmt"', 'import (\n\t"fmt"\n\t"time"\n)')
    return src + SLOW_INIT.replace("2*time.Millisecond", f"{micros}*time.Microsecond")


def test_caps_that_end_the_run_early_never_pass_a_slower_head(tmp_path: Path) -> None:
    """A new user's gate: a small max_runs and a short budget over a ~1-ms program whose head
    busy-waits ~10% longer. The caps would end the timing after a few seconds, before the
    significance rule can call anything; they give way until it can, and the gate does not
    pass."""
    from gostartbench.stats import intervals

    matrix = """version: 1
apps:
  hello: {path: ../hello, expect: {stdout: "Hello, Go!"}}
measure: {precision: 0.02, runs: 20, max_runs: 60, budget_s: 3, warmup: 2,
          inittrace: false, phases: false, calibration: "off"}
"""
    base = _tree(tmp_path / "base", {"hello": HELLO})
    head = _tree(tmp_path / "head", {"hello": _busy(HELLO, 150)}, matrix)
    out = tmp_path / "run"
    code = main(["gate", "--base", str(base), "--head", str(head), "--out", str(out),
                 "--no-report", "--fail-on", "startup>+3%", "-o", str(tmp_path / "gate.md")])
    md = (tmp_path / "gate.md").read_text()
    assert code != 0 and not md.startswith("## ✅"), md
    run = json.loads((out / "run.json").read_text())
    stop = run["stopping"]
    assert stop["verdict_span_s"] == intervals.FULL_SPAN_S and stop["caps_gave_way"], stop
    assert any(c["runs"] > 60 for c in stop["cells"].values()), stop
    samples = pd.read_csv(out / "samples.csv")
    t = samples.loc[samples["ok"] & (samples["round"] >= 0), "done_unix_ns"]
    assert (t.max() - t.min()) / 1e9 >= intervals.FULL_SPAN_S
    assert "max_runs and the budget gave way" in md


def test_what_a_gate_cannot_judge_is_inconclusive_never_passed() -> None:
    """The verdict on findings: a short run, a missing interval and an interval that holds
    both no change and a change past the threshold are inconclusive (exit 3, first line says
    so); a resolved change beyond the rule fails whatever else was not judged."""
    from gostartbench.errors import EXIT_FAILED, EXIT_INCONCLUSIVE, EXIT_OK
    from gostartbench.report import gate, gate_one_run
    from gostartbench.report import rules as gate_rules

    rule = gate_rules.parse_rule("startup>+3%")

    def finding(q: float, lo: float, hi: float, sig: bool, short: str = "") -> gate_rules.Finding:
        return gate_rules.Finding(rule.text, "cell", "hello", 1.0, q, "ms", q, lo, hi, sig,
                            sig and rule.beyond(q), gate_rules.unjudged_why(rule, q, lo, hi, sig,
                                                                      short))

    calm = finding(1.002, 0.99, 1.014, False)  # A/A, narrow: judged, passes
    wide = finding(1.01, 0.97, 1.05, False)  # could be +5%: inconclusive
    short = finding(1.107, 1.088, 1.127, False, gate_rules.SHORT_RUN + ": 4.7 s")
    nan = finding(1.0, float("nan"), float("nan"), False)
    slower = finding(1.10, 1.08, 1.12, True)
    assert not calm.inconclusive and gate_rules.exit_code([calm]) == EXIT_OK
    for f in (wide, short, nan):
        assert f.inconclusive, f
        md = gate.gate_markdown([calm, f], [rule], 0.01, None)
        assert md.startswith("## ❔ Startup gate inconclusive"), md
        assert gate_rules.exit_code([calm, f]) == EXIT_INCONCLUSIVE
    assert "holds both no change" in wide.unjudged and "4.7 s" in short.unjudged
    assert gate_rules.exit_code([wide, slower]) == EXIT_FAILED
    assert gate.gate_markdown([wide, slower], [rule], 0.01, None).startswith("## ❌")
    assert gate_rules.exit_code([]) == EXIT_INCONCLUSIVE  # nothing compared is no pass either
    # family-wise widening can turn a narrow pass into an inconclusive one, never the reverse
    widened = gate_one_run.family_wise([finding(1.02, 1.001, 1.029, False)] * 30)
    assert all(f.inconclusive for f in widened)


def test_two_builds_of_the_same_code_are_not_flagged_and_the_order_effect_is_reported(
        tmp_path: Path) -> None:
    """The A/A a user makes: base and head differ by one comment line, so the two binaries
    differ (their build IDs) while the code is the same. Timed in balanced rounds, the gate does
    not flag it under a tight rule, both sides run equally often and follow themselves equally
    often, and the order effect is measured per cell (run.json, carryover.csv, the report)."""
    matrix = """version: 1
apps:
  hello: {path: ../hello, expect: {stdout: "Hello, Go!"}}
measure: {precision: 0.02, runs: 30, max_runs: 1500, budget_s: 40,
          inittrace: false, phases: false, calibration: "off"}
"""
    base = _tree(tmp_path / "base", {"hello": HELLO}, matrix)
    head = _tree(tmp_path / "head", {"hello": HELLO + "\n// a comment-only change\n"}, matrix)
    out = tmp_path / "run"
    code = main(["gate", "--base", str(base), "--head", str(head), "--out", str(out),
                 "--fail-on", "startup>+3%", "-o", str(tmp_path / "gate.md")])
    md = (tmp_path / "gate.md").read_text()
    cells = pd.read_csv(out / "cells.csv", dtype=str).set_index("rev")
    assert cells.loc["base", "sha256"] != cells.loc["head", "sha256"]  # two distinct builds
    assert cells.loc["base", "sha256_code"] == cells.loc["head", "sha256_code"]  # same code
    # the matrix names no toolchain: the release the module's go.mod asks for (go 1.21)
    assert set(cells["toolchain"]) == {"1.21.13"}
    assert code != 1, md  # never flagged (exit 3, inconclusive, is not a pass either)
    assert not md.startswith("## ❌"), md
    s = pd.read_csv(out / "samples.csv", dtype={"after_cell": str}, keep_default_na=False)
    timed = s[(s["round"] >= 0) & (s["ok"].astype(str) == "True")]
    n = timed["cell"].value_counts()
    assert n.max() - n.min() <= 1, n  # every cell in every round
    run = json.loads((out / "run.json").read_text())
    order = run["carryover"]
    assert order["order"] == "serially balanced"
    per = {c: v for c, v in order["cells"].items() if c != "all"}
    assert len(per) == 2
    for v in per.values():
        assert 0.35 < v["share_after_self"] < 0.65, v  # two cells: about half after itself
        assert v["p50_after_self_ms"] > 0 and v["p50_after_other_ms"] > 0
        assert v["ci95_low"] is not None and v["ci95_low"] <= v["ratio"] <= v["ci95_high"]
    co = pd.read_csv(out / "carryover.csv")
    assert set(co["cell"]) == {*per, "all"}
    assert "## Order effects (carry-over)" in (out / "report.md").read_text()
    assert "Order effects (carry-over)" in (out / "report.html").read_text()
    # the comment names the order effect where one is resolved (it is on the VMs seen)
    resolved = [v for v in per.values() if v["ci95_high"] < 1 or v["ci95_low"] > 1]
    assert ("Order effect on this host" in md) == bool(resolved), md
