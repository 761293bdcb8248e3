"""Intervals that hold on a bursty machine: the bootstrap by blocks of time, in one place.

The run's stopping rule (`measure.precision`) and the report's summary both call this module, so
a cell stops on the same interval the report then prints.

Why blocks: noise on a shared machine comes in bursts (another tenant, a timer, a
migration) that last from milliseconds to seconds, so runs taken close together are not
independent. Resampling single runs as if they were treats one burst as many independent slow
runs and gives intervals that are too narrow. Here the run's timeline is cut into blocks of
`block_s` seconds and whole blocks are resampled (a moving-block bootstrap with fixed blocks):
what happened together stays together. A cell and its baseline are resampled by the *same*
blocks (jointly), so a burst that slowed both cancels in their ratio, as pairing by round did.

The blocks are chosen by measurement (benchmarks/placement.py, coverage_real.py and
coverage_sim.py; docs/validation.md "Coverage"): on a VM, where a binary's pages land in the page
cache moves its start time by a few percent for as long as they stay there, so the run reads
warm binaries in afresh every few rounds and each sample records its placement *epoch*; and
the machine's bursts last seconds. A block is therefore a stretch of whole epochs lasting at
least BLOCK_S (shortened so that a run has MIN_BLOCKS blocks): resampled whole, a block carries
its placement and its bursts with it. BLOCK_S is a few times a burst's length because a burst
cut by a block's edge makes neighbouring blocks alike, and the bootstrap, which draws blocks as
if independent, then reads too narrow an interval: with bursts of ~1 s (coverage_sim.py, the
stopping rule at ±2%) 1-s blocks covered the truth in 0.87 of the intervals (300 simulated
runs), 3-s blocks in 0.94 (1000 runs). Samples without a time (runs written before
schema 1.2) use their round, which is the earlier paired-by-round bootstrap.

Estimator: the P50 (np.median); replicates are weighted medians (a block drawn k times counts
k times), computed for all replicates at once from one sort. With K blocks the bootstrap's
spread is too small by about √((K−1)/K), and its width is itself estimated from K blocks, so the
percentile interval is widened about the estimate by √(K/(K−1)) × t(0.975, K−1) / z(0.975):
+10% at K = 20, +0.6% at K = 300 (measured need: docs/validation.md "Coverage").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

BLOCK_S = 3.0  # the shortest block, seconds (chosen by measurement, see the module's doc)
MIN_BLOCKS = 8  # a shorter run gets shorter blocks, at least this many (then widened)
# A run shorter than this has blocks shorter than BLOCK_S: a burst or a drift of the machine
# longer than its blocks is not in its intervals. The stopping rule never stops a cell on
# precision before the run's timing has lasted this long, and the summary flags a run that
# did not (its changes are then not called significant on the interval alone).
FULL_SPAN_S = MIN_BLOCKS * BLOCK_S
Z95 = 1.959964
_CHUNK_ELEMS = 4_000_000  # bound on replicate × sample elements held at once


@dataclass(frozen=True)
class Interval:
    """A point estimate with its percentile-bootstrap ci95."""

    estimate: float
    low: float
    high: float

    @property
    def half_width(self) -> float:
        """Half the interval's width relative to the estimate (0.01: ±1%); NaN when unknown."""
        if not np.isfinite(self.low) or not np.isfinite(self.high) or self.estimate == 0:
            return float("nan")
        return float((self.high - self.low) / 2 / abs(self.estimate))


NAN_INTERVAL = Interval(float("nan"), float("nan"), float("nan"))


def block_length_s(span_s: float) -> float:
    """The block length for a run whose timed samples span `span_s` seconds."""
    if not span_s > 0:
        return BLOCK_S
    return min(BLOCK_S, span_s / MIN_BLOCKS)


def block_ids(done_ns: np.ndarray, t0_ns: float, block_s: float) -> np.ndarray:
    """Each sample's block of time: whole `block_s` steps since t0 (one grid per run, so the
    same block means the same moment for every cell)."""
    return np.floor((np.asarray(done_ns, dtype=float) - t0_ns) / (block_s * 1e9)).astype(np.int64)


def _weighted_medians(x: np.ndarray, blk: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Median of x in each replicate, where sample i counts counts[r, blk[i]] times (NaN when
    a replicate drew none of x's blocks)."""
    order = np.argsort(x, kind="stable")
    xs, bs = x[order], blk[order]
    out = np.empty(counts.shape[0])
    step = max(1, _CHUNK_ELEMS // max(len(xs), 1))
    for i in range(0, counts.shape[0], step):
        w = counts[i:i + step][:, bs]
        cw = np.cumsum(w, axis=1)
        total = cw[:, -1]
        half = total / 2
        lo = (cw >= half[:, None]).argmax(axis=1)
        hi = (cw > half[:, None]).argmax(axis=1)
        med = (xs[lo] + xs[hi]) / 2  # both middles for an even count, as np.median
        med[total == 0] = np.nan
        out[i:i + step] = med
    return out


def _draws(nblocks: int, b: int, rng: np.random.Generator) -> np.ndarray:
    """B replicates of how often each block is drawn (nblocks draws with replacement)."""
    return rng.multinomial(nblocks, np.full(nblocks, 1.0 / nblocks), size=b)


def _dense(*blocks: np.ndarray) -> tuple[list[np.ndarray], int]:
    """Block ids renumbered 0..k-1 over their union (jointly for several samples)."""
    allb = np.concatenate(blocks)
    uniq, inv = np.unique(allb, return_inverse=True)
    out, at = [], 0
    for bl in blocks:
        out.append(inv[at:at + len(bl)])
        at += len(bl)
    return out, len(uniq)


def median_replicates(x: np.ndarray, blocks: np.ndarray, b: int, rng: np.random.Generator
                      ) -> np.ndarray:
    """B block-bootstrap replicates of the P50 of x (blocks: each sample's block id)."""
    x = np.asarray(x, dtype=float)
    (bl,), k = _dense(np.asarray(blocks))
    return _weighted_medians(x, bl, _draws(k, b, rng))


def widen(estimate: float, lo: float, hi: float, k: int) -> Interval:
    """A percentile interval from K blocks, widened about the estimate for so few blocks
    (see the module's doc); on the log scale, since ratios and times are positive."""
    if k < 2 or not (np.isfinite(lo) and np.isfinite(hi)) or min(estimate, lo, hi) <= 0:
        return Interval(estimate, lo, hi)
    f = math.sqrt(k / (k - 1)) * float(sps.t.ppf(0.975, k - 1)) / Z95
    le = math.log(estimate)
    return Interval(estimate, math.exp(le - f * (le - math.log(lo))),
                    math.exp(le + f * (math.log(hi) - le)))


def median_interval(x: np.ndarray, blocks: np.ndarray, b: int, rng: np.random.Generator
                    ) -> Interval:
    """The P50 of x with a block-bootstrap ci95."""
    x = np.asarray(x, dtype=float)
    if len(x) < 2 or len(np.unique(blocks)) < 2:  # one block: nothing to resample
        return Interval(float(np.median(x)) if len(x) else float("nan"), float("nan"),
                        float("nan"))
    lo, hi = np.nanpercentile(median_replicates(x, blocks, b, rng), [2.5, 97.5])
    return widen(float(np.median(x)), float(lo), float(hi), len(np.unique(blocks)))


def run_blocks(epoch: np.ndarray, done_ns: np.ndarray, rounds: np.ndarray) -> np.ndarray:
    """Every timed sample's block, on one grid for a run's samples of one timer.

    A block is a stretch of whole placement epochs lasting at least block_length_s(span)
    (BLOCK_S, shorter for short runs so that there are MIN_BLOCKS): an epoch's placement stays
    in one block, and so does a burst of the machine shorter than a block. Samples with a time
    but no epoch get blocks of time alone; samples with neither (runs before schema 1.2) their
    round, which is the earlier paired-by-round bootstrap."""
    ep = np.asarray(epoch, dtype=float)
    t = np.asarray(done_ns, dtype=float)
    out = -1 - np.asarray(rounds, dtype=np.int64)  # nothing known: one block per round
    have = np.isfinite(t)
    if not have.any():
        return out
    out = out.copy()
    t0 = float(t[have].min())
    length_ns = block_length_s((float(t[have].max()) - t0) / 1e9) * 1e9
    with_ep = have & np.isfinite(ep)
    if with_ep.any():
        # each epoch's start; a new block begins at the first epoch starting `length` after
        # the current block's start
        eps, inv = np.unique(ep[with_ep], return_inverse=True)
        starts = np.full(len(eps), np.inf)
        np.minimum.at(starts, inv, t[with_ep])
        block_of = np.zeros(len(eps), dtype=np.int64)
        block, block_start = 0, float(starts.min())
        for i in np.argsort(starts):
            if starts[i] - block_start >= length_ns:
                block, block_start = block + 1, float(starts[i])
            block_of[i] = block
        out[with_ep] = block_of[inv]
    rest = have & ~np.isfinite(ep)
    out[rest] = 1_000_000 + block_ids(t[rest], t0, length_ns / 1e9)
    return out


def ratio_replicates(a: np.ndarray, a_blocks: np.ndarray, b_: np.ndarray,
                     b_blocks: np.ndarray, b: int, rng: np.random.Generator) -> np.ndarray:
    """B replicates of P50(a) / P50(b_), both resampled by the same blocks of time."""
    (ba, bb), k = _dense(np.asarray(a_blocks), np.asarray(b_blocks))
    draws = _draws(k, b, rng)
    return np.asarray(_weighted_medians(np.asarray(a, dtype=float), ba, draws)
                      / _weighted_medians(np.asarray(b_, dtype=float), bb, draws))


def ratio_interval(a: np.ndarray, a_blocks: np.ndarray, b_: np.ndarray, b_blocks: np.ndarray,
                   b: int, rng: np.random.Generator) -> Interval:
    """P50(a) / P50(b_) with a ci95 from resampling both by the same blocks of time."""
    a = np.asarray(a, dtype=float)
    b_ = np.asarray(b_, dtype=float)
    if len(a) < 2 or len(b_) < 2 or len(np.unique(a_blocks)) < 2 or \
            len(np.unique(b_blocks)) < 2:  # all in one block: nothing to resample
        return NAN_INTERVAL
    reps = ratio_replicates(a, a_blocks, b_, b_blocks, b, rng)
    lo, hi = np.nanpercentile(reps, [2.5, 97.5])
    k = len(np.unique(np.concatenate([np.asarray(a_blocks), np.asarray(b_blocks)])))
    return widen(float(np.median(a) / np.median(b_)), float(lo), float(hi), k)
