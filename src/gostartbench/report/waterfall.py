"""The waterfall: where each cell's start goes, one stacked bar of phases per cell (medians of
the traced runs), one panel per app, cells in the order of the P50 chart."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.patches import Rectangle

from gostartbench.analysis.phases import missing_phases
from gostartbench.report.plots import OKABE_ITO, figure_timer, save_figure, styled
from gostartbench.results.schema import PHASE_ORDER

# One colour-blind-safe colour per phase, in order (Okabe–Ito, black last for teardown).
PHASE_COLORS = dict(zip(PHASE_ORDER, [OKABE_ITO[i] for i in (5, 1, 6, 2, 3, 0, 7)],
                        strict=True))


@styled
def waterfall(phases: pd.DataFrame, summary: pd.DataFrame, out: Path) -> list[Path] | None:
    """Stacked phase medians per cell beside its untraced P50 (a tick): where the time goes."""
    if phases.empty or summary.empty:
        return None
    s = figure_timer(summary)
    # a cell without all its phases is named in the report, never drawn as a partial start
    s = s[s["cell"].isin(set(phases["cell"]) - set(missing_phases(phases)))]
    if s.empty:
        return None
    med = phases.pivot_table(index="cell", columns="phase", values="p50_ms", aggfunc="first")
    apps = sorted(s["app"].unique())
    heights = [max(1.2, 0.24 * len(s[s["app"] == a]) + 0.9) for a in apps]
    fig, axs = plt.subplots(len(apps), 1, figsize=(9, sum(heights) + 0.7),
                            gridspec_kw={"height_ratios": heights}, squeeze=False)
    for ax, app in zip(axs[:, 0], apps, strict=True):
        d = s[s["app"] == app].sort_values("p50_ms")
        y = np.arange(len(d))
        left = np.zeros(len(d))
        for ph in PHASE_ORDER:
            w = np.array([float(med.loc[c, ph]) if ph in med and c in med.index
                          and med.loc[c, ph] == med.loc[c, ph] else 0.0 for c in d["cell"]])
            ax.barh(y, w, left=left, color=PHASE_COLORS[ph], height=0.7, edgecolor="white",
                    linewidth=0.3)
            left += w
        ax.scatter(d["p50_ms"], y, marker="|", s=180, color="black", zorder=3,
                   label="untraced P50")
        labels = [str(r["label"]).split(" · ", 1)[-1] if isinstance(r.get("label"), str)
                  else str(r["cell"]) for _, r in d.iterrows()]
        ax.set_yticks(y, labels, fontsize=7 if len(d) > 24 else 8)
        ax.set_title(f"{app}: where the start goes (median of traced runs; |: untraced P50)",
                     loc="left")
        ax.set_xlabel("time since fork (ms)")
        ax.set_xlim(0, max(float(left.max()), float(d["p50_ms"].max())) * 1.08)
    handles = [Rectangle((0, 0), 1, 1, color=PHASE_COLORS[p]) for p in PHASE_ORDER]
    fig.legend(handles, [p.replace("_", " ") for p in PHASE_ORDER], loc="lower center",
               ncols=7, bbox_to_anchor=(0.5, 0.0), fontsize=7)
    fig.tight_layout(rect=(0, 0.05 * 6 / max(6, sum(heights) + 0.7), 1, 1))
    return save_figure(fig, out, "waterfall")
