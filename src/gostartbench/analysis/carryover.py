"""carryover.csv: the order effect on this host — what a start leaves behind for the next one.

On some hosts a start that follows a start of the *same* binary is faster than one that follows
another binary (its pages, the CPU's caches and branch predictors, the kernel's page tables for
the same file: 1.5–6% seen on an AMD EPYC VM). A design that gives one side of a comparison more
runs makes that side follow itself more often and moves its P50 by that much; the rounds are
therefore serially balanced (run/schedule.balanced_order) and every cell runs in every round.
This table shows the effect itself, per cell, so a reader can see what the design cancels:

- after_self: the cell's timed starts whose previous start (samples.csv `after_cell`, warmups
  included) was the same cell; after_other: those after a start of another cell. Starts right
  after the binaries were read in afresh (no `after_cell`) are in neither.
- ratio: P50(after self) / P50(after other), both subsets resampled by the same blocks of time
  (stats.intervals.ratio_interval, the run's `blocks` rule): < 1 means a start after itself is
  faster. With fewer than MIN_SIDE starts on a side there is no interval (`why` says so).
- The `all` row pools every cell of a timer: the geometric mean of the cells' ratios, with an
  interval from the same joint block draws for every cell (as effects.csv's).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from gostartbench.analysis.summary import choose_b, sample_blocks, timing_span_s
from gostartbench.results.schema import CARRYOVER_COLUMNS, SPAWN
from gostartbench.stats import intervals
from gostartbench.stats.resample import rng as make_rng

MIN_SIDE = 10  # starts on each side below which a cell gets no interval
ALL_CELLS = "all"
SELF, OTHER = "self", "other"


def carryover(samples: pd.DataFrame, *, bootstrap: int, seed: int = 0) -> pd.DataFrame:
    """carryover.csv from samples.csv (the spawn timer's ok timed runs; hyperfine's runs are
    back to back, always after themselves, so they have no comparison); `bootstrap`: the
    run's measure.bootstrap (fewer for very many samples, as summary.csv's)."""
    if "after_cell" not in samples or samples.empty:
        return pd.DataFrame(columns=CARRYOVER_COLUMNS)
    timed = samples["ok"] & (samples["round"] >= 0)
    b = choose_b(int(timed.sum()), bootstrap)
    ok = samples[timed & (samples["timer"] == SPAWN)].copy()
    if ok.empty:
        return pd.DataFrame(columns=CARRYOVER_COLUMNS)
    ok["block"] = sample_blocks(ok)
    after = ok["after_cell"].fillna("").astype(str)
    ok["side"] = np.where(after == "", "", np.where(after == ok["cell"].astype(str), SELF, OTHER))
    rule = intervals.span_rule(timing_span_s(ok))
    rng = make_rng(seed)
    rows: list[dict[str, Any]] = []
    sides: dict[Any, tuple[np.ndarray, ...]] = {}
    for cell, g in ok.groupby("cell", sort=True):
        n = len(g)
        s, o = g[g["side"] == SELF], g[g["side"] == OTHER]
        row: dict[str, Any] = {
            "cell": cell, "timer": SPAWN, "n": n, "n_after_self": len(s),
            "n_after_other": len(o), "share_after_self": len(s) / n if n else np.nan,
            "p50_after_self_ms": float(s["wall_ns"].median()) / 1e6 if len(s) else np.nan,
            "p50_after_other_ms": float(o["wall_ns"].median()) / 1e6 if len(o) else np.nan,
            "ratio": np.nan, "ci95_low": np.nan, "ci95_high": np.nan, "ci_rule": rule, "why": "",
        }
        if min(len(s), len(o)) < MIN_SIDE:
            row["why"] = (f"fewer than {MIN_SIDE} starts after "
                          f"{'itself' if len(s) < MIN_SIDE else 'another cell'}: no interval")
        else:
            xs, bs = s["wall_ns"].to_numpy(float), s["block"].to_numpy()
            xo, bo = o["wall_ns"].to_numpy(float), o["block"].to_numpy()
            sides[(str(cell), SELF)] = (bs, xs)
            sides[(str(cell), OTHER)] = (bo, xo)
            iv = intervals.ratio_interval(xs, bs, xo, bo, b, rng)
            row.update(ratio=iv.estimate, ci95_low=iv.low, ci95_high=iv.high)
            if not np.isfinite(iv.low):
                row["why"] = "all in one block of time: no interval"
        rows.append(row)
    cells = sorted({c for c, _ in sides})
    if len(cells) >= 2:
        reps = intervals.joint_median_replicates(sides, b, rng)
        logs = np.mean([np.log(reps[(c, SELF)] / reps[(c, OTHER)]) for c in cells], axis=0)
        est = float(np.exp(np.mean([np.log(np.median(sides[(c, SELF)][1])
                                           / np.median(sides[(c, OTHER)][1])) for c in cells])))
        lo, hi = intervals.ci95(logs)
        k = len(np.unique(np.concatenate([v[0] for v in sides.values()])))
        iv = intervals.widen(est, float(np.exp(lo)), float(np.exp(hi)), k)
        pooled = ok[ok["cell"].isin(cells)]
        rows.append({
            "cell": ALL_CELLS, "timer": SPAWN, "n": len(pooled),
            "n_after_self": int((pooled["side"] == SELF).sum()),
            "n_after_other": int((pooled["side"] == OTHER).sum()),
            "share_after_self": float((pooled["side"] == SELF).mean()),
            "p50_after_self_ms": np.nan, "p50_after_other_ms": np.nan, "ratio": iv.estimate,
            "ci95_low": iv.low, "ci95_high": iv.high, "ci_rule": rule,
            "why": f"geometric mean over {len(cells)} cells"})
    return pd.DataFrame(rows, columns=CARRYOVER_COLUMNS)


def largest(table: pd.DataFrame) -> dict[str, Any] | None:
    """The row (not `all`) whose interval is furthest from no change, where one is resolved
    (its ci95 excludes 1); None when no cell's is."""
    if table.empty:
        return None
    t = table[(table["cell"] != ALL_CELLS) & table["ci95_low"].notna()]
    t = t[(t["ci95_low"] > 1) | (t["ci95_high"] < 1)]
    if t.empty:
        return None
    far = (np.log(t["ratio"].astype(float))).abs()
    return dict(t.loc[far.idxmax()])
