"""Charts of context around the main ones: init by package (the package-init phase, zoomed),
a heat map of two axes, and the two timers side by side."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from gostartbench.report.plots import OKABE_ITO, figure_timer, save_figure, styled


@styled
def init_by_package(init: pd.DataFrame, out: Path, top: int = 15) -> list[Path] | None:
    """The packages whose init costs most (median over runs; per app, its baseline-like cell:
    the one with the most init time is not chosen — the first cell of each app is)."""
    if init is None or init.empty:
        return None
    first = init.groupby("app")["cell"].first()
    d = init[init["cell"].isin(first.values)]
    med = d.groupby(["app", "package"], as_index=False)["clock_ms"].median()
    apps = sorted(med["app"].unique())
    fig, axs = plt.subplots(1, len(apps), figsize=(4.6 * len(apps), 0.28 * top + 1.6),
                            squeeze=False)
    for ax, app in zip(axs[0], apps, strict=True):
        m = med[med["app"] == app].nlargest(top, "clock_ms").iloc[::-1]
        total = med[med["app"] == app]["clock_ms"].sum()
        ax.barh(m["package"], m["clock_ms"], color=OKABE_ITO[4])
        ax.set_xlabel("init time per run, median (ms)")
        ax.set_title(f"{app}: init by package (all: {total:.2f} ms)", loc="left")
        ax.tick_params(axis="y", labelsize=7)
    fig.suptitle("GODEBUG=inittrace=1 (separate, untimed runs; excludes exec, loader, schedinit)",
                 fontsize=8)
    fig.tight_layout()
    return save_figure(fig, out, "init_by_package")


@styled
def heatmap(summary: pd.DataFrame, ax1: str, ax2: str, out: Path,
            fixed: dict[str, str] | None = None) -> list[Path] | None:
    """P50 relative to the baseline by two axes, per app. The other axes are held at `fixed`
    (the baseline's values, warm cache), so every square compares like with like; axes the
    baseline does not name are averaged (geometric mean) over the cells present."""
    s = figure_timer(summary).dropna(subset=["ratio"])
    if ax1 not in s or ax2 not in s or s.empty:
        return None
    for k, v in (fixed or {}).items():
        if k in s and k not in (ax1, ax2):
            s = s[s[k].astype(str) == str(v)]
    if s.empty:
        return None
    apps = sorted(s["app"].unique())
    fig, axs = plt.subplots(1, len(apps), figsize=(4.4 * len(apps), 3.4), squeeze=False)
    for ax, app in zip(axs[0], apps, strict=True):
        d = s[s["app"] == app].copy()
        d["lr"] = np.log(d["ratio"])
        pv = d.pivot_table(index=ax1, columns=ax2, values="lr", aggfunc="mean")
        vals = np.exp(pv.to_numpy())
        lim = max(abs(np.log(np.nanmin(vals))), abs(np.log(np.nanmax(vals))), 0.01)
        im = ax.imshow(np.log(vals), cmap="PuOr_r", vmin=-lim, vmax=lim, aspect="auto")
        ax.set_xticks(range(len(pv.columns)), [str(c) or "∅" for c in pv.columns])
        ax.set_yticks(range(len(pv.index)), [str(i) or "∅" for i in pv.index])
        ax.set_xlabel(ax2)
        ax.set_ylabel(ax1)
        ax.grid(False)
        for i in range(vals.shape[0]):
            for j in range(vals.shape[1]):
                if vals[i, j] == vals[i, j]:
                    ax.text(j, i, f"×{vals[i, j]:.2f}", ha="center", va="center", fontsize=8)
        held = ", ".join(f"{k}={v or '∅'}" for k, v in (fixed or {}).items()
                         if k in summary and k not in (ax1, ax2))
        ax.set_title(f"{app}: P50 / baseline" + (f"\n(at {held})" if held else ""), loc="left",
                     fontsize=9)
        fig.colorbar(im, ax=ax, shrink=0.8, label="log ratio (orange: slower)")
    fig.tight_layout()
    return save_figure(fig, out, f"heatmap_{ax1}_{ax2}".replace(".", "-"))


@styled
def timers_side_by_side(summary: pd.DataFrame, out: Path) -> list[Path] | None:
    """The spawn helper's P50 against hyperfine's, per cell."""
    if summary["timer"].nunique() < 2:
        return None
    p = summary.pivot_table(index="cell", columns="timer", values="p50_ms")
    p = p.dropna()
    if p.empty:
        return None
    fig, ax = plt.subplots(figsize=(5, 4.5))
    ax.scatter(p["spawn"], p["hyperfine"], s=14, color=OKABE_ITO[0])
    lim = [0, float(p.to_numpy().max()) * 1.05]
    ax.plot(lim, lim, color="black", lw=0.8, ls="--", label="equal")
    ax.set_xlabel("spawn timer P50 (ms)")
    ax.set_ylabel("hyperfine -N P50 (ms)")
    ax.set_title("The two timers per cell", loc="left")
    ax.legend()
    fig.tight_layout()
    return save_figure(fig, out, "timers")


@styled
def init_by_module(modules: pd.DataFrame, module_effects: pd.DataFrame,
                   baseline_cells: dict[str, str], out: Path, top: int = 8
                   ) -> list[Path] | None:
    """Per app: its baseline cell's package init by module (bars, median over the inittrace
    runs, ci95 whiskers), and where each knob moves each module (markers: baseline + the mean
    change over the knob's pairs)."""
    if modules is None or modules.empty or not baseline_cells:
        return None
    apps = sorted(a for a in baseline_cells if a in set(modules["app"]))
    if not apps:
        return None
    fig, axs = plt.subplots(len(apps), 1, figsize=(8.5, (0.34 * top + 1.3) * len(apps)),
                            squeeze=False)
    for ax, app in zip(axs[:, 0], apps, strict=True):
        b = modules[modules["cell"] == baseline_cells[app]].nlargest(top, "init_ms").iloc[::-1]
        y = np.arange(len(b))
        err = np.vstack([b["init_ms"] - b["ci95_low_ms"], b["ci95_high_ms"] - b["init_ms"]])
        ax.barh(y, b["init_ms"], xerr=np.clip(err, 0, None), color="#cfd8e3",
                edgecolor=OKABE_ITO[0], label="baseline (ci95)", capsize=2)
        ax.set_yticks(y, [str(m) for m in b["module"]], fontsize=7)
        me = module_effects[module_effects["app"] == app] if module_effects is not None and \
            len(module_effects) else pd.DataFrame()
        if len(me):
            knobs = list(dict.fromkeys(zip(me["axis"], me["value"].astype(str), strict=True)))
            base = dict(zip(b["module"], b["init_ms"], strict=True))
            for k, (axis, value) in enumerate(knobs):
                d = me[(me["axis"] == axis) & (me["value"].astype(str) == value)]
                pts = [(i, base[m] + float(d[d["module"] == m]["delta_ms"].iloc[0]))
                       for i, m in enumerate(b["module"]) if m in set(d["module"])]
                if pts:
                    yy, xx = zip(*pts, strict=True)
                    ax.scatter(xx, np.array(yy) + (k - len(knobs) / 2) * 0.08, s=14, zorder=3,
                               color=OKABE_ITO[(k + 1) % len(OKABE_ITO)],
                               label=f"{axis}={value or '∅'}")
        ax.set_xlabel("package init per run, median (ms)")
        ax.set_title(f"{app}: which dependency costs the start", loc="left")
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return save_figure(fig, out, "init_by_module")


@styled
def stages_by_toolchain(stages: pd.DataFrame, summary: pd.DataFrame, out: Path
                        ) -> list[Path] | None:
    """With several toolchains: per app, each toolchain's baseline (warm) as a bar of the
    runtime's own stages (medians of the traced runs, ms): what changed in the runtime's start
    between Go releases."""
    if stages is None or stages.empty or summary.empty or summary["toolchain"].nunique() < 2:
        return None
    s = figure_timer(summary)
    base = s[s["cell"] == s["baseline"]]
    if "cache" in base:
        base = base[base["cache"] == "warm"]
    base = base[base["cell"].isin(set(stages["cell"]))]
    if base.empty or base["toolchain"].nunique() < 2:
        return None
    apps = sorted(base["app"].unique())
    order = list(dict.fromkeys(stages.sort_values("start_p50_ms")["stage"]))
    # more stages than the house palette has colours: a qualitative map with enough of them
    cmap = plt.get_cmap("tab20")
    colours = {st: (OKABE_ITO[i] if len(order) <= len(OKABE_ITO) else cmap(i % 20))
               for i, st in enumerate(order)}
    fig, axs = plt.subplots(len(apps), 1, figsize=(8.5, 1.2 + 0.5 * base["toolchain"].nunique()
                                                   * len(apps)), squeeze=False)
    for ax, app in zip(axs[:, 0], apps, strict=True):
        b = base[base["app"] == app].sort_values("toolchain")
        for y, cell in enumerate(b["cell"]):
            left = 0.0
            d = stages[stages["cell"] == cell].set_index("stage")
            for st in order:
                if st not in d.index:
                    continue
                w = float(d.loc[st, "p50_ms"])
                ax.barh(y, w, left=left, color=colours[st], edgecolor="white", lw=0.5,
                        label=st.replace("_", " ") if y == 0 else None)
                left += w
        ax.set_yticks(range(len(b)), [f"Go {t}" for t in b["toolchain"]])
        ax.set_xlabel("the runtime's own stages, median of traced runs (ms)")
        ax.set_title(f"{app}: the runtime's start by Go version (baseline, warm)", loc="left")
    handles, labels = axs[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=7,
               bbox_to_anchor=(0.5, -0.02))
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return save_figure(fig, out, "stages_by_go_version")


WHERE_BARS = (("direct", "warm", "program, warm"), ("direct", "cold", "program, cold"),
              ("direct", "prewarm-read", "program, prewarm-read"),
              ("direct", "prewarm-mmap", "program, prewarm-mmap"),
              ("engine", "warm", "container to exit/ready, warm"),
              ("engine", "cold", "container to exit/ready, cold"))


@styled
def where_it_runs(summary: pd.DataFrame, baseline: dict[str, str], out: Path
                  ) -> list[Path] | None:
    """Per app, per place it runs (the host, each image): the program's own start (warm, cold,
    prewarmed) and the container's start through the engine, P50 on a log scale — every other
    axis at the baseline's value (the baseline build)."""
    if "container" not in summary or summary["container"].nunique() < 2:
        return None
    s = figure_timer(summary)
    for axis, v in baseline.items():
        if axis in s and axis not in ("container", "launch", "cache"):
            s = s[s[axis].astype(str) == str(v)]
    if s.empty:
        return None
    apps = sorted(s["app"].astype(str).unique())
    seen = list(dict.fromkeys(s["container"].astype(str)))
    places = [p for p in seen if p == "none"] + [p for p in seen if p != "none"]
    fig, axs = plt.subplots(1, len(apps), figsize=(4.4 * len(apps), 0.5 * len(places) * 2 + 2.4),
                            squeeze=False, sharey=True)
    h = 0.8 / len(WHERE_BARS)
    for ax, app in zip(axs[0], apps, strict=True):
        a = s[s["app"].astype(str) == app]
        for i, (launch, cache, name) in enumerate(WHERE_BARS):
            vals = []
            for p in places:
                m = a[(a["container"].astype(str) == p)
                      & (a.get("launch", pd.Series("direct", index=a.index)).astype(str)
                         == launch)
                      & (a.get("cache", pd.Series("warm", index=a.index)).astype(str) == cache)]
                vals.append(float(m["p50_ms"].median()) if len(m) else np.nan)
            y = np.arange(len(places)) + (i - len(WHERE_BARS) / 2 + 0.5) * h
            ax.barh(y, vals, height=h, color=OKABE_ITO[i % len(OKABE_ITO)], label=name)
        ax.set_xscale("log")
        ax.set_yticks(np.arange(len(places)), ["host" if p == "none" else p for p in places],
                      fontsize=8)
        ax.invert_yaxis()  # the host on top
        ax.set_xlabel("P50 (ms, log scale)")
        ax.set_title(app, loc="left")
    handles, names = axs[0][0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncols=3, fontsize=7)
    fig.suptitle("Where it runs: the program's own start in each image, and the container's "
                 "through the engine (missing bar: cannot run there)", fontsize=8)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return save_figure(fig, out, "where_it_runs")
