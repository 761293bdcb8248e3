"""A flame graph of a start (an icicle: roots on top), from the profiled starts' samples: the
first level is the phase each sample is in (coloured as in the waterfall), below it the call
chain, root first; a box's width is its share of the start's CPU time, its text the function
with its time per start. Boxes narrower than MIN_SHARE of the width are left out (and
counted in the caption)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.patches import Rectangle

from gostartbench.analysis import Analysis
from gostartbench.analysis.profile import phase_of
from gostartbench.report.plots import save_figure, styled
from gostartbench.report.waterfall import PHASE_COLORS
from gostartbench.results.schema import PHASE_ORDER, frames_of

MIN_SHARE = 0.004
MAX_DEPTH = 28
OTHER_COLOR = "#bbbbbb"


def _tree(stacks: dict[int, list[tuple[str, str, int, str]]], weights: dict[int, float]
          ) -> dict[str, Any]:
    """Nested {name: [weight, children]} with the phase as the first level."""
    root: dict[str, Any] = {}
    for sid, w in weights.items():
        frames = stacks[sid]
        phase = phase_of([f[0] for f in frames], [f[3] for f in frames])
        path = [phase, *[f[0] for f in reversed(frames)]][:MAX_DEPTH]
        node = root
        for name in path:
            entry = node.setdefault(name, [0.0, {}])
            entry[0] += w
            node = entry[1]
    return root


@dataclass(frozen=True)
class _Scale:
    total: float  # the whole start's weight
    starts: int
    dropped: list[int]  # boxes too narrow to draw, counted


def _draw(ax: Any, node: dict[str, Any], sc: _Scale, x0: float, depth: int, color: str
          ) -> None:
    """A level of the icicle, children under their parent, the phases in their order."""
    order = sorted(node, key=lambda k: (PHASE_ORDER.index(k) if depth == 0 and k in
                                        PHASE_ORDER else 99, k))
    x = x0
    for name in order:
        w, kids = node[name]
        share = w / sc.total
        c = PHASE_COLORS.get(name, OTHER_COLOR) if depth == 0 else color
        if share < MIN_SHARE:
            sc.dropped[0] += 1
            x += share
            continue
        ax.add_patch(Rectangle((x, -depth - 1), share, 0.92, facecolor=c, edgecolor="white",
                               linewidth=0.4, alpha=1.0 if depth == 0 else 0.55))
        if share > 0.035:
            ms = w / sc.starts / 1e6
            text = name.replace("_", " ") if depth == 0 else name
            room = int(share * 150)
            ax.text(x + 0.003, -depth - 0.55, f"{text[:room]} {ms:.2f}ms"
                    if room > len(text) + 8 else text[:room], fontsize=6.5, va="center",
                    clip_on=True)
        _draw(ax, kids, sc, x, depth + 1, c)
        x += share


@styled
def flame_graphs(a: Analysis, out: Path) -> list[Path] | None:
    """One flame graph per app's baseline cell with a profile (PNG and SVG each): the PNGs,
    or None."""
    d = a.data
    if d.profile_samples.empty or d.profile_stacks.empty or a.summary.empty:
        return None
    s = a.summary
    base = set(s.loc[s["cell"] == s["baseline"], "cell"]) if "baseline" in s else set()
    cells = [c for c in sorted(d.profile_samples["cell"].unique()) if c in base]
    if not cells:
        return None
    stacks = {int(i): frames_of(str(t)) for i, t in
              zip(d.profile_stacks["stack_id"], d.profile_stacks["frames"].fillna(""),
                  strict=True)}
    paths: list[Path] = []
    labels = dict(zip(s["cell"], s["label"], strict=False))
    for cell in cells:
        g = d.profile_samples[d.profile_samples["cell"] == cell]
        starts = max(int(g["start"].nunique()), 1)
        weights: dict[int, float] = defaultdict(float)
        for sid, period in zip(g["stack_id"].astype(int), g["period_ns"].astype(float),
                               strict=True):
            weights[sid] += period
        tree = _tree(stacks, weights)
        total = sum(v[0] for v in tree.values())
        fig, ax = plt.subplots(figsize=(12, 7))
        dropped = [0]
        _draw(ax, tree, _Scale(total, starts, dropped), 0.0, 0, OTHER_COLOR)
        depth = min(MAX_DEPTH, max(len(f) for f in stacks.values()) + 1)
        ax.set_xlim(0, 1)
        ax.set_ylim(-min(depth, 24) - 1, 0)
        ax.set_yticks([])
        ax.set_xlabel(f"share of the start's CPU time ({total / starts / 1e6:.2f} ms per start, "
                      f"{starts} starts; {dropped[0]} boxes under {MIN_SHARE:.1%} not drawn)")
        ax.set_title(f"Where {labels.get(cell, cell)}'s start goes, by function (profiled "
                     "starts; first row: the phase)")
        paths += [p for p in save_figure(fig, out, f"flame_{cell}") if p.suffix == ".png"]
    return paths or None
