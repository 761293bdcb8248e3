"""Intervals that hold on a bursty machine: the bootstrap by blocks of time, in one place;
the rules every interval is named by (RULES); the percentile taken from replicates (ci95).

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
from typing import Any

import numpy as np
from scipy import stats as sps

# Bootstrap replicates per interval when a run names none (measure.bootstrap): every interval
# of a report, the gate and compare takes the run's own count (fewer for very many samples:
# analysis.summary.choose_b), never a literal of its own.
DEFAULT_BOOTSTRAP = 2000
BLOCK_S = 3.0  # the shortest block, seconds (chosen by measurement, see the module's doc)
MIN_BLOCKS = 8  # a shorter run gets shorter blocks, at least this many (then widened)
# A run shorter than this has blocks shorter than BLOCK_S: a burst or a drift of the machine
# longer than its blocks is not in its intervals. The stopping rule never stops a cell on
# precision before the run's timing has lasted this long, and the summary flags a run that
# did not (its changes are then not called significant on the interval alone).
FULL_SPAN_S = MIN_BLOCKS * BLOCK_S
Z95 = 1.959964
_CHUNK_ELEMS = 4_000_000  # bound on replicate × sample elements held at once


# The rule an interval was made by, named wherever it is shown (summary.csv `ci_rule`, the
# report's tables): widths made by different rules are never read side by side unmarked.
RULE_BLOCKS = "blocks"  # blocks of time over ≥ FULL_SPAN_S of timing: the full rule
RULE_SHORT = "short-run blocks"  # timing < FULL_SPAN_S: blocks < BLOCK_S, never calls a change
RULE_ROUNDS = "rounds"  # samples without times (before schema 1.2): resampled by round
RULE_RUNS = "runs"  # runs without times (traced, inittrace, calibration): resampled as iid
RULE_EXACT = "exact"  # a count with no noise (file sizes): no interval needed
RULES = {
    RULE_BLOCKS: "percentile bootstrap by blocks of time (placement epochs, ≥ 3 s), widened "
                 "for few blocks; assumes blocks independent",
    RULE_SHORT: "the same over a run shorter than 24 s of timing: its blocks are shorter than "
                "a burst can be, so a drift longer than a block is not in it — shown, never "
                "used to call a change",
    RULE_ROUNDS: "percentile bootstrap by round (samples without times, schema < 1.2)",
    RULE_RUNS: "percentile bootstrap of runs as independent (runs without times: traced "
               "and inittrace runs, calibration's paired rounds); assumes no drift within "
               "the batch",
    RULE_EXACT: "exact: no noise in the figure",
}


@dataclass(frozen=True)
class Interval:
    """A point estimate with its ci95 and the rule that made it (RULES)."""

    estimate: float
    low: float
    high: float
    rule: str = RULE_BLOCKS

    @property
    def half_width(self) -> float:
        """Half the interval's width relative to the estimate (0.01: ±1%); NaN when unknown."""
        if not np.isfinite(self.low) or not np.isfinite(self.high) or self.estimate == 0:
            return float("nan")
        return float((self.high - self.low) / 2 / abs(self.estimate))


NAN_INTERVAL = Interval(float("nan"), float("nan"), float("nan"))


def ci95(replicates: np.ndarray) -> tuple[float, float]:
    """The percentile interval of bootstrap replicates (NaN replicates ignored): the one place
    the 2.5th and 97.5th percentiles are taken."""
    r = np.asarray(replicates, dtype=float)
    if not np.isfinite(r).any():
        return float("nan"), float("nan")
    lo, hi = np.nanpercentile(r, [2.5, 97.5])
    return float(lo), float(hi)


def span_rule(span_s: float) -> str:
    """The rule of a run's block intervals, from how long its timing lasted (inf or NaN: its
    samples carry no times)."""
    if not np.isfinite(span_s):
        return RULE_ROUNDS
    return RULE_BLOCKS if span_s >= FULL_SPAN_S else RULE_SHORT


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


def joint_median_replicates(samples: dict[Any, tuple[np.ndarray, ...]], b: int,
                            rng: np.random.Generator) -> dict[Any, np.ndarray]:
    """B replicates of each key's P50, every key resampled by the *same* draws of blocks
    (samples: key → (blocks, values) on one grid of time): any ratio or geometric mean of
    these replicates is a joint-block interval, as ratio_replicates for two."""
    keys = list(samples)
    if not keys:
        return {}
    dense, k = _dense(*(np.asarray(samples[key][0]) for key in keys))
    draws = _draws(k, b, rng)
    return {key: _weighted_medians(np.asarray(samples[key][1], dtype=float), bl, draws)
            for key, bl in zip(keys, dense, strict=True)}


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
    lo, hi = ci95(median_replicates(x, blocks, b, rng))
    return widen(float(np.median(x)), lo, hi, len(np.unique(blocks)))


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
    lo, hi = ci95(ratio_replicates(a, a_blocks, b_, b_blocks, b, rng))
    k = len(np.unique(np.concatenate([np.asarray(a_blocks), np.asarray(b_blocks)])))
    return widen(float(np.median(a) / np.median(b_)), lo, hi, k)


Timed = tuple[np.ndarray, ...]  # (each sample's block, its value[, …]): the first two read


def _p50_or_ref_reps(x: Timed, ref: Timed | None, b: int, rng: np.random.Generator
                     ) -> np.ndarray:
    """Replicates of a P50, or of P50 / a reference's P50 resampled by the same blocks."""
    if ref is None:
        return median_replicates(x[1], x[0], b, rng)
    return ratio_replicates(x[1], x[0], ref[1], ref[0], b, rng)


def cross_run_ratio(new: Timed, base: Timed, seed: int, ref_new: Timed | None = None,
                    ref_base: Timed | None = None, *, b: int) -> Interval:
    """P50(new) / P50(base) for two runs (two stretches of time sharing no moment): each
    resampled by its own blocks, independently, and widened for the fewer blocks of the two.
    With references, each side is first its P50 over the reference cell's, within its run
    (same blocks): a uniform slowdown of the machine during one run cancels. `compare` and the
    gate both take their cross-run intervals from here, each pair from its own generator seeded
    by `seed`, so the two print the same interval for the same pair."""
    rng = np.random.default_rng(seed)
    xn, xb = np.asarray(new[1], dtype=float), np.asarray(base[1], dtype=float)
    kn, kb = len(np.unique(new[0])), len(np.unique(base[0]))
    vn = float(np.median(xn) / (np.median(ref_new[1]) if ref_new is not None else 1.0))
    vb = float(np.median(xb) / (np.median(ref_base[1]) if ref_base is not None else 1.0))
    if len(xn) < 2 or len(xb) < 2 or min(kn, kb) < 2:
        return Interval(vn / vb, float("nan"), float("nan"))
    reps = _p50_or_ref_reps(new, ref_new, b, rng) / _p50_or_ref_reps(base, ref_base, b, rng)
    lo, hi = ci95(reps)
    return widen(vn / vb, lo, hi, min(kn, kb))


def log_ratio_of(new: Interval, base: Interval) -> Interval:
    """new / base for two independent intervals of positive figures (an effect measured in two
    runs): normal on the log scale, each interval's half-width read as 1.96 standard errors."""
    vals = (new.estimate, new.low, new.high, base.estimate, base.low, base.high)
    if not all(np.isfinite(v) and v > 0 for v in vals):
        return Interval(new.estimate / base.estimate, float("nan"), float("nan"))
    se = math.hypot(*(math.log(iv.high / iv.low) / (2 * Z95) for iv in (new, base)))
    lr = math.log(new.estimate / base.estimate)
    return Interval(math.exp(lr), math.exp(lr - Z95 * se), math.exp(lr + Z95 * se))


def mean_difference(pairs: list[tuple[Interval, Interval]]) -> Interval:
    """The mean over pairs of new − base, for independent intervals of means (each pair's two
    cells measured in separate runs of their own): normal, each half-width read as 1.96
    standard errors, the pairs' errors added in quadrature. Rule `runs`, as its inputs'."""
    ok = [(n, b) for n, b in pairs if all(np.isfinite(v) for v in
                                          (n.estimate, n.low, n.high, b.estimate, b.low,
                                           b.high))]
    if not ok:
        return Interval(float("nan"), float("nan"), float("nan"), RULE_RUNS)
    k = len(ok)
    est = sum(n.estimate - b.estimate for n, b in ok) / k
    se = math.sqrt(sum(((n.high - n.low) / (2 * Z95)) ** 2 + ((b.high - b.low) / (2 * Z95)) ** 2
                       for n, b in ok)) / k
    return Interval(est, est - Z95 * se, est + Z95 * se, RULE_RUNS)


def widen_family(iv: Interval, k: int, alpha: float) -> Interval:
    """A ci95 widened (on the log scale, about its estimate) to a Bonferroni interval for k
    comparisons that must hold together with probability ≥ 1 − alpha (normal quantiles)."""
    if k < 1 or not all(np.isfinite(v) and v > 0 for v in (iv.estimate, iv.low, iv.high)):
        return iv
    scale = float(sps.norm.ppf(1 - alpha / (2 * k))) / Z95
    le = math.log(iv.estimate)
    return Interval(iv.estimate, math.exp(le - scale * (le - math.log(iv.low))),
                    math.exp(le + scale * (math.log(iv.high) - le)), iv.rule)
