"""Does the stopping rule keep the intervals honest? A simulation with known truth.

The run's own schedule and stopping rule (gostartbench.run.adaptive.simulate: the same Session,
Tracker and batches as a real run, with the fake executor) on a simulated shared machine:
lognormal noise, bursts that come and go in (simulated) seconds, and a page-cache placement
effect redrawn every epoch. Four programs: a baseline, an A/A copy of it (truth 1), one 10%
slower (truth 1.1) and a packed one 6× as slow. Each repeat stops at `--precision`; the final
interval is the report's (gostartbench.stats.intervals, blocks by epoch). Targets: the ci95
covers the truth in ≥ 93% of cells, and the A/A copy is called significant in ≤ 5% of repeats.

    python benchmarks/coverage_sim.py [--repeats 1000] [--precision 0.02] [--jobs 2]
                                      [--budget-s S] [--max-runs N]

`--precision 0` runs FIXED_RUNS rounds instead: the intervals without the stopping rule.
`--budget-s` gives the run a timing budget (simulated seconds): short runs, as a CI gate's; the
four cells are a small matrix. Then the stopping rule must still wait for FULL_SPAN_S before
stopping a cell on precision, and short runs' intervals must still cover.
"""

from __future__ import annotations

import argparse
import math
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from gostartbench.analysis.summary import sample_blocks
from gostartbench.measure.fake import BurstyMachine
from gostartbench.run.adaptive import Target

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: the repo root
from benchmarks.simulate import simulate
from gostartbench.stats.intervals import ratio_interval
from gostartbench.stats.significance import holm, significant

MS = 1_000_000
P50 = {"base": 3 * MS, "copy": 3 * MS, "slower": int(3.3 * MS), "packed": 18 * MS}
TRUTH = {c: P50[c] / P50["base"] for c in P50}
BASELINE_OF: dict[str, str | None] = {c: "base" for c in P50}
FIXED_RUNS = 800


def one(args: tuple[int, float, float, float | None, int]) -> list[dict[str, Any]]:
    """One simulated run: every compared cell's interval against the truth."""
    seed, precision, sigma, budget_s, max_runs = args
    m = BurstyMachine(P50, sigma=sigma, seed=seed)
    # precision 0: fixed runs (FIXED_RUNS), the interval alone without the stopping rule
    target = Target(precision, 30, max_runs, budget_s) if precision else \
        Target(None, FIXED_RUNS, FIXED_RUNS)
    tr, rows = simulate(m, BASELINE_OF, target, seed=seed)
    df = pd.DataFrame(rows)
    ok = df[df["ok"] & (df["round"] >= 0)].copy()
    ok["block"] = sample_blocks(ok)
    rng = np.random.default_rng(seed)
    base = ok[ok["cell"] == "base"]
    out, pv = [], []
    for c in ("copy", "slower", "packed"):
        x = ok[ok["cell"] == c]
        iv = ratio_interval(x["wall_ns"].to_numpy(), x["block"].to_numpy(),
                            base["wall_ns"].to_numpy(), base["block"].to_numpy(), 1000, rng)
        pv.append(float(sps.mannwhitneyu(x["wall_ns"], base["wall_ns"]).pvalue))
        rec = tr.record()[c]
        out.append({"seed": seed, "cell": c, "ratio": iv.estimate, "low": iv.low,
                    "high": iv.high, "half_width": iv.half_width, "runs": rec["runs"],
                    "stopped": rec["stopped"], "covers": iv.low <= TRUTH[c] <= iv.high,
                    "sim_s": (m.clock() - rows[0]["done_unix_ns"]) / 1e9})
    for r, pa in zip(out, holm(pv), strict=True):
        r["significant"] = bool(significant(r["ratio"], r["low"], r["high"], 0.01, pa))
    return out


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=1000)
    p.add_argument("--precision", type=float, default=0.02)
    p.add_argument("--sigma", type=float, default=0.15)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--budget-s", type=float, default=None)
    p.add_argument("--max-runs", type=int, default=3000)
    a = p.parse_args()
    work = [(s, a.precision, a.sigma, a.budget_s, a.max_runs) for s in range(a.repeats)]
    with ProcessPoolExecutor(a.jobs) as ex:
        rows = [r for rs in ex.map(one, work, chunksize=8) for r in rs]
    df = pd.DataFrame(rows)
    tab = df.groupby("cell", sort=False).agg(
        coverage=("covers", "mean"), significant=("significant", "mean"),
        median_runs=("runs", "median"), reached=("stopped", lambda s: (s == "precision").mean()),
        median_half_width=("half_width", "median"), worst_half_width=("half_width", "max"))
    print(f"simulated: {a.repeats} runs, precision {a.precision}, budget {a.budget_s} s, "
          f"max_runs {a.max_runs}, noise σ {a.sigma}, bursts "
          f"×1.25 (mean 1 s every 3 s), placement σ 0.02; median simulated timing "
          f"{df.groupby('seed')['sim_s'].first().median():.1f} s")
    print(tab.to_string(float_format=lambda x: f"{x:.3f}"))
    n = len(df)
    lo = 0.93 - 1.96 * math.sqrt(0.93 * 0.07 / n)
    print(f"all cells: coverage {df['covers'].mean():.3f} (target ≥ 0.93; {n} intervals, "
          f"sampling error alone reaches {lo:.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
