"""Words and rows of the report's "Order effects" section (carryover.csv formatted)."""

from __future__ import annotations

import math
from collections.abc import Callable

import pandas as pd

from gostartbench.analysis import Analysis
from gostartbench.analysis.carryover import ALL_CELLS, MIN_SIDE, largest

CARRYOVER_HEAD = ["cell", "starts after itself", "after another", "P50 after itself, ms",
                  "after another, ms", "after itself / after another [ci95]"]
CARRYOVER_TEXT = (
    "What a start leaves behind for the next one on this host: each cell's timed starts split by "
    "the start just before them — the same cell, or another. The rounds are serially balanced "
    "(each cell follows each cell, itself included, equally often, and every cell runs in "
    "every round), so this effect falls on every cell alike and cancels in every ratio; it is "
    f"shown so that it can be seen. Fewer than {MIN_SIDE} starts on a side: no interval.")


def ratio_text(r: float, lo: float, hi: float) -> str:
    """A ratio as a signed percentage with its ci95 ('' when unknown)."""
    if not math.isfinite(r):
        return ""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return f"{r - 1:+.1%} (no interval)"
    return f"{r - 1:+.1%} [{lo - 1:+.1%}, {hi - 1:+.1%}]"


def carryover_rows(a: Analysis) -> list[list[str]]:
    """One row a cell (the pooled row last)."""
    t = a.carryover
    if t.empty:
        return []
    labels = {}
    if len(a.summary):
        labels = dict(zip(a.summary["cell"], a.summary["label"], strict=False))
    rows = []
    for r in t.to_dict("records"):
        name = "all cells (geometric mean)" if r["cell"] == ALL_CELLS else \
            str(labels.get(r["cell"], r["cell"]))
        p_self, p_other = r["p50_after_self_ms"], r["p50_after_other_ms"]
        rows.append([name, f"{int(r['n_after_self'])} ({r['share_after_self']:.0%})",
                     str(int(r["n_after_other"])),
                     f"{p_self:.3f}" if pd.notna(p_self) else "",
                     f"{p_other:.3f}" if pd.notna(p_other) else "",
                     ratio_text(float(r["ratio"]), float(r["ci95_low"]),
                                float(r["ci95_high"])) or str(r["why"])])
    return rows


def carryover_line(a: Analysis, threshold: float | None = None,
                   label: Callable[[str], str] | None = None) -> tuple[str, bool]:
    """One sentence on the largest resolved order effect ('' when none is resolved), and
    whether it is large beside a rule's threshold (half of it or more; the sentence then says
    so); `label`: a cell's name for the reader (default: the summary's label)."""
    big = largest(a.carryover)
    if big is None:
        return "", False
    name = str(big["cell"])
    if label is not None:
        name = label(name)
    elif len(a.summary):
        name = str(dict(zip(a.summary["cell"], a.summary["label"], strict=False)).get(name, name))
    eff = float(big["ratio"]) - 1
    text = (f"Order effect on this host: a start of {name} right after itself is "
            f"{abs(eff):.1%} {'faster' if eff < 0 else 'slower'} than after another program "
            f"({ratio_text(float(big['ratio']), float(big['ci95_low']), float(big['ci95_high']))}"
            f"; it followed itself in {float(big['share_after_self']):.0%} of its starts).")
    large = threshold is not None and abs(eff) >= abs(threshold) / 2
    if large:
        text += (f" That is large beside the rule's {abs(threshold or 0):.0%}: the rounds are "
                 "serially balanced and both sides ran in every round, so it cancels in "
                 "head/base; a design that gave one side more runs would have moved that side "
                 "by up to this much.")
    return text, large
