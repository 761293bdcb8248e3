"""Statistics derived from raw samples only (pure: DataFrames in, DataFrames out).

What they assume, stated once:
- P50/mean/stddev/p90/p99/min/max are pandas' own over ok samples of measured rounds
  (stddev with ddof=1; quantiles by linear interpolation); MAD is the raw median absolute
  deviation (not scaled by 1.4826); cv = stddev / mean.
- ci95 of a P50: percentile bootstrap (resampling runs with replacement; B below). Runs are
  treated as exchangeable: drift is handled by interleaving, not by this interval.
- Ratio to the baseline: P50(cell) / P50(baseline). Where both were measured in the same
  interleaved rounds, the bootstrap resamples rounds jointly (paired), so drift common to a
  round cancels; otherwise independently.
- p_value: two-sided Mann–Whitney U of the cell's runs against its baseline's (no normality
  assumed); p_adj: Holm–Bonferroni over all cells compared within a timer.
- significant: p_adj < 0.05, the ratio's ci95 excludes 1, and |ratio − 1| ≥ min_effect
  (default 1%): smaller differences are never called significant.
- B (bootstrap resamples) shrinks with the number of samples so a report of 1 M samples stays
  fast; the B used is a column. From 512 runs on, a cell's median replicates are drawn from
  the exact bootstrap distribution of the median (a binomial tail) instead of by resampling.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

ALPHA = 0.05
FEW_SAMPLES = 30
HIGH_CV = 0.10
BUDGET = 60_000_000  # bootstrap elements per report (B × n summed over cells)


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


EXACT_FROM = 512  # from this many runs, median replicates come from the exact distribution


def bootstrap_medians(x: np.ndarray, b: int, rng: np.random.Generator) -> np.ndarray:
    """B bootstrap replicates of the median of x.

    Below EXACT_FROM runs: resampling (chunked to bound memory). From EXACT_FROM on: drawn
    from the exact bootstrap distribution of the median order statistic — in a resample, the
    number of values ≤ x₍ₖ₎ is Binomial(n, k/n), so P(median* ≤ x₍ₖ₎) is a binomial tail —
    which is what resampling approximates, at O(n) instead of O(B·n). (For even n this is the
    lower median; the difference is one gap between neighbouring order statistics.)"""
    n = len(x)
    if n >= EXACT_FROM:
        xs = np.sort(x)
        ranks = np.arange(1, n + 1)
        cdf = sps.binom.sf((n + 1) // 2 - 1, n, ranks / n)
        pick = np.searchsorted(cdf, rng.random(b), side="left").clip(0, n - 1)
        return np.asarray(xs[pick], dtype=float)
    out = np.empty(b)
    chunk = max(1, 4_000_000 // max(n, 1))
    for i in range(0, b, chunk):
        k = min(chunk, b - i)
        idx = rng.integers(0, n, size=(k, n))
        out[i:i + k] = np.median(x[idx], axis=1)
    return out


def bootstrap_ratio(a: np.ndarray, b_: np.ndarray, b: int, rng: np.random.Generator,
                    paired: bool) -> np.ndarray:
    """Replicates of median(a)/median(b_); paired resamples the same positions of both."""
    if paired and len(a) == len(b_):
        n = len(a)
        # Paired resampling cannot use the exact shortcut; bound its cost for huge runs.
        b = min(b, max(200, 20_000_000 // max(n, 1)))
        out = np.empty(b)
        chunk = max(1, 4_000_000 // max(n, 1))
        for i in range(0, b, chunk):
            k = min(chunk, b - i)
            idx = rng.integers(0, n, size=(k, n))
            out[i:i + k] = np.median(a[idx], axis=1) / np.median(b_[idx], axis=1)
        return out
    return bootstrap_medians(a, b, rng) / bootstrap_medians(b_, b, rng)


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values (NaN stays NaN)."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full_like(p, np.nan)
    ok = ~np.isnan(p)
    idx = np.where(ok)[0]
    if not len(idx):
        return out
    order = idx[np.argsort(p[idx])]
    m = len(order)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def choose_b(total_samples: int, wanted: int) -> int:
    return int(max(200, min(wanted, BUDGET // max(total_samples, 1))))


def summarise(samples: pd.DataFrame, cells: pd.DataFrame, baseline_of: Mapping[str, str],
              *, bootstrap: int = 2000, min_effect: float = 0.01, seed: int = 0
              ) -> pd.DataFrame:
    """summary.csv: one row per cell × timer. `baseline_of` maps cell → its baseline cell."""
    s = samples
    ok = s[(s["ok"]) & (s["round"] >= 0)].copy()
    ok["wall_ms"] = ok["wall_ns"] / 1e6
    failed = s[~s["ok"]].groupby(["cell", "timer"]).size()
    rng = _rng(seed)
    b = choose_b(len(ok), bootstrap)
    g = ok.groupby(["cell", "timer"], sort=True)
    w = g["wall_ms"]
    summ = pd.DataFrame({
        "n": w.size(), "p50_ms": w.median(), "mean_ms": w.mean(), "stddev_ms": w.std(ddof=1),
        "p90_ms": w.quantile(0.9), "p99_ms": w.quantile(0.99), "min_ms": w.min(),
        "max_ms": w.max(),
        "maxrss_p50_bytes": g["maxrss_bytes"].median(), "minflt_p50": g["minflt"].median(),
        "majflt_p50": g["majflt"].median(),
        "user_p50_ms": g["user_ns"].median() / 1e6, "sys_p50_ms": g["sys_ns"].median() / 1e6,
    })
    summ["mad_ms"] = g["wall_ms"].apply(lambda x: float(np.median(np.abs(x - np.median(x)))))
    summ["cv"] = summ["stddev_ms"] / summ["mean_ms"]
    summ = summ.reset_index()
    arrays = {k: (v["round"].to_numpy(), v["wall_ms"].to_numpy()) for k, v in g}
    lo, hi = [], []
    for cell, timer in zip(summ["cell"], summ["timer"], strict=True):
        x = arrays[(cell, timer)][1]
        if len(x) >= 2:
            reps = bootstrap_medians(x, b, rng)
            lo.append(float(np.percentile(reps, 2.5)))
            hi.append(float(np.percentile(reps, 97.5)))
        else:
            lo.append(np.nan)
            hi.append(np.nan)
    summ["ci95_low_ms"], summ["ci95_high_ms"] = lo, hi
    summ["bootstrap_b"] = b

    # Against the baseline
    rows: list[dict[str, Any]] = []
    for cell, timer in zip(summ["cell"], summ["timer"], strict=True):
        base = baseline_of.get(cell)
        r: dict[str, Any] = {"baseline": base or "", "ratio": np.nan, "ratio_ci95_low": np.nan,
                             "ratio_ci95_high": np.nan, "p_value": np.nan, "paired": False}
        if base and base != cell and (base, timer) in arrays and (cell, timer) in arrays:
            ra, xa = arrays[(cell, timer)]
            rb, xb = arrays[(base, timer)]
            common = np.intersect1d(ra, rb)
            paired = len(common) >= max(2, 0.9 * min(len(ra), len(rb)))
            if paired:
                xa_p = xa[np.isin(ra, common)][np.argsort(ra[np.isin(ra, common)])]
                xb_p = xb[np.isin(rb, common)][np.argsort(rb[np.isin(rb, common)])]
                reps = bootstrap_ratio(xa_p, xb_p, b, rng, paired=True)
            else:
                reps = bootstrap_ratio(xa, xb, b, rng, paired=False)
            r.update(ratio=float(np.median(xa) / np.median(xb)),
                     ratio_ci95_low=float(np.percentile(reps, 2.5)),
                     ratio_ci95_high=float(np.percentile(reps, 97.5)), paired=bool(paired))
            if len(xa) >= 2 and len(xb) >= 2:
                r["p_value"] = float(sps.mannwhitneyu(xa, xb, alternative="two-sided").pvalue)
        elif base == cell:
            r.update(ratio=1.0, ratio_ci95_low=1.0, ratio_ci95_high=1.0)
        rows.append(r)
    summ = pd.concat([summ, pd.DataFrame(rows)], axis=1)
    summ["p_adj"] = np.nan
    for _timer, idx in summ.groupby("timer").groups.items():
        summ.loc[idx, "p_adj"] = holm(summ.loc[idx, "p_value"].to_numpy())
    summ["significant"] = (
        (summ["p_adj"] < ALPHA)
        & ((summ["ratio_ci95_low"] > 1) | (summ["ratio_ci95_high"] < 1))
        & ((summ["ratio"] - 1).abs() >= min_effect)
    )
    summ["n_failed"] = [int(failed.get((c, t), 0)) for c, t in
                        zip(summ["cell"], summ["timer"], strict=True)]
    summ["warnings"] = [_warnings(r) for r in summ.to_dict("records")]
    meta_cols = [c for c in cells.columns if c not in summ.columns and c not in
                 ("reason", "binary", "sha256", "sha256_code", "cache_key", "build_s",
                  "cached", "status")]
    out = summ.merge(cells[["cell", *meta_cols]], on="cell", how="left")
    return out


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
    return "; ".join(w)


def paired_delta_ms(a_ns: Sequence[int], b_ns: Sequence[int], b: int = 2000, seed: int = 0
                    ) -> dict[str, float]:
    """Median of per-round differences a−b (ms) with a bootstrap ci95: paired rounds cancel the
    drift the two share (calibration ladder)."""
    a = np.asarray(a_ns, dtype=float) / 1e6
    bb = np.asarray(b_ns, dtype=float) / 1e6
    n = min(len(a), len(bb))
    d = a[:n] - bb[:n]
    reps = bootstrap_medians(d, b, _rng(seed))
    return {"delta_ms": float(np.median(d)), "ci95_low_ms": float(np.percentile(reps, 2.5)),
            "ci95_high_ms": float(np.percentile(reps, 97.5))}


def noise(walls_ns: Sequence[int], b: int = 2000, seed: int = 0) -> dict[str, float]:
    x = np.asarray(walls_ns, dtype=float) / 1e6
    reps = bootstrap_medians(x, b, _rng(seed))
    half = float((np.percentile(reps, 97.5) - np.percentile(reps, 2.5)) / 2)
    p50 = float(np.median(x))
    return {"n": len(x), "p50_ms": p50, "cv": float(np.std(x, ddof=1) / np.mean(x)),
            "p50_ci95_halfwidth_ms": half, "p50_ci95_halfwidth_rel": half / p50,
            # Two independent P50s differ resolvably when apart by more than ~√2 × 1.96σ̂:
            "min_resolvable_rel": float(np.sqrt(2) * half / p50)}


# ---------------------------------------------------------------------------------------------
# Effects and Pareto


def effects(summary: pd.DataFrame, samples: pd.DataFrame, axes: Sequence[str],
            baseline: Mapping[str, str], *, b: int = 500, seed: int = 0,
            min_effect: float = 0.01,
            axis_values: Mapping[str, Sequence[str]] | None = None) -> pd.DataFrame:
    """effects.csv: for each axis value, its effect on P50 (and size, RSS) against the axis's
    baseline value, over every pair of cells that differ only in that axis (same app, toolchain,
    timer, other axes), reported per page-cache condition. Aggregate: geometric mean of the
    pairs' ratios; ci95 by bootstrapping every cell's runs (pairs independent); significant when
    the ci95 excludes 1 and the change is at least min_effect."""
    rng = _rng(seed)
    ok = samples[(samples["ok"]) & (samples["round"] >= 0)]
    walls = {k: v.to_numpy() / 1e6 for k, v in ok.groupby(["cell", "timer"])["wall_ns"]}
    # The toolchain can be an axis too (several Go versions in one run): then it leaves the key.
    keycols = list(dict.fromkeys(["app", "toolchain", "timer", *axes]))
    sm = summary.copy()
    for a in axes:
        sm[a] = sm[a].astype(str)
    index = {tuple(r[k] for k in keycols): r for r in sm.to_dict("records")}
    rows = []
    for axis in axes:
        values = list(axis_values[axis]) if axis_values and axis in axis_values else \
            sorted(sm[axis].unique())
        base_v = str(baseline.get(axis, values[0]))
        for v in values:
            if str(v) == base_v:
                continue
            pairs = []
            for key, r in index.items():
                if r[axis] != str(v):
                    continue
                bkey = tuple(base_v if k == axis else x for k, x in zip(keycols, key,
                                                                         strict=True))
                if bkey in index:
                    pairs.append((r, index[bkey]))
            # Per timer and per page-cache condition: an effect can differ in kind between
            # warm and cold (strip: nothing warm, −20% cold), so they are not averaged together.
            conds = sorted({(p[0]["timer"], _cond(p[0], axis)) for p in pairs})
            for timer, cond in conds:
                tp = [p for p in pairs if p[0]["timer"] == timer and _cond(p[0], axis) == cond]
                logs = np.array([np.log(p[0]["p50_ms"] / p[1]["p50_ms"]) for p in tp])
                reps = np.zeros(b)
                for cv_, cb_ in tp:
                    xa = walls.get((cv_["cell"], timer))
                    xb = walls.get((cb_["cell"], timer))
                    if xa is None or xb is None or len(xa) < 2 or len(xb) < 2:
                        continue
                    reps += np.log(bootstrap_medians(xa, b, rng) / bootstrap_medians(xb, b, rng))
                reps /= max(len(tp), 1)
                size_r = [p[0]["size_bytes"] / p[1]["size_bytes"] for p in tp
                          if p[0].get("size_bytes") and p[1].get("size_bytes")]
                rss_r = [p[0]["maxrss_p50_bytes"] / p[1]["maxrss_p50_bytes"] for p in tp
                         if p[0].get("maxrss_p50_bytes") and p[1].get("maxrss_p50_bytes")]
                sig = [bool(p[0].get("significant")) for p in tp]
                rows.append({
                    "axis": axis, "value": v, "baseline_value": base_v, "timer": timer,
                    "cache": cond,
                    "pairs": len(tp), "ratio": float(np.exp(logs.mean())),
                    "ci95_low": float(np.exp(np.percentile(reps, 2.5))),
                    "ci95_high": float(np.exp(np.percentile(reps, 97.5))),
                    "min_pair_ratio": float(np.exp(logs.min())),
                    "max_pair_ratio": float(np.exp(logs.max())),
                    "size_ratio": float(np.exp(np.mean(np.log(size_r)))) if size_r else np.nan,
                    "rss_ratio": float(np.exp(np.mean(np.log(rss_r)))) if rss_r else np.nan,
                    "pairs_significant": int(sum(sig)),
                })
    cols = ["axis", "value", "baseline_value", "timer", "cache", "pairs", "ratio", "ci95_low",
            "ci95_high", "min_pair_ratio", "max_pair_ratio", "size_ratio", "rss_ratio",
            "pairs_significant"]
    df = pd.DataFrame(rows, columns=cols)
    if len(df):
        df["significant"] = (((df["ci95_low"] > 1) | (df["ci95_high"] < 1))
                             & ((df["ratio"] - 1).abs() >= min_effect))
    else:
        df["significant"] = pd.Series(dtype=bool)
    return df


def _cond(row: Mapping[str, Any], axis: str) -> str:
    """The run condition an effect is reported under: the cache state, unless that is the axis
    itself (then 'all')."""
    if axis == "cache" or "cache" not in row:
        return "all"
    return str(row["cache"])


def pareto_front(x: Sequence[float], y: Sequence[float]) -> np.ndarray:
    """Mask of points no other point beats on both x and y (lower is better on both)."""
    xs = np.asarray(x, dtype=float)
    ys = np.asarray(y, dtype=float)
    n = len(xs)
    mask = np.ones(n, dtype=bool)
    for i in range(n):
        dominated = (xs <= xs[i]) & (ys <= ys[i]) & ((xs < xs[i]) | (ys < ys[i]))
        if dominated.any():
            mask[i] = False
    return mask
