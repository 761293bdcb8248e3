"""The block-bootstrap interval on simulated data with a known truth: it covers the truth about
as often as it says, where an interval that takes runs as independent does not (bursts), and
the rules an interval is named by."""

from __future__ import annotations

import numpy as np
import pytest

from gostartbench.stats import intervals
from gostartbench.stats.resample import median_interval as iid_median_interval

SPAN_S, N, BURST_S = 60.0, 900, 2.0


def _bursty(rng: np.random.Generator, truths: tuple[float, ...], burst_sd: float = 0.05,
            run_sd: float = 0.05) -> tuple[np.ndarray, list[np.ndarray]]:
    """One run of several cells interleaved over SPAN_S seconds: every BURST_S the machine is
    faster or slower by a shared factor (lognormal, burst_sd) on top of each run's own noise.
    Each cell's marginal median is its truth exactly (log-symmetric noise)."""
    t_ns = np.sort(rng.uniform(0, SPAN_S, N)) * 1e9
    burst = rng.normal(0, burst_sd, int(SPAN_S / BURST_S) + 1)[(t_ns / 1e9 / BURST_S).astype(int)]
    return t_ns, [truth * np.exp(burst + rng.normal(0, run_sd, N)) for truth in truths]


def _blocks(t_ns: np.ndarray) -> np.ndarray:
    nan = np.full(len(t_ns), np.nan)
    return intervals.run_blocks(nan, t_ns, np.arange(len(t_ns)))


def test_the_block_interval_covers_a_bursty_truth_and_the_iid_one_does_not() -> None:
    rng = np.random.default_rng(11)
    cover_block = cover_iid = 0
    repeats = 120
    for _ in range(repeats):
        t_ns, (x,) = _bursty(rng, (1.0,))
        blocks = _blocks(t_ns)
        iv = intervals.median_interval(x, blocks, 400, rng)
        iid = iid_median_interval(x, 400, rng)
        cover_block += iv.low <= 1.0 <= iv.high
        cover_iid += iid.low <= 1.0 <= iid.high
    # 95% intervals: the block one near it, the iid one far below (bursts are not
    # independent runs); 0.92 and 0.37 with this seed
    assert cover_block / repeats >= 0.85, cover_block
    assert cover_iid / repeats <= cover_block / repeats - 0.25, (cover_iid, cover_block)


def test_a_joint_ratio_cancels_the_bursts_both_cells_share() -> None:
    rng = np.random.default_rng(12)
    cover, widths = 0, []
    for _ in range(80):
        t_ns, (base, slow) = _bursty(rng, (1.0, 1.1))
        blocks = _blocks(t_ns)
        iv = intervals.ratio_interval(slow, blocks, base, blocks, 400, rng)
        cover += iv.low <= 1.1 <= iv.high
        widths.append(iv.half_width)
    assert cover / 80 >= 0.85, cover
    # the shared bursts cancel: the ratio is about as narrow as the runs' own noise allows,
    # narrower than either cell's own P50 interval (which carries the bursts)
    one = intervals.median_interval(slow, blocks, 400, rng).half_width
    assert np.median(widths) < one


def test_cross_run_ratio_is_wider_than_within_one_run() -> None:
    """Two runs share no moment: their ratio carries both runs' bursts."""
    rng = np.random.default_rng(13)
    t1, (a,) = _bursty(rng, (1.0,))
    t2, (b,) = _bursty(rng, (1.1,))
    iv = intervals.cross_run_ratio((_blocks(t2), b), (_blocks(t1), a), 13,
                                   b=intervals.DEFAULT_BOOTSTRAP)
    assert iv.low < 1.1 < iv.high and iv.rule == intervals.RULE_BLOCKS
    # a reference cell measured alongside in each run cancels a uniform slowdown of one run
    ref1, ref2 = a.copy(), b / 1.1 * 1.2  # run 2's machine 20% slower on everything
    iv_ref = intervals.cross_run_ratio((_blocks(t2), b * 1.2), (_blocks(t1), a), 13,
                                       ref_new=(_blocks(t2), ref2), ref_base=(_blocks(t1), ref1),
                                       b=intervals.DEFAULT_BOOTSTRAP)
    assert iv_ref.estimate == pytest.approx(1.1 * 1.0, rel=0.05)


def test_a_short_run_is_named_by_its_rule() -> None:
    assert intervals.span_rule(30.0) == intervals.RULE_BLOCKS
    assert intervals.span_rule(intervals.FULL_SPAN_S - 0.1) == intervals.RULE_SHORT
    assert intervals.span_rule(float("inf")) == intervals.RULE_ROUNDS
    assert set(intervals.RULES) >= {intervals.RULE_BLOCKS, intervals.RULE_SHORT,
                                    intervals.RULE_RUNS}
    assert intervals.ci95(np.array([np.nan, np.nan])) != intervals.ci95(np.arange(100.0))


def test_widen_family_and_log_ratio() -> None:
    iv = intervals.Interval(1.05, 1.02, 1.08)
    wide = intervals.widen_family(iv, 30, 0.01)
    assert wide.low < iv.low and wide.high > iv.high and wide.estimate == iv.estimate
    r = intervals.log_ratio_of(intervals.Interval(1.2, 1.1, 1.3), intervals.Interval(1.0, 0.95,
                                                                                     1.05))
    assert r.low < 1.2 < r.high and r.estimate == pytest.approx(1.2)
