"""The bootstrap of runs taken as independent (rule `runs`): for figures whose runs have no
time (traced runs, inittrace runs, calibration's rounds), where blocks of time cannot be formed.
It assumes no drift within the batch; each interval made here says so by its rule."""

from __future__ import annotations

import numpy as np
from scipy import stats as sps

from gostartbench.stats.intervals import RULE_RUNS, Interval, ci95

EXACT_FROM = 512  # from this many runs, median replicates come from the exact distribution
_CHUNK_ELEMS = 4_000_000  # bound on replicate × sample elements held at once


def rng(seed: int = 0) -> np.random.Generator:
    """The project's one random generator constructor (seeded: a report redraws the same)."""
    return np.random.default_rng(seed)


def bootstrap_medians(x: np.ndarray, b: int, gen: np.random.Generator) -> np.ndarray:
    """B bootstrap replicates of the median of x.

    Below EXACT_FROM runs: resampling (chunked to bound memory). From EXACT_FROM on: drawn
    from the exact bootstrap distribution of the median order statistic — in a resample, the
    number of values ≤ x₍ₖ₎ is Binomial(n, k/n), so P(median* ≤ x₍ₖ₎) is a binomial tail —
    which is what resampling approximates, at O(n) instead of O(B·n). (For even n this is the
    lower median; the difference is one gap between neighbouring order statistics.)"""
    x = np.asarray(x, dtype=float)
    n = len(x)
    if n == 1:
        return np.full(b, x[0])
    if n >= EXACT_FROM:
        xs = np.sort(x)
        ranks = np.arange(1, n + 1)
        cdf = sps.binom.sf((n + 1) // 2 - 1, n, ranks / n)
        pick = np.searchsorted(cdf, gen.random(b), side="left").clip(0, n - 1)
        return np.asarray(xs[pick], dtype=float)
    out = np.empty(b)
    chunk = max(1, _CHUNK_ELEMS // max(n, 1))
    for i in range(0, b, chunk):
        k = min(chunk, b - i)
        idx = gen.integers(0, n, size=(k, n))
        out[i:i + k] = np.median(x[idx], axis=1)
    return out


def paired_ratio_replicates(a: np.ndarray, b_: np.ndarray, b: int, gen: np.random.Generator
                            ) -> np.ndarray:
    """Replicates of median(a)/median(b_) resampling the same positions of both (paired
    rounds: a drift the two share cancels)."""
    a, b_ = np.asarray(a, dtype=float), np.asarray(b_, dtype=float)
    n = min(len(a), len(b_))
    a, b_ = a[:n], b_[:n]
    b = min(b, max(200, 20_000_000 // max(n, 1)))  # no exact shortcut: bound the cost
    out = np.empty(b)
    chunk = max(1, _CHUNK_ELEMS // max(n, 1))
    for i in range(0, b, chunk):
        k = min(chunk, b - i)
        idx = gen.integers(0, n, size=(k, n))
        out[i:i + k] = np.median(a[idx], axis=1) / np.median(b_[idx], axis=1)
    return out


def median_interval(x: np.ndarray, b: int, gen: np.random.Generator) -> Interval:
    """The median of independent runs with its ci95 (one run: no interval)."""
    x = np.asarray(x, dtype=float)
    if len(x) < 2:
        return Interval(float(x[0]) if len(x) else float("nan"), float("nan"), float("nan"),
                        RULE_RUNS)
    lo, hi = ci95(bootstrap_medians(x, b, gen))
    return Interval(float(np.median(x)), lo, hi, RULE_RUNS)


def paired_ratio_interval(a: np.ndarray, b_: np.ndarray, b: int, gen: np.random.Generator
                          ) -> Interval:
    """median(a) / median(b_) over paired rounds, resampled together."""
    lo, hi = ci95(paired_ratio_replicates(a, b_, b, gen))
    n = min(len(a), len(b_))
    return Interval(float(np.median(np.asarray(a[:n], float)) /
                          np.median(np.asarray(b_[:n], float))), lo, hi, RULE_RUNS)


def independent_ratio_interval(a: np.ndarray, b_: np.ndarray, b: int, gen: np.random.Generator
                               ) -> Interval:
    """median(a) / median(b_) of two independent sets of runs."""
    lo, hi = ci95(bootstrap_medians(a, b, gen) / bootstrap_medians(b_, b, gen))
    return Interval(float(np.median(a) / np.median(b_)), lo, hi, RULE_RUNS)


def paired_delta_interval(a: np.ndarray, b_: np.ndarray, b: int, gen: np.random.Generator
                          ) -> Interval:
    """The median of per-round differences a − b_ (paired rounds cancel the drift the two
    share), with the ci95 of that median."""
    n = min(len(a), len(b_))
    d = np.asarray(a[:n], dtype=float) - np.asarray(b_[:n], dtype=float)
    return median_interval(d, b, gen)


def mean_of_differences(pairs: list[tuple[np.ndarray, np.ndarray]], b: int,
                        gen: np.random.Generator, scale: list[float] | None = None
                        ) -> tuple[Interval, np.ndarray]:
    """The mean over pairs of median(x) − median(y) (each divided by its `scale` when given: a
    share), with its ci95 — each side resampled on its own — and the replicates."""
    sc = scale or [1.0] * len(pairs)
    point = float(np.mean([(np.median(x) - np.median(y)) / s
                           for (x, y), s in zip(pairs, sc, strict=True)]))
    reps = np.zeros(b)
    for (x, y), s in zip(pairs, sc, strict=True):
        reps += (bootstrap_medians(x, b, gen) - bootstrap_medians(y, b, gen)) / s
    reps /= len(pairs)
    lo, hi = ci95(reps)
    return Interval(point, lo, hi, RULE_RUNS), reps


def mean_intervals(values: np.ndarray, b: int, gen: np.random.Generator
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each row's mean over its columns (the runs) with a percentile-bootstrap ci95, every row
    resampled by the *same* draws of runs (rows: e.g. functions, columns: starts). Assumes the
    runs independent (rule `runs`)."""
    v = np.asarray(values, dtype=float)
    n = v.shape[1] if v.ndim == 2 else 0
    if n == 0:
        nan = np.full(v.shape[0] if v.ndim == 2 else 0, np.nan)
        return nan, nan, nan
    est = v.mean(axis=1)
    if n < 2:
        return est, np.full_like(est, np.nan), np.full_like(est, np.nan)
    counts = np.stack([np.bincount(gen.integers(0, n, n), minlength=n) for _ in range(b)])
    reps = counts @ v.T / n  # (b, rows)
    lo, hi = np.percentile(reps, [2.5, 97.5], axis=0)
    return est, lo, hi
