"""How much each location estimator of a start time moves between repeats: the next lever
for precision (README, "Precision you ask for").

Four A/A copies of hello (benchmarks/placement.py's) are timed in interleaved rounds, read in
afresh every 15 rounds (the run's placement epochs), REPEATS times. For each estimator, the
copies' log ratio to the first copy is computed per repeat; printed is its sd across repeats
(the truth is 0: that sd is the estimator's real precision at RUNS runs, bursts and placements
included) and the runs it would need, relative to the P50, for the same precision
((sd / sd_P50)²); and how much one start varies (robust sd of the log wall times). Beside the
location estimators, one ratio estimator: the median of the per-round log ratios (each copy
paired with the first copy's run of the same round), which gains where noise hits both runs of
a round alike.

    python benchmarks/estimators.py [--repeats 16] [--runs 300]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from placement import copies, timed_rounds
from scipy import stats as sps

from gostartbench.stats.spread import spread

EVERY = 15  # rounds per placement epoch, as a run of this length has
ESTIMATORS: dict[str, Callable[[np.ndarray], float]] = {
    "P50 (the tool's)": lambda x: float(np.median(x)),
    "P25": lambda x: float(np.quantile(x, 0.25)),
    "min": lambda x: float(np.min(x)),
    "mean": lambda x: float(np.mean(x)),
    "20% trimmed mean": lambda x: float(sps.trim_mean(x, 0.2)),
    "mean of the faster half": lambda x: float(np.mean(np.sort(x)[:len(x) // 2])),
}


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=16)
    p.add_argument("--runs", type=int, default=300)
    a = p.parse_args()
    root = Path(tempfile.mkdtemp(prefix="gsb-estimators-"))
    try:
        walls = timed_rounds(copies(root, 4), a.repeats, a.runs, EVERY)[0]
    finally:
        shutil.rmtree(root, ignore_errors=True)
    reps = [[np.log(w) for w in rep] for rep in walls]
    sd = {}
    for name, f in ESTIMATORS.items():
        d = [f(logs[i]) - f(logs[0]) for logs in reps for i in range(1, len(logs))]
        sd[name] = float(np.std(d, ddof=1))
    sd["median of per-round ratios"] = float(np.std(
        [np.median(logs[i] - logs[0]) for logs in reps for i in range(1, len(logs))], ddof=1))
    base = sd["P50 (the tool's)"]
    noise = np.median([spread(x) for rep in walls for x in rep])  # one start's, per copy
    print(f"{a.repeats} repeats × {a.runs} rounds, 4 A/A copies of hello (3 pairs a repeat); "
          f"a start's robust sd (median over copies and repeats): {noise:.1%}")
    for name, s in sd.items():
        print(f"{name:26} sd of the A/A log ratio {s:.4f}   runs for the P50's precision "
              f"{(s / base) ** 2:.2f}×")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
