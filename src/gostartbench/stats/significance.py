"""Significance and agreement, in one place (summary, effects, compare, the gates, calibrate's
A/A check, the phases' two instruments).

A change is significant when all of these hold: its ratio's ci95 excludes 1; the change is at
least `min_effect` (the run's `measure.min_effect`, DEFAULT_MIN_EFFECT by default) — this
instrument does not call smaller differences; and, where a test was run, its Holm-adjusted
p-value is below ALPHA. The test is the two-sided Mann–Whitney U (no normality assumed; it
assumes independent runs, which bursts break — which is why the interval must agree too).

Two figures of one thing measured two ways *agree* when they differ by at most max(an absolute
floor, a share of the larger): `Tolerance` names each such rule once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from scipy import stats as sps

ALPHA = 0.05
DEFAULT_MIN_EFFECT = 0.01
# The one-run gate judges many comparisons at once: its intervals are widened so that all of
# a rule's comparisons hold together with probability ≥ 1 − FAMILY_ALPHA (Bonferroni).
FAMILY_ALPHA = 0.01

T = TypeVar("T", float, "np.ndarray[Any, Any]", Any)


def significant(ratio: T, ci_low: T, ci_high: T, min_effect: float,
                p_adj: T | None = None) -> Any:
    """The rule, elementwise for arrays or Series, plain for floats (NaN is never
    significant)."""
    excludes = (np.asarray(ci_low) > 1) | (np.asarray(ci_high) < 1)
    big = np.abs(np.asarray(ratio, dtype=float) - 1) >= min_effect
    out = excludes & big
    if p_adj is not None:
        out = out & (np.asarray(p_adj, dtype=float) < ALPHA)
    return bool(out) if np.ndim(out) == 0 else out


def rule_text(min_effect: float) -> str:
    """The rule in words, for reports and compare's markdown."""
    return (f"significant: Holm-adjusted Mann–Whitney U p < {ALPHA:g}, ci95 excludes 1, and "
            f"|change| ≥ {min_effect:.0%}")


def mann_whitney_p(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided Mann–Whitney U p-value of two sets of runs (NaN with fewer than 2 in one)."""
    if len(a) < 2 or len(b) < 2:
        return float("nan")
    return float(sps.mannwhitneyu(np.asarray(a, float), np.asarray(b, float),
                                  alternative="two-sided").pvalue)


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values (NaN stays NaN)."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full_like(p, np.nan)
    idx = np.where(~np.isnan(p))[0]
    if not len(idx):
        return out
    order = idx[np.argsort(p[idx])]
    m = len(order)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


@dataclass(frozen=True)
class Tolerance:
    """Two measurements of one figure agree when |a − b| ≤ max(abs_ms, rel × max(a, b))."""

    rel: float
    abs_ms: float

    def agrees(self, a_ms: float, b_ms: float) -> bool:
        return abs(a_ms - b_ms) <= max(self.abs_ms, self.rel * max(a_ms, b_ms))

    def text(self) -> str:
        return f"max({self.abs_ms * 1000:g} µs, {self.rel:.0%})"


# The two phase instruments (ptrace tracer, eBPF uprobes): the target for every phase.
INSTRUMENTS = Tolerance(rel=0.10, abs_ms=0.05)
# A traced start against the untraced P50, and inittrace's sum against the package-init phase:
# looser, because tracing perturbs caches beyond a stop's own cost (docs/methodology.md).
TRACED_VS_TIMED = Tolerance(rel=0.25, abs_ms=0.3)
