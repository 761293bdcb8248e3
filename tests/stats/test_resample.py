"""The bootstrap of runs as independent, Holm, and calibrate's noise figures."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gostartbench.stats.intervals import RULE_RUNS
from gostartbench.stats.resample import bootstrap_medians, paired_delta_interval, rng
from gostartbench.stats.significance import holm
from gostartbench.stats.spread import noise, spread, spread_ratio


def test_holm_known_values() -> None:
    assert list(holm([0.01, 0.04, 0.03])) == pytest.approx([0.03, 0.06, 0.06])
    out = holm([0.5, math.nan, 0.001])
    assert out[2] == pytest.approx(0.002) and math.isnan(out[1]) and out[0] == pytest.approx(0.5)



def test_paired_delta_and_noise() -> None:
    base = np.full(100, 2_000_000) + np.arange(100) * 1000
    d = paired_delta_interval((base + 500_000) / 1e6, base / 1e6, 2000, rng())
    assert d.estimate == pytest.approx(0.5) and d.rule == RULE_RUNS and d.low <= 0.5 <= d.high
    n = noise(list(base))
    assert n["n"] == 100 and n["cv"] > 0 and n["p50_ci95_halfwidth_ms"] > 0



def test_exact_bootstrap_of_the_median_matches_resampling() -> None:
    rng = np.random.default_rng(5)
    x = rng.lognormal(0.5, 0.2, 1001)  # odd n: the median is one order statistic
    exact = bootstrap_medians(x, 20000, np.random.default_rng(1))
    idx = np.random.default_rng(2).integers(0, len(x), size=(4000, len(x)))
    resampled = np.median(x[idx], axis=1)
    for q in (2.5, 50, 97.5):
        a, b = np.percentile(exact, q), np.percentile(resampled, q)
        assert abs(a - b) <= 0.25 * (np.percentile(resampled, 97.5) - np.percentile(
            resampled, 2.5)), (q, a, b)
    assert set(np.unique(exact)) <= set(x)  # replicates are order statistics of the sample



def test_spread_is_the_robust_sd_of_log_times_and_its_ratio_has_an_interval() -> None:
    rng = np.random.default_rng(3)
    a = np.exp(rng.normal(0.0, 0.10, 4000))
    b = np.exp(rng.normal(0.0, 0.20, 4000))
    assert spread(a) == pytest.approx(0.10, rel=0.06)
    assert spread(b) == pytest.approx(0.20, rel=0.06)
    # a few very slow runs move cv, not the spread
    slow = np.concatenate([a, np.full(40, 50.0)])
    assert spread(slow) == pytest.approx(spread(a), rel=0.05)
    assert np.std(slow) / np.mean(slow) > 3 * np.std(a) / np.mean(a)
    ratio, lo, hi = spread_ratio(b, a, b=500)
    assert lo < ratio < hi and lo > 1.5 and hi < 2.5
