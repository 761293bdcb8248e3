"""Fixed runs against a precision target, on the default matrix, on this machine.

Runs the default matrix (matrix.yaml; traced runs, inittrace and calibration off: only the
timing is compared) with fixed `runs: 200`, with `precision: 0.02` and with `precision: 0.01`,
back to back, alternating, `--rounds` times. Prints each run's timing wall (run.json
`stopping.timing_s`: the timed rounds only) and the half-widths its report reached (the
summary's ratio ci95, relative), and checks the targets: at 0.02 every unflagged cell within
±2% in ≤ 50% of fixed-200's wall; at 0.01 every unflagged cell within ±1% in ≤ 1.5×.

With `--capped`, the precision runs get `budget_s` = that limit × the round's own fixed-200
wall: the question becomes how many cells reach the target within the allowed time (the
others are flagged), and a round takes 3× fixed-200's wall instead of up to 20×.

    python benchmarks/precision.py [--rounds 2] [--capped] [--out DIR]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from gostartbench import results
from gostartbench.analysis import analyse

REPO = Path(__file__).resolve().parents[1]
CONFIGS: dict[str, dict[str, Any]] = {
    "fixed 200": {"runs": 200},
    "precision 0.02": {"precision": 0.02},
    "precision 0.01": {"precision": 0.01},
}
WALL_LIMIT = {"precision 0.02": 0.5, "precision 0.01": 1.5}  # × fixed-200's timing wall


def matrix_for(cfg: dict[str, Any], out: Path) -> Path:
    """matrix.yaml with the config's measure keys; untimed extras off."""
    doc = yaml.safe_load((REPO / "matrix.yaml").read_text())
    for app in doc["apps"].values():
        app["path"] = str(REPO / app["path"])
    m = {k: v for k, v in doc["measure"].items() if k != "runs"}
    m.update(inittrace=False, phases=False, calibration="off", **cfg)
    doc["measure"] = m
    p = out / f"matrix-{'-'.join(f'{k}{v}' for k, v in cfg.items())}.yaml"
    p.write_text(yaml.safe_dump(doc, sort_keys=False))
    return p


def measure(name: str, cfg: dict[str, Any], out: Path, i: int) -> dict[str, Any]:
    """One run of one config: its timing wall and the half-widths its report reached."""
    d = out / f"{i:02d}-{name.replace(' ', '-')}"
    subprocess.run([sys.executable, "-m", "gostartbench", "run", "-m",
                    str(matrix_for(cfg, out)), "--out", str(d), "--no-report"], check=True,
                   stdout=subprocess.DEVNULL)
    a = analyse(results.load(d))
    s = a.summary[(a.summary["timer"] == "spawn") & (a.summary["cell"] != a.summary["baseline"])]
    hw = (s["ratio_ci95_high"] - s["ratio_ci95_low"]) / 2 / s["ratio"]
    stop = a.run["stopping"]
    flagged = s["warnings"].fillna("").str.contains("stopped by")
    target = cfg.get("precision")
    return {"config": name, "run": i, "timing_s": stop["timing_s"],
            "budget_s": cfg.get("budget_s"),
            "runs": int(sum(c["runs"] for c in stop["cells"].values())),
            "median_hw": float(np.median(hw)), "max_hw": float(hw.max()),
            "max_hw_unflagged": float(hw[~flagged].max()) if (~flagged).any() else np.nan,
            "flagged": int(flagged.sum()), "cells": len(s),
            "within": int((hw[~flagged] <= (target or np.inf)).sum())}


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--capped", action="store_true",
                   help="precision runs get a budget: the target's wall limit")
    p.add_argument("--out", help="where the runs go (default: a new temporary folder)")
    a = p.parse_args()
    out = Path(a.out) if a.out else Path(tempfile.mkdtemp(prefix="gsb-precision-"))
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    i = 0
    for r in range(a.rounds):
        fixed_s = 0.0
        for name, cfg in CONFIGS.items():
            if a.capped and name in WALL_LIMIT:
                cfg = {**cfg, "budget_s": round(WALL_LIMIT[name] * fixed_s, 1)}
            rows.append(measure(name, cfg, out, i))
            fixed_s = fixed_s or rows[-1]["timing_s"]
            print(f"round {r + 1}: {rows[-1]}", file=sys.stderr, flush=True)
            i += 1
    df = pd.DataFrame(rows)
    fixed = df[df["config"] == "fixed 200"]["timing_s"].mean()
    df["wall_vs_fixed"] = df["timing_s"] / fixed
    print(df.drop(columns=["run"]).to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    for name, lim, hw in (("precision 0.02", 0.5, 0.02), ("precision 0.01", 1.5, 0.01)):
        g = df[df["config"] == name]
        ok_wall = bool((g["wall_vs_fixed"] <= lim).all())
        ok_hw = bool((g["max_hw_unflagged"] <= hw).all())
        print(f"{name}: wall {g['wall_vs_fixed'].mean():.2f}× fixed-200 (target ≤ {lim}×: "
              f"{'met' if ok_wall else 'missed'}); every unflagged cell within ±{hw:.0%}: "
              f"{'yes' if ok_hw else 'no'}; flagged cells {g['flagged'].tolist()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
