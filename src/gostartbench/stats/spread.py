"""How much one start varies, and how much a P50 can resolve: calibrate's noise figures (runs
as independent, rule `runs`: calibration alternates short blocks of its two sets so a burst
lands in both)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gostartbench.stats.intervals import DEFAULT_BOOTSTRAP, ci95
from gostartbench.stats.resample import median_interval, rng


def _log_iqr(logs: np.ndarray) -> np.ndarray:
    """Interquartile range of log wall times, along the last axis (one row per resample)."""
    q1, q3 = np.quantile(logs, [0.25, 0.75], axis=-1)
    return np.asarray(q3 - q1)


def spread(walls: Sequence[float] | np.ndarray) -> float:
    """The robust sd of the log wall times (interquartile range / 1.349, the sd a normal
    distribution with that IQR has), as a fraction. Unlike cv it is not moved by a few very
    slow runs."""
    return float(_log_iqr(np.log(np.asarray(walls, dtype=float))) / 1.349)


def spread_ratio(a: Sequence[float] | np.ndarray, b_: Sequence[float] | np.ndarray,
                 b: int = DEFAULT_BOOTSTRAP, seed: int = 0) -> tuple[float, float, float]:
    """spread(a) / spread(b) with a percentile-bootstrap ci95 that resamples each set of runs
    on its own (it assumes independent runs: a burst inside one set widens that set's spread,
    which is why callers take the two in alternating blocks)."""
    x, y = np.log(np.asarray(a, dtype=float)), np.log(np.asarray(b_, dtype=float))
    gen = rng(seed)
    reps = (_log_iqr(x[gen.integers(0, len(x), (b, len(x)))])
            / np.maximum(_log_iqr(y[gen.integers(0, len(y), (b, len(y)))]), 1e-12))
    lo, hi = ci95(reps)
    return spread(a) / max(spread(b_), 1e-12), lo, hi


def noise(walls_ns: Sequence[int], b: int = DEFAULT_BOOTSTRAP, seed: int = 0
          ) -> dict[str, float]:
    """Noise of one program's runs: cv, the P50's ci95 half-width, the smallest resolvable
    change."""
    x = np.asarray(walls_ns, dtype=float) / 1e6
    iv = median_interval(x, b, rng(seed))
    half = (iv.high - iv.low) / 2
    p50 = iv.estimate
    return {"n": len(x), "p50_ms": p50, "cv": float(np.std(x, ddof=1) / np.mean(x)),
            "p50_ci95_halfwidth_ms": half, "p50_ci95_halfwidth_rel": half / p50,
            # Two independent P50s differ resolvably when apart by more than ~√2 × 1.96σ̂:
            "min_resolvable_rel": float(np.sqrt(2) * half / p50)}
