"""The significance rule, in one place (summary, effects, compare, calibrate's A/A check).

A change is significant when all of these hold: its ratio's ci95 excludes 1; the change is at
least `min_effect` (the run's `measure.min_effect`, 1% by default) — this instrument does not
call smaller differences; and, where a test was run, its Holm-adjusted p-value is below ALPHA.
"""

from __future__ import annotations

from typing import Any, TypeVar

import numpy as np

ALPHA = 0.05
DEFAULT_MIN_EFFECT = 0.01

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
