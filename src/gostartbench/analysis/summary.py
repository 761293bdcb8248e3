"""Statistics derived from raw samples only (pure: DataFrames in, DataFrames out).

What they assume, stated once:
- P50/mean/stddev/p90/p99/min/max are pandas' own over ok samples of measured rounds
  (stddev with ddof=1; quantiles by linear interpolation); MAD is the raw median absolute
  deviation (not scaled by 1.4826); cv = stddev / mean.
- ci95 of a P50: percentile bootstrap by blocks of time (gostartbench.stats.intervals: runs taken
  within one block — BLOCK_S, shorter for short runs — are resampled together, because noise
  comes in bursts and close runs are not independent).
- Ratio to the baseline: P50(cell) / P50(baseline); its ci95 resamples both by the *same*
  blocks of time (jointly), so a burst that slowed both cancels. This is the interval the run's
  stopping rule (`measure.precision`) uses too.
- p_value: two-sided Mann–Whitney U of the cell's runs against its baseline's (no normality
  assumed; it assumes independent runs, which bursts break: a decision also needs the
  interval, see significance.py); p_adj: Holm–Bonferroni over all cells compared within a timer.
- ci_rule: the rule the row's intervals were made by (stats.intervals.RULES): `blocks`, or
  `short-run blocks` for a run shorter than FULL_SPAN_S of timing, or `rounds` (no times).
- significant: see stats/significance.py (p_adj < 0.05, the ratio's ci95 excludes 1, and
  |ratio − 1| ≥ min_effect, the run's own, 1% by default).
- B (bootstrap resamples) shrinks with the number of samples so a report of 1 M samples stays
  fast; the B used is a column.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from gostartbench.stats import intervals
from gostartbench.stats.resample import rng as make_rng
from gostartbench.stats.significance import DEFAULT_MIN_EFFECT, holm, mann_whitney_p, significant

FEW_SAMPLES = 30
HIGH_CV = 0.10
BUDGET = 60_000_000  # bootstrap elements per report (B × n summed over cells)


def sample_blocks(ok: pd.DataFrame) -> np.ndarray:
    """Each timed sample's bootstrap block (intervals.run_blocks), per timer: a timer's
    samples share one grid."""
    out = np.zeros(len(ok), dtype=np.int64)
    timers = ok["timer"].to_numpy()
    for t in np.unique(timers):
        m = timers == t
        sub = ok[m]
        nan = np.full(len(sub), np.nan)  # columns a table from before schema 1.2 lacks
        out[m] = intervals.run_blocks(
            sub["epoch"].to_numpy(dtype=float) if "epoch" in sub else nan,
            sub["done_unix_ns"].to_numpy(dtype=float) if "done_unix_ns" in sub else nan,
            sub["round"].to_numpy())
    return out


def timed_by_cell(samples: pd.DataFrame, rss: bool = False
                  ) -> dict[tuple[str, str], tuple[np.ndarray, ...]]:
    """(cell, timer) → (blocks, wall ms[, peak RSS bytes]) of the ok timed samples: what every
    interval over a run's cells is computed from."""
    ok = samples[samples["ok"] & (samples["round"] >= 0)].copy()
    ok["block"] = sample_blocks(ok)
    cols = ["block", "wall_ms", *(["maxrss_bytes"] if rss else [])]
    ok["wall_ms"] = ok["wall_ns"] / 1e6
    return {k: tuple(v[c].to_numpy(dtype=float if c != "block" else np.int64) for c in cols)
            for k, v in ok.groupby(["cell", "timer"])}


def choose_b(total_samples: int, wanted: int) -> int:
    """Bootstrap resamples: `wanted`, fewer when a report holds very many samples."""
    return int(max(200, min(wanted, BUDGET // max(total_samples, 1))))


def summarise(samples: pd.DataFrame, cells: pd.DataFrame, baseline_of: Mapping[str, str],
              *, bootstrap: int, min_effect: float = DEFAULT_MIN_EFFECT, seed: int = 0
              ) -> pd.DataFrame:
    """summary.csv: one row per cell × timer. `baseline_of` maps cell → its baseline cell."""
    s = samples
    ok = s[(s["ok"]) & (s["round"] >= 0)].copy()
    ok["wall_ms"] = ok["wall_ns"] / 1e6
    if "rss_floor_bytes" not in ok:  # tables from before schema 1.3
        ok["rss_floor_bytes"] = np.nan
    failed = s[~s["ok"]].groupby(["cell", "timer"]).size()
    rng = make_rng(seed)
    b = choose_b(len(ok), bootstrap)
    summ = _descriptive(ok.groupby(["cell", "timer"], sort=True))
    arrays = timed_by_cell(samples)
    summ["ci95_low_ms"], summ["ci95_high_ms"] = _p50_intervals(summ, arrays, b, rng)
    summ["bootstrap_b"] = b
    rows = [_against_baseline(cell, timer, baseline_of.get(cell), arrays, b, rng)
            for cell, timer in zip(summ["cell"], summ["timer"], strict=True)]
    summ = pd.concat([summ, pd.DataFrame(rows)], axis=1)
    summ["p_adj"] = np.nan
    for _timer, idx in summ.groupby("timer").groups.items():
        summ.loc[idx, "p_adj"] = holm(summ.loc[idx, "p_value"].to_numpy())
    summ["significant"] = significant(summ["ratio"], summ["ratio_ci95_low"],
                                      summ["ratio_ci95_high"], min_effect, summ["p_adj"])
    summ["n_failed"] = [int(failed.get((c, t), 0)) for c, t in
                        zip(summ["cell"], summ["timer"], strict=True)]
    summ["warnings"] = [_warnings(r) for r in summ.to_dict("records")]
    summ["ci_rule"] = summ["timer"].map(lambda t: intervals.span_rule(
        timing_span_s(ok[ok["timer"] == t])))
    _short_run(summ, ok)
    meta_cols = [c for c in cells.columns if c not in summ.columns and c not in
                 ("reason", "binary", "sha256", "sha256_code", "cache_key", "build_s",
                  "cached", "status")]
    return summ.merge(cells[["cell", *meta_cols]], on="cell", how="left")


def timing_span_s(samples: pd.DataFrame) -> float:
    """Seconds from a run's first ok timed sample to its last (inf when the samples carry no
    times, runs before schema 1.2, which are judged as they were; 0 with fewer than two)."""
    if "done_unix_ns" not in samples or samples.empty:
        return float("inf")
    ok = samples[samples["ok"] & (samples["round"] >= 0)]
    t = pd.to_numeric(ok["done_unix_ns"], errors="coerce").dropna()
    return (float(t.max()) - float(t.min())) / 1e9 if len(t) >= 2 else 0.0


def short_run(samples: pd.DataFrame) -> bool:
    """True when the run's timed samples span less than intervals.FULL_SPAN_S."""
    return intervals.span_rule(timing_span_s(samples)) == intervals.RULE_SHORT


def _short_run(summ: pd.DataFrame, ok: pd.DataFrame) -> None:
    """A timer's samples spanning less than intervals.FULL_SPAN_S had blocks shorter than
    BLOCK_S: their intervals cannot hold a drift longer than a block, so every change in them
    is flagged in `warnings` and not called significant on that interval alone."""
    for timer, g in ok.groupby("timer"):
        span = timing_span_s(g)
        if intervals.span_rule(span) != intervals.RULE_SHORT:
            continue
        k = len(np.unique(sample_blocks(g)))
        why = (f"short run: {span:.1f} s of timing in {k} blocks of "
               f"{intervals.block_length_s(span):.1f} s (< {intervals.BLOCK_S:g} s); a drift "
               f"longer than a block is not in this interval: not called significant on it "
               f"(≥ {intervals.FULL_SPAN_S:g} s of timing is)")
        m = (summ["timer"] == timer) & (summ["cell"] != summ["baseline"]) & \
            summ["ratio"].notna()
        summ.loc[m, "warnings"] = [w + ("; " if w else "") + why for w in summ.loc[m, "warnings"]]
        summ.loc[m, "significant"] = False


def _descriptive(g: Any) -> pd.DataFrame:
    """Per-group descriptive statistics of wall time (ms), RSS, faults and CPU."""
    w = g["wall_ms"]
    summ = pd.DataFrame({
        "n": w.size(), "p50_ms": w.median(), "mean_ms": w.mean(), "stddev_ms": w.std(ddof=1),
        "p90_ms": w.quantile(0.9), "p99_ms": w.quantile(0.99), "min_ms": w.min(),
        "max_ms": w.max(),
        "maxrss_p50_bytes": g["maxrss_bytes"].median(),
        "rss_floor_p50_bytes": g["rss_floor_bytes"].median(), "minflt_p50": g["minflt"].median(),
        "majflt_p50": g["majflt"].median(),
        "user_p50_ms": g["user_ns"].median() / 1e6, "sys_p50_ms": g["sys_ns"].median() / 1e6,
    })
    summ["mad_ms"] = w.apply(lambda x: float(np.median(np.abs(x - np.median(x)))))
    summ["cv"] = summ["stddev_ms"] / summ["mean_ms"]
    return summ.reset_index()


def _p50_intervals(summ: pd.DataFrame, arrays: Mapping[tuple[str, str], tuple[np.ndarray, ...]],
                   b: int, rng: np.random.Generator) -> tuple[list[float], list[float]]:
    """Block-bootstrap ci95 of each row's P50."""
    lo, hi = [], []
    for cell, timer in zip(summ["cell"], summ["timer"], strict=True):
        blocks, x = arrays[(cell, timer)]
        iv = intervals.median_interval(x, blocks, b, rng)
        lo.append(iv.low)
        hi.append(iv.high)
    return lo, hi


def _against_baseline(cell: str, timer: str, base: str | None,
                      arrays: Mapping[tuple[str, str], tuple[np.ndarray, ...]], b: int,
                      rng: np.random.Generator) -> dict[str, Any]:
    """Ratio to the baseline's P50 with its ci95 (both resampled by the same blocks of time)
    and the Mann–Whitney U p-value."""
    r: dict[str, Any] = {"baseline": base or "", "ratio": np.nan, "ratio_ci95_low": np.nan,
                         "ratio_ci95_high": np.nan, "p_value": np.nan, "paired": False}
    if base == cell:
        r.update(ratio=1.0, ratio_ci95_low=1.0, ratio_ci95_high=1.0)
        return r
    if not base or (base, timer) not in arrays or (cell, timer) not in arrays:
        return r
    ba, xa = arrays[(cell, timer)]
    bb, xb = arrays[(base, timer)]
    iv = intervals.ratio_interval(xa, ba, xb, bb, b, rng)
    r.update(ratio=iv.estimate, ratio_ci95_low=iv.low, ratio_ci95_high=iv.high,
             paired=bool(len(np.intersect1d(ba, bb))))
    r["p_value"] = mann_whitney_p(xa, xb)
    return r


def _warnings(r: Mapping[str, Any]) -> str:
    w = []
    if r["n"] < FEW_SAMPLES:
        w.append(f"few samples (n={int(r['n'])})")
    if r["cv"] == r["cv"] and r["cv"] > HIGH_CV:
        w.append(f"high cv ({r['cv']:.2f})")
    if r.get("n_failed", 0):
        w.append(f"{int(r['n_failed'])} failed run(s)")
    if not r.get("baseline"):
        w.append("no baseline cell")
    elif r["ratio"] != r["ratio"]:
        w.append("baseline not measured")
    if r.get("maxrss_p50_bytes", 0) <= r.get("rss_floor_p50_bytes", float("nan")):
        # the child's ru_maxrss is max(its own peak, the spawner's RSS): this one is the latter
        w.append("RSS at the spawn helper's floor (the program's own peak is at most this)")
    return "; ".join(w)
