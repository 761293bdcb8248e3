"""effects.csv: what each knob does, across the board and per app.

For each axis value, its effect on P50 (and size, RSS) against the axis's baseline value, over
every pair of cells that differ only in that axis (same app, toolchain, timer, other axes),
reported per page-cache condition (an effect can differ in kind between warm and cold: strip
does nothing warm and −20% cold, so they are never averaged together). Aggregate: geometric
mean of the pairs' ratios; ci95 by bootstrapping every cell's runs;
every cell's P50 resampled by the same blocks of time (gostartbench.stats.intervals: joint,
as summary.csv's ratios), widened for few blocks;
significance by stats/significance.py (no test: ci and min_effect). Rows with app `all` pool
every app; with several apps, each app has its rows too, so "cgo 0 → 1: +12%" pooled stands
beside hello's 0% and netcli's +36%.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from gostartbench.analysis.summary import short_run, timed_by_cell, timing_span_s
from gostartbench.results.schema import EFFECTS_COLUMNS
from gostartbench.stats import intervals
from gostartbench.stats.resample import rng as make_rng
from gostartbench.stats.significance import DEFAULT_MIN_EFFECT, significant

ALL_APPS = "all"
Pair = tuple[dict[str, Any], dict[str, Any]]  # (cell's summary row, its baseline's)


def effects(summary: pd.DataFrame, samples: pd.DataFrame, axes: Sequence[str],
            baseline: Mapping[str, str], *, b: int, seed: int = 0,
            min_effect: float = DEFAULT_MIN_EFFECT,
            axis_values: Mapping[str, Sequence[str]] | None = None,
            only: Sequence[str] | None = None) -> pd.DataFrame:
    """effects.csv from summary rows and raw samples (see the module's doc); `only`: the axes
    to give rows for (pairs are still matched on every axis)."""
    rng = make_rng(seed)
    walls = timed_by_cell(samples)
    # Every cell of a timer is resampled by the same draws of blocks of time, once per report:
    # a pair's ratio is then the joint-block ratio of summary.csv (a burst that slowed both
    # cancels), and a baseline serving k pairs is one resampling, not k independent ones.
    reps_cache: dict[tuple[str, str], np.ndarray] = {}
    sm = summary.copy()
    for a in axes:
        sm[a] = sm[a].astype(str)
    apps = sorted(sm["app"].astype(str).unique()) if "app" in sm else []
    scopes = [ALL_APPS, *apps] if len(apps) > 1 else [ALL_APPS]
    rows = []
    for axis in (only if only is not None else axes):
        values = list(axis_values[axis]) if axis_values and axis in axis_values else \
            sorted(sm[axis].unique())
        base_v = str(baseline.get(axis, values[0]))
        for v in values:
            if str(v) == base_v:
                continue
            pairs = pairs_of(sm, axes, axis, str(v), base_v)
            for timer, cond in sorted({(p[0]["timer"], condition_of(p[0], axis)) for p in pairs}):
                tp = [p for p in pairs
                      if p[0]["timer"] == timer and condition_of(p[0], axis) == cond]
                for scope in scopes:
                    sp = tp if scope == ALL_APPS else [p for p in tp if p[0]["app"] == scope]
                    if sp:
                        rows.append({"axis": axis, "value": v, "baseline_value": base_v,
                                     "app": scope, "timer": timer, "cache": cond,
                                     **_aggregate(sp, timer, walls, b, rng, reps_cache)})
    df = pd.DataFrame(rows, columns=EFFECTS_COLUMNS[:EFFECTS_COLUMNS.index("significant")])
    df["significant"] = significant(df["ratio"], df["ci95_low"], df["ci95_high"],
                                    min_effect) if len(df) else pd.Series(dtype=bool)
    if len(df) and short_run(samples):
        # blocks shorter than BLOCK_S: a drift longer than a block is not in these intervals
        # (summary._short_run flags the cells alike)
        df["significant"] = False
    df["ci_rule"] = intervals.span_rule(timing_span_s(samples))
    df["phase"] = ""
    return df


def startup_rows(eff: pd.DataFrame) -> pd.DataFrame:
    """The startup-time rows of effects.csv (not the per-phase ones)."""
    if eff.empty or "phase" not in eff:
        return eff
    return eff[eff["phase"].fillna("").astype(str) == ""]


def pairs_of(sm: pd.DataFrame, axes: Sequence[str], axis: str, v: str, base_v: str
           ) -> list[Pair]:
    """Every (cell with axis=v, cell with axis=base_v) that agree on everything else."""
    # The toolchain can be an axis too (several Go versions in one run): then it leaves the key.
    keycols = list(dict.fromkeys(["app", "toolchain", "timer", *axes]))
    index = {tuple(r[k] for k in keycols): r for r in sm.to_dict("records")}
    pairs = []
    for key, r in index.items():
        if r[axis] != v:
            continue
        bkey = tuple(base_v if k == axis else x for k, x in zip(keycols, key, strict=True))
        if bkey in index:
            pairs.append((r, index[bkey]))
    return pairs


def _aggregate(tp: Sequence[Pair], timer: str,
               walls: Mapping[tuple[str, str], tuple[np.ndarray, ...]],
               b: int, rng: np.random.Generator,
               cache: dict[tuple[str, str], np.ndarray] | None = None) -> dict[str, Any]:
    """Geometric-mean ratio of some pairs with its bootstrap ci95, size and RSS ratios
    (`cache`: each cell's median replicates, drawn once and reused)."""
    cache = {} if cache is None else cache

    def reps_of(cell: str) -> np.ndarray:
        if (cell, timer) not in cache:
            cache.update(intervals.joint_median_replicates(
                {k: v[:2] for k, v in walls.items() if k[1] == timer}, b, rng))
        return cache[(cell, timer)]

    logs = np.array([np.log(p[0]["p50_ms"] / p[1]["p50_ms"]) for p in tp])
    reps = np.zeros(b)
    for cv_, cb_ in tp:
        xa = walls.get((cv_["cell"], timer))
        xb = walls.get((cb_["cell"], timer))
        if xa is None or xb is None or len(xa[1]) < 2 or len(xb[1]) < 2:
            continue
        reps += np.log(reps_of(str(cv_["cell"])) / reps_of(str(cb_["cell"])))
    reps /= max(len(tp), 1)
    blocks = [walls[(str(c["cell"]), timer)][0] for p in tp for c in p
              if (str(c["cell"]), timer) in walls]
    k = len(np.unique(np.concatenate(blocks))) if blocks else 0
    lo, hi = intervals.ci95(reps)
    iv = intervals.widen(float(np.exp(logs.mean())), float(np.exp(lo)), float(np.exp(hi)), k)
    size_r = [p[0]["size_bytes"] / p[1]["size_bytes"] for p in tp
              if p[0].get("size_bytes") and p[1].get("size_bytes")]
    rss_r = [p[0]["maxrss_p50_bytes"] / p[1]["maxrss_p50_bytes"] for p in tp
             if p[0].get("maxrss_p50_bytes") and p[1].get("maxrss_p50_bytes")]
    return {
        "pairs": len(tp), "ratio": iv.estimate, "ci95_low": iv.low, "ci95_high": iv.high,
        "min_pair_ratio": float(np.exp(logs.min())), "max_pair_ratio": float(np.exp(logs.max())),
        "size_ratio": float(np.exp(np.mean(np.log(size_r)))) if size_r else np.nan,
        "rss_ratio": float(np.exp(np.mean(np.log(rss_r)))) if rss_r else np.nan,
        "pairs_significant": int(sum(bool(p[0].get("significant")) for p in tp)),
    }


def pair_groups(sm: pd.DataFrame, axes: Sequence[str], baseline: Mapping[str, str],
                axis_values: Mapping[str, Sequence[str]]
                ) -> Iterator[tuple[str, str, str, str, str, list[Pair]]]:
    """Every knob's pairs of cells, as the tables by knob group them: (axis, value, baseline
    value, cache condition, scope — `all`, then each app where there are several — and the
    pairs), for the axes `sm` (summary rows, axis columns as text) has; empty groups left out."""
    apps = sorted(sm["app"].astype(str).unique()) if len(sm) else []
    scopes = [ALL_APPS, *apps] if len(apps) > 1 else [ALL_APPS]
    for axis in [a for a in axes if a in sm]:
        values = list(axis_values.get(axis, sorted(sm[axis].unique())))
        base_v = str(baseline.get(axis, values[0]))
        for v in values:
            if str(v) == base_v:
                continue
            pairs = pairs_of(sm, axes, axis, str(v), base_v)
            for cond in sorted({condition_of(p[0], axis) for p in pairs}):
                cp = [p for p in pairs if condition_of(p[0], axis) == cond]
                for scope in scopes:
                    sp = cp if scope == ALL_APPS else [p for p in cp if p[0]["app"] == scope]
                    if sp:
                        yield axis, str(v), base_v, cond, scope, sp


def condition_of(row: Mapping[str, Any], axis: str) -> str:
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
