"""Budgets: absolute --fail-on rules judged on one run's cells alone (`startup>20ms`,
`init>5ms`, `init[MODULE]>1ms`, `size>30MB`, `rss>64MB`), for `gate` (the head's cells),
`compare --fail-on` (NEW's) and `run --fail-on` (every cell).

Like CockroachDB's check that sums GODEBUG=inittrace=1 against a limit, but with the noise
taken into account: a budget fails only when the whole ci95 of the value is past it, passes
when the whole interval is within it, and is inconclusive (never a pass) when the interval
holds the budget. Intervals: the P50's block-bootstrap ci95 (startup, summary.csv); the median
peak RSS's, by the same blocks of time; package init: the median over the untimed inittrace
runs, each run its own block (so with 5 runs the interval is wide, and says so). Sizes are
exact.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from gostartbench.analysis import Analysis
from gostartbench.analysis.deps import attributed
from gostartbench.analysis.summary import timed_by_cell
from gostartbench.report.rules import Finding, Rule, budget_why
from gostartbench.results import main_timer
from gostartbench.stats import intervals

NO_INITTRACE = "no package-init runs in this run (measure.inittrace is off, or none succeeded)"


def _init_runs(a: Analysis, module: str | None) -> dict[str, np.ndarray]:
    """cell → package init per inittrace run (ms, the sum of its packages' clock; one module's
    packages with `module`)."""
    init = a.data.inittrace
    if init.empty:
        return {}
    df = attributed(init, a.cells, a.data.deps) if module else init
    if module:
        df = df[df["module"].astype(str) == module]
    sums = df.groupby(["cell", "run"])["clock_ms"].sum()
    out: dict[str, np.ndarray] = {}
    for cell in init["cell"].unique():
        runs = init[init["cell"] == cell]["run"].unique()
        got = sums[cell] if cell in sums.index.get_level_values(0) else pd.Series(dtype=float)
        out[str(cell)] = np.array([float(got.get(r, 0.0)) for r in sorted(runs)])
    return out


def budget_findings(a: Analysis, rules: Sequence[Rule], cells: Sequence[str],
                    label: Callable[[str], str], short: str = "", *, b: int,
                    seed: int = 0) -> list[Finding]:
    """Every budget rule on every cell named (ok cells of the run's main timer)."""
    budgets = [r for r in rules if r.budget is not None]
    if not budgets or a.summary.empty:
        return []
    rng = np.random.default_rng(seed)
    timer = main_timer(a.summary["timer"].unique())
    s = a.summary[a.summary["timer"] == timer].set_index("cell")
    rss = timed_by_cell(a.samples, rss=True) if any(r.metric == "rss" for r in budgets) else {}
    out: list[Finding] = []
    for rule in budgets:
        assert rule.budget is not None
        init = _init_runs(a, rule.module) if rule.metric == "init" else {}
        for c in cells:
            if c not in s.index:
                continue
            why = ""
            unit = "ms" if rule.metric in ("startup", "init") else "bytes"
            if rule.metric == "startup":
                v, lo, hi = (float(s.loc[c, k]) for k in ("p50_ms", "ci95_low_ms",
                                                          "ci95_high_ms"))
            elif rule.metric == "size":
                v = lo = hi = float(s.loc[c].get("size_bytes", np.nan))
            elif rule.metric == "rss":
                x = rss.get((c, "spawn"))
                if x is None or len(x[2]) < 2:
                    v = lo = hi = float("nan")
                else:
                    iv = intervals.median_interval(x[2], x[0], b, rng)
                    v, lo, hi = iv.estimate, iv.low, iv.high
            else:
                runs = init.get(c)
                if runs is None or not len(runs):
                    v = lo = hi = float("nan")
                    why = NO_INITTRACE
                else:
                    iv = intervals.median_interval(runs, np.arange(len(runs)), b, rng)
                    v, lo, hi = iv.estimate, iv.low, iv.high
            q, ql, qh = v / rule.budget, lo / rule.budget, hi / rule.budget
            exact = rule.metric == "size"
            failed = rule.beyond(q) if exact else (rule.beyond(ql) if rule.op == ">"
                                                   else rule.beyond(qh))
            if not exact and not failed and not why:
                why = budget_why(rule, ql, qh, short)
            elif exact and not np.isfinite(q):
                why = "no size known"
            out.append(Finding(rule.text, "budget", label(c), rule.budget, v, unit, q, ql, qh,
                               failed, failed, "" if failed else why))
    return out
