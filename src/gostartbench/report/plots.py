"""Charts (matplotlib, PNG + SVG), drawn from the run folder's tables only.

One style throughout: Okabe–Ito colour-blind-safe palette, titles that say what is shown,
units on every axis, small multiples per app where one panel would be crowded.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from gostartbench.analysis.effects import ALL_APPS, pareto_front, startup_rows
from gostartbench.results.schema import main_timer

OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442",
             "#000000"]
STYLE: dict[str, Any] = {
    "svg.hashsalt": "gostartbench",  # reproducible SVG ids
    "figure.dpi": 110, "savefig.dpi": 130, "font.size": 9, "axes.titlesize": 11,
    "axes.labelsize": 9, "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False,
    "axes.spines.right": False, "axes.prop_cycle": matplotlib.rcsetup.cycler(color=OKABE_ITO),
    "svg.fonttype": "none", "legend.fontsize": 8, "legend.frameon": False,
}
F = TypeVar("F", bound=Callable[..., Any])


def styled(fn: F) -> F:
    """Draw inside the house style, leaving the caller's matplotlib settings alone."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with matplotlib.rc_context(STYLE):  # type: ignore[arg-type]
            return fn(*args, **kwargs)

    return cast(F, wrapper)


def save_figure(fig: Figure, out: Path, name: str) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for ext in ("png", "svg"):
        p = out / f"{name}.{ext}"
        meta = {"Date": None} if ext == "svg" else {"Software": "gostartbench"}
        fig.savefig(p, bbox_inches="tight", metadata=meta)
        paths.append(p)
    plt.close(fig)
    return paths


def _label(row: pd.Series, axes: Sequence[str], app: bool = True) -> str:
    """A cell as a person reads it: the summary's `label` (what differs from the app's
    baseline, analysis/labels.py), with the toolchain where several were measured. On a joined
    warm/cold row, the warm one's label without its cache state."""
    text = ""
    for col, drop in (("label", ""), ("label_w", " · warm")):
        if col in row and isinstance(row[col], str) and row[col]:
            text = row[col].removesuffix(drop)
            break
    text = text or str(row.get("cell", row.get("cell_w", "")))
    if not app and " · " in text:
        text = text.split(" · ", 1)[1]
    if "toolchain" in row and row.get("_multi_tc"):
        text += f" · go{row['toolchain']}"
    return text


def figure_timer(summary: pd.DataFrame) -> pd.DataFrame:
    return summary[summary["timer"] == main_timer(summary["timer"].unique())].copy()


@styled
def p50_per_cell(summary: pd.DataFrame, axes: Sequence[str], out: Path) -> list[Path]:
    """P50 per cell with its ci95, sorted, baseline marked; one panel per app."""
    s = figure_timer(summary)
    s["_multi_tc"] = s["toolchain"].nunique() > 1
    apps = sorted(s["app"].unique())
    heights = [max(1.2, 0.22 * len(s[s["app"] == a]) + 0.8) for a in apps]
    fig, axs = plt.subplots(len(apps), 1, figsize=(9, sum(heights) + 0.6),
                            gridspec_kw={"height_ratios": heights}, squeeze=False)
    for ax, app in zip(axs[:, 0], apps, strict=True):
        d = s[s["app"] == app].sort_values("p50_ms")
        y = np.arange(len(d))
        labels = [_label(r, [a for a in axes if d[a].nunique() > 1]) for _, r in d.iterrows()]
        is_base = (d["cell"] == d["baseline"]).to_numpy()
        sig = d["significant"].fillna(False).to_numpy().astype(bool)
        colors = [OKABE_ITO[7] if b else (OKABE_ITO[3] if sg and r > 1 else
                                          OKABE_ITO[2] if sg else OKABE_ITO[0])
                  for b, sg, r in zip(is_base, sig, d["ratio"].fillna(1), strict=True)]
        err = np.vstack([(d["p50_ms"] - d["ci95_low_ms"]).clip(lower=0).fillna(0),
                         (d["ci95_high_ms"] - d["p50_ms"]).clip(lower=0).fillna(0)])
        ax.barh(y, d["p50_ms"], color=colors, height=0.7, alpha=0.9)
        ax.errorbar(d["p50_ms"], y, xerr=err, fmt="none", ecolor="#333333", capsize=2, lw=0.8)
        ax.set_yticks(y, labels, fontsize=7 if len(d) > 24 else 8)
        right = d["ci95_high_ms"].fillna(d["p50_ms"]).to_numpy()
        for yi, b, r in zip(y, is_base, d["ratio"], strict=True):
            txt = "baseline" if b else (f"×{r:.2f}" if r == r else "")
            if txt:
                ax.annotate(txt, (right[yi], yi), xytext=(4, 0),
                            textcoords="offset points", va="center", fontsize=7,
                            fontweight="bold" if b else "normal")
        ax.set_title(f"{app}: startup time P50 per cell (bars: ci95)", loc="left")
        ax.set_xlabel("startup time, P50 (ms)")
        ax.set_xlim(0, float((d["ci95_high_ms"].fillna(d["p50_ms"])).max()) * 1.18)
    handles = [Rectangle((0, 0), 1, 1, color=c) for c in
               (OKABE_ITO[7], OKABE_ITO[2], OKABE_ITO[3], OKABE_ITO[0])]
    fig.legend(handles, ["baseline", "significantly faster", "significantly slower",
                         "not significant"], loc="lower center", ncols=4,
               bbox_to_anchor=(0.5, 0.0))
    fig.tight_layout(rect=(0, 0.045 * 6 / max(6, sum(heights) + 0.6), 1, 1))
    return save_figure(fig, out, "p50_per_cell")


@styled
def size_vs_p50(summary: pd.DataFrame, axes: Sequence[str], out: Path,
                y: str = "size_bytes", name: str = "size_vs_p50") -> list[Path]:
    """Binary size (or RSS) against P50 per cell, the Pareto front marked, one panel per app."""
    s = figure_timer(summary).dropna(subset=[y, "p50_ms"])
    apps = sorted(s["app"].unique())
    ncol = min(2, len(apps))
    nrow = math.ceil(len(apps) / ncol)
    fig, axs = plt.subplots(nrow, ncol, figsize=(5.2 * ncol, 4.2 * nrow), squeeze=False)
    what = "binary size" if y == "size_bytes" else "peak RSS"
    for ax, app in zip(axs.flat, apps, strict=False):
        d = s[s["app"] == app]
        # The front is drawn over warm cells (cold ones are shown, as squares, for context:
        # mixing both conditions in one front would compare unlike runs).
        warm = d[d["cache"] == "warm"] if "cache" in d and (d["cache"] == "warm").any() else d
        front = pareto_front(warm["p50_ms"], warm[y])
        front_cells = set(warm["cell"][front])
        for _, r in d.iterrows():
            cold = "cache" in d and r.get("cache") == "cold"
            on = r["cell"] in front_cells
            ax.scatter(r["p50_ms"], r[y] / 1e6, marker="s" if cold else "o",
                       s=36 if on else 18, alpha=0.55 if cold else 0.95,
                       color=OKABE_ITO[3] if on else OKABE_ITO[0],
                       edgecolor="black" if r["cell"] == r["baseline"] else "none", zorder=3)
        fr = warm[front].sort_values("p50_ms")
        ax.step(fr["p50_ms"], fr[y] / 1e6, where="post", color=OKABE_ITO[3], lw=1, alpha=0.7,
                label="Pareto front (warm)")
        vary = [a for a in axes if a in d and d[a].nunique() > 1 and a not in ("app", "cache")]
        # one label per cluster of near-identical points
        placed: list[tuple[float, float]] = []
        for _, r in fr.iterrows():
            px, py = float(r["p50_ms"]), float(r[y]) / 1e6
            twins = fr[((fr["p50_ms"] / px - 1).abs() < 0.03)
                       & (((fr[y] / 1e6) / py - 1).abs() < 0.03)]
            if any(abs(px / qx - 1) < 0.03 and abs(py / qy - 1) < 0.03 for qx, qy in placed):
                continue
            placed.append((px, py))
            text = _label(r, vary, app=False)[:38]
            if len(twins) > 1:
                text += f" (+{len(twins) - 1} alike)"
            ax.annotate(text, (px, py), xytext=(4, 3), textcoords="offset points", fontsize=6.5)
        if d["p50_ms"].max() / max(d["p50_ms"].min(), 1e-9) > 6:
            ax.set_xscale("log")
            ax.xaxis.set_major_locator(matplotlib.ticker.FixedLocator(
                [0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]))
            ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_title(f"{app}: {what} vs startup", loc="left")
        ax.set_xlabel("startup time, P50 (ms)")
        ax.set_ylabel(f"{what} (MB)")
        ax.legend(loc="upper right")
    for ax in list(axs.flat)[len(apps):]:
        ax.set_visible(False)
    fig.suptitle(f"{what.capitalize()} against startup time (red: Pareto front; black edge: "
                 "baseline; squares: cold cache)", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, out, name)


@styled
def distribution(samples: pd.DataFrame, summary: pd.DataFrame, axes: Sequence[str], out: Path
                 ) -> list[Path]:
    """ECDF of every cell's runs, one panel per app and cache condition."""
    s = figure_timer(summary)
    timer = s["timer"].iloc[0]
    ok = samples[samples["ok"] & (samples["round"] >= 0) & (samples["timer"] == timer)]
    groups = sorted({(r["app"], r.get("cache", "")) for _, r in s.iterrows()})
    by_cell = {c: g.to_numpy() / 1e6 for c, g in ok.groupby("cell")["wall_ns"]}
    ncol = min(2, len(groups))
    nrow = math.ceil(len(groups) / ncol)
    fig, axs = plt.subplots(nrow, ncol, figsize=(5.5 * ncol, 3.8 * nrow), squeeze=False)
    for ax, (app, cache) in zip(axs.flat, groups, strict=False):
        d = s[(s["app"] == app) & ((s.get("cache", "") == cache) if "cache" in s else True)]
        d = d.sort_values("p50_ms")
        vary = [a for a in axes if a != "cache" and d[a].nunique() > 1]
        for i, (_, r) in enumerate(d.iterrows()):
            x = np.sort(by_cell.get(r["cell"], np.empty(0)))
            if not len(x):
                continue
            yv = np.arange(1, len(x) + 1) / len(x)
            if len(x) > 2000:  # drawn at 2000 quantiles: the same picture, a small file
                pick = np.linspace(0, len(x) - 1, 2000).astype(int)
                x, yv = x[pick], yv[pick]
            style = ["-", "--", ":", "-."][(i // len(OKABE_ITO)) % 4]
            ax.step(x, yv, where="post", lw=1, ls=style,
                    color=OKABE_ITO[i % len(OKABE_ITO)],
                    label=_label(r, vary, app=False) or "baseline")
        ax.set_title(f"{app}{' (' + cache + ' cache)' if cache else ''}: distribution of runs",
                     loc="left")
        ax.set_xlabel("startup time (ms)")
        ax.set_ylabel("fraction of runs ≤ x")
        if len(d) <= 16:
            ax.legend(fontsize=6, loc="lower right")
        xs = ok[ok["cell"].isin(d["cell"])]["wall_ns"] / 1e6
        if len(xs):
            lo_x, hi_x = float(xs.quantile(0.001)) * 0.95, float(xs.quantile(0.995)) * 1.05
            ax.set_xlim(lo_x, hi_x)
            if hi_x / max(lo_x, 1e-9) > 4:  # e.g. UPX'd cells beside plain ones: both readable
                ax.set_xscale("log")
                ax.xaxis.set_major_locator(matplotlib.ticker.FixedLocator(
                    [0.5, 1, 2, 3, 5, 10, 20, 30, 50, 100, 200, 500, 1000]))
                ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
                ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
                ax.set_xlabel("startup time (ms, log scale)")
    for ax in list(axs.flat)[len(groups):]:
        ax.set_visible(False)
    fig.tight_layout()
    return save_figure(fig, out, "distribution")


@styled
def main_effects(eff: pd.DataFrame, out: Path) -> list[Path]:
    """Effect of each axis value on P50 against its baseline value (geometric mean over pairs,
    ci95), with its effect on size."""
    eff = startup_rows(eff)
    e = eff[eff["timer"] == main_timer(eff["timer"].unique())]
    per_app = e[e["app"] != ALL_APPS] if "app" in e else e.iloc[0:0]
    e = e[e["app"] == ALL_APPS] if "app" in e else e
    e = e.sort_values(["axis", "value", "cache"]).reset_index(drop=True)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, max(2.2, 0.42 * len(e) + 1.2)),
                                 sharey=True, gridspec_kw={"width_ratios": [3, 2]})
    y = np.arange(len(e))
    labels = [f"{r.axis.replace('runenv.', 'run env ')}: {r.baseline_value or '∅'} → "
              f"{r.value or '∅'}" + ("" if r.cache == "all" else f", {r.cache}")
              + f"  (n={r.pairs})" for r in e.itertuples()]
    # A log ratio axis: +960% (UPX) and −20% (strip, cold) are both readable on one chart.
    ratio = e["ratio"].to_numpy()
    lo = (e["ratio"] - e["ci95_low"]).clip(lower=0).to_numpy()
    hi = (e["ci95_high"] - e["ratio"]).clip(lower=0).to_numpy()
    colors = [OKABE_ITO[3] if (s and r > 1) else OKABE_ITO[2] if s else "#999999"
              for s, r in zip(e["significant"], ratio, strict=True)]
    a1.barh(y, ratio - 1, left=1, color=colors, height=0.6)
    a1.errorbar(ratio, y, xerr=np.vstack([lo, hi]), fmt="none", ecolor="#333333", capsize=2,
                lw=0.8)
    a1.axvline(1, color="black", lw=0.8)
    a1.set_xscale("log")
    span = max(float(np.max(e["ci95_high"])), 1.05), min(float(np.min(e["ci95_low"])), 0.95)
    a1.set_xlim(span[1] / 1.25, span[0] * 1.6)
    cands = (0.25, 0.5, 0.8, 0.9, 1.0, 1.1, 1.25, 2, 5, 10, 20, 50, 100)
    inside = [t for t in cands if span[1] / 1.25 <= t <= span[0] * 1.6]
    ticks: list[float] = []
    for t in inside:  # keep ticks at least ~20% apart on the log axis, 1.0 always
        if t == 1.0 or not ticks or t / ticks[-1] > 1.2:
            ticks.append(t)
    ticks = sorted(set(ticks) | {1.0})
    a1.set_xticks(ticks, [f"{(t - 1) * 100:+.0f}%" if t != 1 else "0" for t in ticks])
    a1.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    for yi, r in zip(y, ratio, strict=True):
        a1.annotate(f"{(r - 1) * 100:+.1f}%", (r, yi), xytext=(4 if r >= 1 else -4, 6),
                    textcoords="offset points", ha="left" if r >= 1 else "right", fontsize=7)
    _per_app_markers(a1, e, per_app)
    a1.set_yticks(y, labels)
    a1.set_xlabel("change in startup P50 (log scale), with ci95")
    a1.set_title("Main effect on startup time (grey: not significant)", loc="left")
    sz = (e["size_ratio"] - 1) * 100
    a2.barh(y, sz.fillna(0), color=OKABE_ITO[5], height=0.6)
    a2.axvline(0, color="black", lw=0.8)
    a2.set_xlabel("change in binary size (%)")
    a2.set_title("… on size", loc="left")
    for yi, v in zip(y, sz, strict=True):
        if v == v:
            a2.annotate(f"{v:+.0f}%", (v, yi), xytext=(3 if v >= 0 else -3, 0),
                        textcoords="offset points", va="center",
                        ha="left" if v >= 0 else "right", fontsize=7)
    a1.invert_yaxis()
    fig.tight_layout()
    return save_figure(fig, out, "main_effects")


APP_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def _per_app_markers(ax: Any, pooled: pd.DataFrame, per_app: pd.DataFrame) -> None:
    """Each app's own effect as a marker on its pooled bar's row (a pooled +12% may be one
    app's 0% and another's +36%)."""
    if per_app.empty:
        return
    row_of = {(r.axis, r.value, r.cache): i for i, r in enumerate(pooled.itertuples())}
    for k, (app, d) in enumerate(per_app.groupby("app", sort=True)):
        pts = [(row_of[(r.axis, r.value, r.cache)], r.ratio) for r in d.itertuples()
               if (r.axis, r.value, r.cache) in row_of]
        if pts:
            ys, xs = zip(*pts, strict=True)
            ax.scatter(xs, ys, marker=APP_MARKERS[k % len(APP_MARKERS)], s=16, zorder=4,
                       facecolor="white", edgecolor="black", linewidth=0.7, label=str(app))
    # Above the axes: over the bars it would hide the largest effects.
    ax.legend(title="each app's own effect", fontsize=7, title_fontsize=7, loc="lower center",
              bbox_to_anchor=(0.5, 1.06), ncols=8, frameon=False)


@styled
def warm_vs_cold(summary: pd.DataFrame, axes: Sequence[str], out: Path) -> list[Path] | None:
    """Each cell's warm P50 against its cold one."""
    s = figure_timer(summary)
    if "cache" not in s or s["cache"].nunique() < 2:
        return None
    key = [c for c in ["app", "toolchain", *axes] if c != "cache" and c in s]
    w = s[s["cache"] == "warm"].set_index(key)
    c = s[s["cache"] == "cold"].set_index(key)
    both = w.merge(c, left_index=True, right_index=True, suffixes=("_w", "_c"),
                   how="inner").reset_index()
    if both.empty:
        return None
    both = both.sort_values(["app", "p50_ms_c"])
    fig, ax = plt.subplots(figsize=(9, max(2.5, 0.28 * len(both) + 1)))
    y = np.arange(len(both))
    vary = [a for a in axes if a != "cache" and a in both and both[a].nunique() > 1]
    labels = [_label(r, vary) for _, r in both.iterrows()]
    ax.barh(y - 0.18, both["p50_ms_w"], height=0.36, color=OKABE_ITO[0], label="warm")
    ax.barh(y + 0.18, both["p50_ms_c"], height=0.36, color=OKABE_ITO[1], label="cold")
    for yi, (wv, cv) in enumerate(zip(both["p50_ms_w"], both["p50_ms_c"], strict=True)):
        ax.annotate(f"×{cv / wv:.1f}", (cv, yi + 0.18), xytext=(3, 0),
                    textcoords="offset points", va="center", fontsize=7)
    ax.set_yticks(y, labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("startup time, P50 (ms)")
    ax.set_title("Warm against cold page cache, per cell (label: cold/warm)", loc="left")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return save_figure(fig, out, "warm_vs_cold")
