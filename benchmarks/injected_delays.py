"""Injected init() delays against what the spawn timer measures (a speed/accuracy figure, not a
test: this machine is noisy). Prints, per injected delay, the paired median difference to the
0 ms runs with its ci95 and the error; `gostartbench calibrate` runs the full ladder.

    python benchmarks/injected_delays.py [--runs 60]
"""

from __future__ import annotations

import argparse
import os
import random

import numpy as np

from gostartbench.build.calib import calib_programs
from gostartbench.measure import RunSpec, SpawnExecutor
from gostartbench.stats.resample import paired_delta_interval
from gostartbench.stats.resample import rng as make_rng

DELAYS_US = (0, 500, 2000, 6000)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=60)
    a = p.parse_args()
    delay = calib_programs()["delay"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("GSB_")}
    specs = {us: RunSpec(argv=(str(delay),), env={**env, "GSB_DELAY_US": str(us)})
             for us in DELAYS_US}
    order: list[int] = []
    rng = random.Random(0)
    for _ in range(a.runs):  # interleaved rounds, shuffled: drift hits every delay alike
        rnd = list(DELAYS_US)
        rng.shuffle(rnd)
        order += rnd
    walls: dict[int, list[int]] = {us: [] for us in DELAYS_US}
    ex = SpawnExecutor()
    try:
        for us, r in zip(order, ex.run_many((specs[us], None, None) for us in order),
                         strict=True):
            walls[us].append(r.wall_ns)
    finally:
        ex.close()
    print("injected  measured  ci95                error")
    for us in DELAYS_US:
        d = paired_delta_interval(np.asarray(walls[us], float) / 1e6,
                                  np.asarray(walls[0], float) / 1e6, 2000, make_rng())
        print(f"{us / 1000:6.2f}ms  {d.estimate:7.3f}ms  [{d.low:.3f}, "
              f"{d.high:.3f}]  {(d.estimate - us / 1000) * 1000:+6.0f}µs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
