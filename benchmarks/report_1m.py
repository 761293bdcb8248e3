"""Performance of the analysis: a report from 1 M samples in ≤ 30 s and ≤ 2 GB.

    python benchmarks/report_1m.py [--samples 1000000] [--cells 200] [--old-schema] [--keep DIR]

Generates a synthetic run folder (cells.csv, samples.csv, run.json; lognormal wall times with a
per-cell effect, interleaved rounds) of the current schema — each sample's `done_unix_ns` (the
rounds' wall times laid end to end, as a real run's) and `epoch` (a new placement every 15
rounds), so the intervals resample blocks of time as in a real run — or, with --old-schema, of
schema 1.1 (neither column: every round is its own block), then times `report.make_report`
on it in this process and reports wall time and peak RSS against the targets, as ratios. Not a
test: timings on a shared machine are for reading, not asserting.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

EPOCH_ROUNDS = 15  # rounds per page-cache placement epoch in the synthetic run


def generate(d: Path, n_samples: int, n_cells: int, seed: int = 0, old_schema: bool = False
             ) -> None:
    rng = np.random.default_rng(seed)
    runs = n_samples // n_cells
    apps = ["hello", "netcli", "httpd", "initheavy"]
    rows = []
    for i in range(n_cells):
        rows.append({
            "cell": f"{apps[i % 4]}_go1.27.3_v{i // 4:03d}_{'warm' if i % 8 < 4 else 'cold'}",
            "app": apps[i % 4], "toolchain": "1.27.3", "build_id": f"b{i}",
            "variant": f"v{i // 8:03d}", "cache": "warm" if i % 8 < 4 else "cold",
            "status": "ok", "reason": "", "size_bytes": int(2e6 + 1e4 * i),
        })
    cells = pd.DataFrame(rows)
    cells.to_csv(d / "cells.csv", index=False)
    base = rng.uniform(1.0, 10.0, n_cells) * 1e6
    cell = np.repeat(cells["cell"].to_numpy(), runs)
    rnd = np.tile(np.arange(runs), n_cells)
    drift = 1 + 0.05 * np.sin(rnd / 50)
    wall = (np.repeat(base, runs) * drift * rng.lognormal(0, 0.08, n_cells * runs)).astype(int)
    df = pd.DataFrame({
        "cell": cell, "round": rnd, "cache": np.repeat(cells["cache"].to_numpy(), runs),
        "timer": "spawn", "wall_ns": wall, "user_ns": wall // 2, "sys_ns": wall // 4,
        "maxrss_bytes": 2_000_000, "minflt": 200, "majflt": 0, "exit_code": 0, "signal": 0,
        "ok": "true", "reason": "",
    })
    if not old_schema:
        # interleaved: round by round, every cell once, each run ending 0.3 ms after its wall
        order = np.lexsort((np.arange(n_cells).repeat(runs), rnd))
        done = np.empty(len(df))
        done[order] = 1.8e18 + np.cumsum(wall[order] + 300_000)
        df["done_unix_ns"] = done.astype(np.int64)
        df["epoch"] = rnd // EPOCH_ROUNDS
        df["rss_floor_bytes"] = 1_000_000
    df.to_csv(d / "samples.csv", index=False)
    run = {"id": "synthetic-1m", "status": "complete", "host": {}, "tools": {},
           "schema_version": "1.1" if old_schema else "1.4",
           "settings": {"axes": ["variant", "cache"], "baseline": {"variant": "v000"},
                        "measure": {"bootstrap": 2000, "min_effect": 0.01, "seed": 0}}}
    (d / "run.json").write_text(json.dumps(run))
    (d / "matrix.yaml").write_text("# synthetic\n")


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--samples", type=int, default=1_000_000)
    p.add_argument("--cells", type=int, default=200)
    p.add_argument("--old-schema", action="store_true",
                   help="schema 1.1: no done_unix_ns, no epoch (every round a block)")
    p.add_argument("--keep")
    a = p.parse_args()
    d = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="gsb-1m-"))
    d.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    generate(d, a.samples, a.cells, old_schema=a.old_schema)
    gen_s = time.monotonic() - t0
    from gostartbench import report

    t0 = time.monotonic()
    report.make_report(d)
    rep_s = time.monotonic() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(f"samples {a.samples:,} over {a.cells} cells, schema "
          f"{'1.1 (every round a block)' if a.old_schema else '1.4 (blocks of time)'} "
          f"(generated in {gen_s:.1f} s)")
    print(f"report: {rep_s:.1f} s  = {rep_s / 30:.2f} × the 30 s target")
    print(f"peak RSS of this process: {peak / 2**30:.2f} GiB = {peak / 2**31:.2f} × the 2 GB "
          "target")
    if not a.keep:
        shutil.rmtree(d)
    return 0 if rep_s <= 30 and peak <= 2 * 2**30 else 1


if __name__ == "__main__":
    sys.exit(main())
