"""Where a binary's pages land in the page cache moves its start time: the measurement behind
the placement epochs (samples.csv `epoch`, gostartbench.stats.intervals).

Four A/A copies of hello (same machine code, different module names) are timed in interleaved
rounds, REPEATS times. `once`: the binaries are read into the page cache once per repeat (as a
run without epochs did); `epochs`: they are evicted and read back every EVERY rounds. Printed:
the spread (sd) of the copies' log P50 ratios across repeats — what a within-run interval must
cover — and what the re-reading cost.

    python benchmarks/placement.py [--repeats 12] [--runs 300] [--every 15]
"""

from __future__ import annotations

import argparse
import random
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from gostartbench.build import build_cells
from gostartbench.matrix import load
from gostartbench.measure import RunSpec, SpawnExecutor, normalise_warm

REPO = Path(__file__).resolve().parents[1]


def copies(root: Path, n: int) -> list[Path]:
    """n A/A copies of hello, built (cached) by the framework's own build stage."""
    apps = ""
    for i in range(n):
        d = root / f"aa{i}"
        d.mkdir(parents=True)
        shutil.copy(REPO / "goapps/hello/main.go", d / "main.go")
        (d / "go.mod").write_text(f"module aa{i}\n\ngo 1.21\n")
        apps += f"  aa{i}: {{path: {d}}}\n"
    mx_file = root / "aa.yaml"
    mx_file.write_text(f"version: 1\ntoolchains: ['1.27.3']\napps:\n{apps}")
    mx = load(mx_file)
    built = build_cells(mx, mx.cells)
    return [Path(str(built[c.build_id].binary)) for c in mx.cells]


def timed_rounds(bins: list[Path], repeats: int, runs: int, every: int | None
                 ) -> tuple[list[list[np.ndarray]], float]:
    """Per repeat, each binary's wall times (ns) over `runs` interleaved, shuffled rounds
    (after 10 untimed ones), the binaries read in afresh every `every` rounds (None: once per
    repeat); and the seconds the re-reading took."""
    ex = SpawnExecutor()
    rng = random.Random(1)
    specs = [RunSpec(argv=(str(b),), env={}) for b in bins]
    out, spent = [], 0.0
    try:
        for _ in range(repeats):
            normalise_warm(bins)
            walls: list[list[int]] = [[] for _ in bins]
            for r in range(-10, runs):
                if every and r > 0 and r % every == 0:
                    t = time.perf_counter()
                    normalise_warm(bins)
                    spent += time.perf_counter() - t
                order = list(range(len(bins)))
                rng.shuffle(order)
                for i, res in zip(order, ex.run_many((specs[i], None, None) for i in order),
                                  strict=True):
                    if r >= 0:
                        walls[i].append(res.wall_ns)
            out.append([np.asarray(w, dtype=float) for w in walls])
    finally:
        ex.close()
    return out, spent


def spread(bins: list[Path], mode: str, repeats: int, runs: int, every: int
           ) -> tuple[float, float]:
    """sd across repeats of the copies' log P50 ratio to the first; seconds spent re-reading."""
    reps, spent = timed_rounds(bins, repeats, runs, every if mode == "epochs" else None)
    logs = []
    for walls in reps:
        med = [float(np.median(w)) for w in walls]
        logs += [np.log(m / med[0]) for m in med[1:]]
    return float(np.std(logs, ddof=1)), spent


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=12)
    p.add_argument("--runs", type=int, default=300)
    p.add_argument("--every", type=int, default=15)
    a = p.parse_args()
    root = Path(tempfile.mkdtemp(prefix="gsb-placement-"))
    try:
        bins = copies(root, 4)
        for mode in ("once", "epochs", "once", "epochs"):  # alternated: drift hits both
            sd, spent = spread(bins, mode, a.repeats // 2, a.runs, a.every)
            print(f"{mode:7} sd of A/A log ratios across repeats: {sd:.4f}; re-reading "
                  f"{spent:.2f} s")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
