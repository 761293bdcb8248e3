"""The gate's false-alarm and detection rates on this machine.

    python benchmarks/gate_rates.py [--tries 20] [--shifts 0,5] [--aa comment] \
        [--rules 'startup>+3%'] [--action-defaults] [--designs one,two] [--out DIR]

Two checkouts are laid out (goapps' hello, netcli and noop, and a `delay` program whose init
busy-waits a compiled-in number of microseconds) with the gate matrix (bench/gate.yaml plus
`delay`; with --action-defaults, the matrix `gostartbench init --gate` writes). In the base,
delay waits 0 µs; in the head, the same program waits a known share of its own start: 0% (an
A/A: every other program is unchanged too) or +N% (the share is measured first, on a short run
of the base, or given with --p50-us).

An A/A is two *distinct builds* of the same code (--aa): `comment` (default) adds a comment
line to every program of the head, so each head binary differs from its base only in its build
ID (the gate builds with -trimpath); `path` lays the head out at another, deeper path and
builds both without -trimpath (`flags: ["-trimpath=false"]`), so the binaries differ by their
embedded source paths; `same` copies the tree (byte-identical binaries: the A/A that cannot
show an order effect, for comparison).

Each try gates head against base by the designs asked for, and every gate's run is judged by
each rule of --rules (the first is the command's own; the others judge the same run folder
again, as `gate` would have):

- one run: `gostartbench gate --base B --head H` (base and head timed in the same rounds);
- two runs: `gostartbench run` of the base, then of the head, then `gostartbench compare BASE
  HEAD --fail-on RULE --reference noop_go1.27.3_exe` (the design the workflow used before).

The designs alternate within each try so that the machine's state is shared. Printed per design,
rule and shift: tries, gates failed, inconclusive, passed, failed on the delay program (the
detection) and on any other program (a false alarm), and the median wall time of one gate. Not
a test: rates on a shared machine are for reading.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

from gostartbench.errors import DEFAULT_FAIL_ON

REPO = Path(__file__).resolve().parents[1]
REF = "noop_go1.27.3_exe"
APPS = ("hello", "netcli", "noop")
DELAY_GO = """package main

import "time"

const extraUS = {us}

func init() {{
	if extraUS <= 0 {{
		return
	}}
	deadline := time.Now().Add(extraUS * time.Microsecond)
	for time.Now().Before(deadline) {{
	}}
}}

func main() {{}}
"""
COMMENT = "\n// A comment-only change: the same code, another build ID.\n"
AA_KINDS = ("comment", "path", "same")


def lay_out(root: Path, delay_us: int, budget_s: float, measure: str | None = None,
            aa: str = "same") -> Path:
    """A checkout: go.mod, hello, netcli, noop and delay (waiting delay_us), bench/gate.yaml;
    `aa`: how this tree's builds differ from another of the same code (see the module's doc)."""
    shutil.rmtree(root, ignore_errors=True)
    (root / "bench").mkdir(parents=True)
    shutil.copy(REPO / "goapps" / "go.mod", root / "go.mod")
    for app in APPS:
        shutil.copytree(REPO / "goapps" / app, root / app)
    (root / "delay").mkdir()
    (root / "delay" / "main.go").write_text(DELAY_GO.format(us=delay_us))
    if aa == "comment":
        for app in (*APPS, "delay"):
            with open(root / app / "main.go", "a") as fh:
                fh.write(COMMENT)
    gate = (REPO / "bench" / "gate.yaml").read_text().replace("../goapps/", "../")
    gate = gate.replace("  noop:\n    path: ../noop\n",
                        "  noop:\n    path: ../noop\n  delay:\n    path: ../delay\n")
    gate = gate.replace("budget_s: 300", f"budget_s: {budget_s:g}")
    if measure:  # a user's configuration instead of bench/gate.yaml's
        gate = gate[:gate.index("measure:")] + (
            f"measure: {{{measure}, inittrace: false, phases: false, calibration: \"off\"}}\n")
    (root / "bench" / "gate.yaml").write_text(gate)
    return root


def untrimmed(matrix: Path) -> None:
    """Build without -trimpath (the gate's own -trimpath turned off by a later flag), so two
    copies of one tree at two paths build to two different binaries."""
    text = matrix.read_text()
    if "\naxes:\n" in text:
        text = text.replace("\naxes:\n", '\naxes:\n  flags: ["-trimpath=false"]\n', 1)
    else:
        text = text.replace("\nmeasure:", '\naxes:\n  flags: ["-trimpath=false"]\nmeasure:', 1)
    matrix.write_text(text)


def init_matrix(root: Path) -> None:
    """The tree's gate matrix as the action writes it when none is given."""
    (root / "bench" / "gate.yaml").unlink()
    p = gsb("init", "--gate", str(root), "-o", str(root / "bench" / "gate.yaml"))
    if p.returncode != 0:
        raise SystemExit(f"init failed: {p.stderr}")


def gsb(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gostartbench", *args], capture_output=True,
                          text=True, check=False)


def failing_rows(md: str) -> list[str]:
    """The `what` of every failing row of a gate's markdown (before its folded details)."""
    head = md.split("<details>")[0]
    return [ln.split("|")[2].strip() for ln in head.splitlines()
            if ln.startswith("| `startup") or ln.startswith("| `size")]


def judge(run_dir: Path, rule: str) -> tuple[int, list[str], dict[str, Any]]:
    """A gate run judged by one rule, as `gostartbench gate` judges it: exit code, the failing
    comparisons, and the run's head/base ratios and carry-over."""
    from gostartbench.report import compare as cmp
    from gostartbench.report import gate_one_run as g
    from gostartbench.report.rules import rules_from

    a = cmp.load_runs([run_dir])[0]
    rules = rules_from([rule])
    res = g.one_run(a, rules)
    ratios = {f.what: [round(f.ratio, 4), round(f.low, 4), round(f.high, 4)]
              for f in res.findings if f.kind == "cell"}
    co = a.carryover
    order = {str(r["cell"]): round(float(r["ratio"]), 4) for r in co.to_dict("records")} \
        if len(co) else {}
    return g.one_run_exit(res), [f.what for f in res.findings if f.failed], \
        {"ratios": ratios, "after_self_over_other": order}


def one_run(base: Path, head: Path, work: Path, rules: list[str]
            ) -> list[tuple[str, int, list[str], dict[str, Any]]]:
    """The one-run gate, judged by every rule (its own exit for the first)."""
    out = work / "one"
    shutil.rmtree(out, ignore_errors=True)
    p = gsb("gate", "--base", str(base), "--head", str(head), "--out", str(out),
            "--fail-on", rules[0], "--no-report", "-o", str(work / "one.md"))
    if not (out / "summary.csv").exists() and not (out / "samples.csv").exists():
        return [(r, p.returncode, [p.stderr.strip()[-200:]], {}) for r in rules]
    got = []
    for r in rules:
        code, rows, extra = judge(out, r)
        if r == rules[0] and code != p.returncode:
            extra["command_exit"] = p.returncode  # the command's own verdict, should agree
        got.append((r, code, rows, extra))
    return got


def two_runs(base: Path, head: Path, work: Path, rules: list[str]
             ) -> list[tuple[str, int, list[str], dict[str, Any]]]:
    outs = []
    for name, tree in (("b", base), ("h", head)):
        out = work / f"two-{name}"
        shutil.rmtree(out, ignore_errors=True)
        gsb("run", "-m", str(tree / "bench" / "gate.yaml"), "--out", str(out), "--no-report")
        outs.append(out)
    got: list[tuple[str, int, list[str], dict[str, Any]]] = []
    for r in rules:
        p = gsb("compare", str(outs[0]), str(outs[1]), "--fail-on", r, "--reference", REF)
        got.append((r, p.returncode, failing_rows(p.stdout), {}))
    return got


def delay_p50_us(work: Path) -> float:
    """The delay program's P50 (µs) on a short run of the base."""
    root = lay_out(work / "probe", 0, 10)
    m = root / "bench" / "gate.yaml"
    m.write_text(m.read_text().replace("precision: 0.01", "precision: 0.2"))
    gsb("run", "-m", str(m), "-k", "delay and exe", "--out", str(work / "probe-run"),
        "--runs", "100", "--no-report")
    s = pd.read_csv(work / "probe-run" / "samples.csv")
    s = s[(s["cell"] == "delay_go1.27.3_exe") & s["ok"] & (s["round"] >= 0)]
    return float(s["wall_ns"].median()) / 1000


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--tries", type=int, default=20)
    p.add_argument("--budget-s", type=float, default=60.0, help="timing per gate, both designs")
    p.add_argument("--shifts", default="0,5", help="the head's added delay, % of its start")
    p.add_argument("--aa", choices=AA_KINDS, default="comment",
                   help="how the head's builds differ from the base's (see the module's doc)")
    p.add_argument("--rules", default="startup>+3%",
                   help="rules, comma-separated; each gate run is judged by every one")
    p.add_argument("--out", help="keep the trees, runs and a JSON of every try here")
    p.add_argument("--designs", default="one", help="one, two, or both (one,two)")
    p.add_argument("--measure", default=None,
                   help="a gate matrix's measure keys as a user writes them, e.g. "
                   "'precision: 0.02, runs: 50, max_runs: 1500, budget_s: 40' (default: "
                   "bench/gate.yaml's, with --budget-s)")
    p.add_argument("--action-defaults", action="store_true",
                   help="the action's defaults: the matrix `gostartbench init --gate` writes for "
                   f"the tree (every program as built, no knobs) and its rule "
                   f"'{DEFAULT_FAIL_ON.replace('%', '%%')}' first (one-run design only)")
    p.add_argument("--p50-us", type=float, default=None,
                   help="the delay program's P50 (µs) instead of measuring it first (a probe on "
                   "a busy machine would read it long and make every shift too big)")
    a = p.parse_args()
    work = Path(a.out) if a.out else Path(tempfile.mkdtemp(prefix="gsb-gate-rates-"))
    work.mkdir(parents=True, exist_ok=True)
    p50 = a.p50_us if a.p50_us else delay_p50_us(work)
    print(f"delay program P50: {p50:.0f} µs", flush=True)
    shifts = [int(x) for x in a.shifts.split(",")]
    rules = [r.strip() for r in a.rules.split(",") if r.strip()]
    if a.action_defaults:
        rules = [DEFAULT_FAIL_ON, *[r for r in rules if r != DEFAULT_FAIL_ON]]
        a.designs = "one"
    tries: list[dict[str, object]] = []
    base = lay_out(work / "base", 0, a.budget_s, a.measure)
    if a.action_defaults:
        init_matrix(base)
    if a.aa == "path":
        untrimmed(base / "bench" / "gate.yaml")
    for shift in shifts:
        where = work / f"head-{shift}" / "another" / "checkout" if a.aa == "path" else \
            work / f"head-{shift}"
        head = lay_out(where, round(p50 * shift / 100), a.budget_s, a.measure,
                       aa="comment" if a.aa == "comment" else "same")
        shutil.copy(base / "bench" / "gate.yaml", head / "bench" / "gate.yaml")
        for i in range(a.tries):
            designs = [(n, f) for n, f in (("one run", one_run), ("two runs", two_runs))
                       if n.split()[0] in a.designs.split(",")]
            if i % 2:
                designs.reverse()
            for name, fn in designs:
                t0 = time.monotonic()
                got = fn(base, head, work, rules)
                wall = time.monotonic() - t0
                for rule, code, rows, extra in got:
                    tries.append({"shift": shift, "try": i, "design": name, "rule": rule,
                                  "aa": a.aa, "exit": code, "failing": rows,
                                  "wall_s": round(wall, 1), **extra})
                    print(json.dumps(tries[-1]), flush=True)
                (work / "tries.json").write_text(json.dumps(tries, indent=1))
    df = pd.DataFrame(tries)
    df["on_delay"] = df["failing"].map(lambda r: any("delay" in x for x in r))
    df["on_other"] = df["failing"].map(lambda r: any("delay" not in x for x in r))
    how = "the action's defaults (`init --gate` matrix)" if a.action_defaults else \
        a.measure or f"bench/gate.yaml, budget {a.budget_s:g} s"
    print(f"\nmeasure: {how}; A/A builds: {a.aa}; delay P50 {p50:.0f} µs")
    print("| design | rule | head's change | tries | gate failed | inconclusive (exit 3) | "
          "passed | on delay (detected) | on another program (false alarm) | median wall |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for (shift, design, rule), g in df.groupby(["shift", "design", "rule"]):
        print(f"| {design} | `{rule}` | +{shift}% | {len(g)} | {int((g['exit'] == 1).sum())} | "
              f"{int((g['exit'] == 3).sum())} | {int((g['exit'] == 0).sum())} | "
              f"{int(g['on_delay'].sum())} | {int(g['on_other'].sum())} | "
              f"{g['wall_s'].median():.0f} s |")
    if not a.out:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
