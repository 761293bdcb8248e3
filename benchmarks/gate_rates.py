"""The gate's false-alarm and detection rates on this machine, for both designs.

    python benchmarks/gate_rates.py [--tries 20] [--budget-s 60] [--shifts 0,3,8] [--out DIR]

Two checkouts are laid out (goapps' hello, netcli and noop, and a `delay` program whose init
busy-waits a compiled-in number of microseconds) with the gate matrix (bench/gate.yaml plus
`delay`). In the base, delay waits 0 µs; in the head, the same program waits a known share of
its own start: 0% (A/A: every other program is unchanged too), +3% or +8% (the share is
measured first, on a short run of the base). Each try gates head against base
`startup>+3%`, by both designs, on the same budget of timing:

- one run: `gostartbench gate --base B --head H` (base and head timed in the same rounds, the
  whole budget);
- two runs: `gostartbench run` of the base, then of the head (half the budget each), then
  `gostartbench compare BASE HEAD --fail-on 'startup>+3%' --reference noop_go1.27.3_exe`
  (the design the workflow used before).

The designs alternate within each try so that the machine's state is shared. Printed per design
and shift: tries, gates failed, gates that failed on the delay program (the detection) and on
any other program (a false alarm), and the median wall time of one gate. Not a test: rates on
a shared machine are for reading.
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

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
RULE = "startup>+3%"
REF = "noop_go1.27.3_exe"
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


def lay_out(root: Path, delay_us: int, budget_s: float, measure: str | None = None) -> Path:
    """A checkout: go.mod, hello, netcli, noop and delay (waiting delay_us), bench/gate.yaml."""
    shutil.rmtree(root, ignore_errors=True)
    (root / "bench").mkdir(parents=True)
    shutil.copy(REPO / "goapps" / "go.mod", root / "go.mod")
    for app in ("hello", "netcli", "noop"):
        shutil.copytree(REPO / "goapps" / app, root / app)
    (root / "delay").mkdir()
    (root / "delay" / "main.go").write_text(DELAY_GO.format(us=delay_us))
    gate = (REPO / "bench" / "gate.yaml").read_text().replace("../goapps/", "../")
    gate = gate.replace("  noop:\n    path: ../noop\n",
                        "  noop:\n    path: ../noop\n  delay:\n    path: ../delay\n")
    gate = gate.replace("budget_s: 300", f"budget_s: {budget_s:g}")
    if measure:  # a user's configuration instead of bench/gate.yaml's
        gate = gate[:gate.index("measure:")] + (
            f"measure: {{{measure}, inittrace: false, phases: false, calibration: \"off\"}}\n")
    (root / "bench" / "gate.yaml").write_text(gate)
    return root


ACTION_RULE = "startup>+5%"  # action.yml's default fail-on


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


def one_run(base: Path, head: Path, work: Path) -> tuple[int, list[str], float]:
    t0 = time.monotonic()
    out = work / "one"
    shutil.rmtree(out, ignore_errors=True)
    p = gsb("gate", "--base", str(base), "--head", str(head), "--out", str(out),
            "--fail-on", RULE, "--no-report", "-o", str(work / "one.md"))
    md = (work / "one.md").read_text() if (work / "one.md").exists() else p.stderr
    return p.returncode, failing_rows(md), time.monotonic() - t0


def two_runs(base: Path, head: Path, work: Path) -> tuple[int, list[str], float]:
    t0 = time.monotonic()
    outs = []
    for name, tree in (("b", base), ("h", head)):
        out = work / f"two-{name}"
        shutil.rmtree(out, ignore_errors=True)
        gsb("run", "-m", str(tree / "bench" / "gate.yaml"), "--out", str(out), "--no-report")
        outs.append(out)
    p = gsb("compare", str(outs[0]), str(outs[1]), "--fail-on", RULE, "--reference", REF)
    return p.returncode, failing_rows(p.stdout), time.monotonic() - t0


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
    p.add_argument("--shifts", default="0,3,8", help="the head's added delay, % of its start")
    p.add_argument("--out", help="keep the trees, runs and a JSON of every try here")
    p.add_argument("--designs", default="one,two", help="one, two, or both (one,two)")
    p.add_argument("--measure", default=None,
                   help="a gate matrix's measure keys as a user writes them, e.g. "
                   "'precision: 0.02, runs: 50, max_runs: 1500, budget_s: 40' (default: "
                   "bench/gate.yaml's, with --budget-s)")
    p.add_argument("--action-defaults", action="store_true",
                   help="the action's defaults: the matrix `gostartbench init --gate` writes for "
                   "the tree (every program as built, no knobs) and its rule 'startup>+5%%' "
                   "(one-run design only)")
    p.add_argument("--p50-us", type=float, default=None,
                   help="the delay program's P50 (µs) instead of measuring it first (a probe on "
                   "a busy machine would read it long and make every shift too big)")
    a = p.parse_args()
    work = Path(a.out) if a.out else Path(tempfile.mkdtemp(prefix="gsb-gate-rates-"))
    work.mkdir(parents=True, exist_ok=True)
    p50 = a.p50_us if a.p50_us else delay_p50_us(work)
    print(f"delay program P50: {p50:.0f} µs", flush=True)
    shifts = [int(x) for x in a.shifts.split(",")]
    tries: list[dict[str, object]] = []
    global RULE
    if a.action_defaults:
        RULE = ACTION_RULE
        a.designs = "one"
    base = lay_out(work / "base", 0, a.budget_s, a.measure)
    if a.action_defaults:
        init_matrix(base)
    for shift in shifts:
        head = lay_out(work / f"head-{shift}", round(p50 * shift / 100), a.budget_s,
                       a.measure)
        if a.action_defaults:
            shutil.copy(base / "bench" / "gate.yaml", head / "bench" / "gate.yaml")
        for i in range(a.tries):
            designs = [(n, f) for n, f in (("one run", one_run), ("two runs", two_runs))
                       if n.split()[0] in a.designs.split(",")]
            if i % 2:
                designs.reverse()
            for name, fn in designs:
                code, rows, wall = fn(base, head, work)
                tries.append({"shift": shift, "try": i, "design": name, "exit": code,
                              "failing": rows, "wall_s": round(wall, 1)})
                print(json.dumps(tries[-1]), flush=True)
                (work / "tries.json").write_text(json.dumps(tries, indent=1))
    df = pd.DataFrame(tries)
    df["on_delay"] = df["failing"].map(lambda r: any("delay" in x for x in r))
    df["on_other"] = df["failing"].map(lambda r: any("delay" not in x for x in r))
    how = "the action's defaults (`init --gate` matrix)" if a.action_defaults else \
        a.measure or f"bench/gate.yaml, budget {a.budget_s:g} s"
    print(f"\nmeasure: {how}; rule {RULE}; delay P50 {p50:.0f} µs")
    print("| design | head's change | tries | gate failed | inconclusive (exit 3) | passed | "
          "on delay (detected) | on another program (false alarm) | median wall per gate |")
    print("|---|---|---|---|---|---|---|---|---|")
    for (shift, design), g in df.groupby(["shift", "design"]):
        print(f"| {design} | +{shift}% | {len(g)} | {int((g['exit'] == 1).sum())} | "
              f"{int((g['exit'] == 3).sum())} | {int((g['exit'] == 0).sum())} | "
              f"{int(g['on_delay'].sum())} | {int(g['on_other'].sum())} | "
              f"{g['wall_s'].median():.0f} s |")
    if not a.out:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
