"""Where the start's time goes, from phases.csv (pure): each cell's phases (median duration of
its traced runs, with a bootstrap ci95), the traced total beside the untraced P50, and where
each knob's cost lands (per-phase change in ms against the axis's baseline value, over the
same pairs of cells as effects.csv)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from gostartbench.analysis.effects import ALL_APPS, pair_groups
from gostartbench.results.schema import PHASE_ORDER, REQUIRED_PHASES, main_timer
from gostartbench.stats.intervals import RULE_RUNS
from gostartbench.stats.resample import mean_of_differences, median_interval
from gostartbench.stats.resample import rng as make_rng
from gostartbench.stats.significance import INSTRUMENTS, TRACED_VS_TIMED


def phase_table(phases: pd.DataFrame, *, b: int, seed: int = 0) -> pd.DataFrame:
    """One row per cell × phase: traced runs, median duration (ms) with ci95 (rule `runs`:
    traced runs have no times), median start."""
    if phases.empty:
        return pd.DataFrame(columns=["cell", "phase", "n", "p50_ms", "ci95_low_ms",
                                     "ci95_high_ms", "start_p50_ms", "method"])
    rng = make_rng(seed)
    rows = []
    for (cell, phase), g in phases.groupby(["cell", "phase"], sort=False):
        iv = median_interval(g["duration_ns"].to_numpy(dtype=float) / 1e6, b, rng)
        rows.append({"cell": cell, "phase": phase, "n": len(g), "p50_ms": iv.estimate,
                     "ci95_low_ms": iv.low, "ci95_high_ms": iv.high,
                     "start_p50_ms": float(np.median(g["start_ns"])) / 1e6,
                     "method": str(g["method"].iloc[0])})
    out = pd.DataFrame(rows)
    out["_o"] = out["phase"].map({p: i for i, p in enumerate(PHASE_ORDER)})
    return out.sort_values(["cell", "_o"]).drop(columns="_o").reset_index(drop=True)


def stage_table(stages: pd.DataFrame, *, b: int, seed: int = 0) -> pd.DataFrame:
    """One row per cell × runtime stage (phases.csv's stage rows): traced runs, the stage's
    phase, its median duration (ms) with a bootstrap ci95, its median start."""
    cols = ["cell", "phase", "stage", "n", "p50_ms", "ci95_low_ms", "ci95_high_ms",
            "start_p50_ms"]
    if stages is None or stages.empty:
        return pd.DataFrame(columns=cols)
    rng = make_rng(seed)
    rows = []
    for (cell, stage), g in stages.groupby(["cell", "stage"], sort=False):
        iv = median_interval(g["duration_ns"].to_numpy(dtype=float) / 1e6, b, rng)
        rows.append({"cell": cell, "phase": str(g["phase"].iloc[0]), "stage": stage,
                     "n": len(g), "p50_ms": iv.estimate, "ci95_low_ms": iv.low,
                     "ci95_high_ms": iv.high,
                     "start_p50_ms": float(np.median(g["start_ns"])) / 1e6})
    out = pd.DataFrame(rows, columns=cols)
    return out.sort_values(["cell", "start_p50_ms"]).reset_index(drop=True)


def missing_phases(table: pd.DataFrame) -> dict[str, list[str]]:
    """cell → the phases its traced runs lack (a mark that could not be placed in its binary
    or never fired): such a cell has no traced total and no waterfall bar."""
    if table.empty:
        return {}
    have = table.groupby("cell")["phase"].agg(set)
    return {str(c): [p for p in REQUIRED_PHASES if p not in got] for c, got in have.items()
            if any(p not in got for p in REQUIRED_PHASES)}


def missing_text(phases: Sequence[str]) -> str:
    """The one wording of a cell without usable marks (summary warning, report)."""
    return (f"phases not traced: {', '.join(phases)} (their marks could not be placed in this "
            "binary or never fired): no traced total, no waterfall bar")


def traced_vs_untraced(table: pd.DataFrame, summary: pd.DataFrame) -> dict[str, str]:
    """cell → a warning where the traced total (the sum of its phase medians) and its untraced
    P50 disagree beyond TRACED_VS_TIMED, or where phases are missing (then there
    is no traced total to compare)."""
    if table.empty or summary.empty:
        return {}
    totals = table.groupby("cell")["p50_ms"].sum()
    missing = missing_phases(table)
    s = summary[summary["timer"] == main_timer(summary["timer"].unique())]
    out = {}
    for cell, p50 in zip(s["cell"], s["p50_ms"], strict=True):
        if cell in missing:
            out[cell] = missing_text(missing[cell])
            continue
        if cell not in totals:
            continue
        t = float(totals[cell])
        if not TRACED_VS_TIMED.agrees(t, float(p50)):
            out[cell] = f"traced total {t:.3f} ms vs untraced P50 {p50:.3f} ms"
    return out


def phase_effects(phases: pd.DataFrame, summary: pd.DataFrame, axes: Sequence[str],
                  baseline: Mapping[str, str], axis_values: Mapping[str, Sequence[str]],
                  *, b: int, seed: int = 0, stages: pd.DataFrame | None = None
                  ) -> pd.DataFrame:
    """Per axis value, app (and all), cache state and phase — and runtime stage, from
    `stages` — the mean over pairs of the change in its median (ms), with a bootstrap ci95
    (each cell's traced runs resampled), also as a share of the baseline cell's start."""
    cols = ["axis", "value", "baseline_value", "app", "timer", "cache", "phase", "stage",
            "pairs",
            "delta_ms", "delta_ci95_low_ms", "delta_ci95_high_ms", "delta_rel",
            "delta_rel_ci95_low", "delta_rel_ci95_high", "ci_rule"]
    if phases.empty or summary.empty:
        return pd.DataFrame(columns=cols)
    rng = make_rng(seed)
    runs = {k: g.to_numpy(dtype=float) / 1e6
            for k, g in phases.groupby(["cell", "phase"])["duration_ns"]}
    stage_of: dict[str, str] = {}  # stage → its phase
    if stages is not None and len(stages):
        for (cell, stage), g in stages.groupby(["cell", "stage"]):
            runs[(str(cell), "stage:" + str(stage))] = g["duration_ns"].to_numpy(float) / 1e6
            stage_of[str(stage)] = str(g["phase"].iloc[0])
    # Each pair's change is also taken relative to its baseline cell's traced start, so the
    # column reads like the effect beside it (a geometric mean of relative changes): a knob's
    # few packed pairs, tens of ms long, do not outweigh its many ms-long ones.
    totals = phases.groupby(["cell", "run"])["duration_ns"].sum().groupby("cell").median() / 1e6
    sm = summary[summary["timer"] == main_timer(summary["timer"].unique())].copy()
    for a in axes:
        sm[a] = sm[a].astype(str)
    rows = []
    for axis, v, base_v, cond, scope, sp in pair_groups(sm, axes, baseline, axis_values):
        marks = [(phase, phase, "") for phase in PHASE_ORDER] + \
            [("stage:" + stage, phase, stage) for stage, phase in stage_of.items()]
        for key, phase, stage in marks:
            r = phase_delta(sp, key, runs, b, rng, totals)
            if r is not None:
                rows.append({"axis": axis, "value": v, "baseline_value": base_v, "app": scope,
                             "timer": sm["timer"].iloc[0], "cache": cond, "phase": phase,
                             "stage": stage, **r})
    return pd.DataFrame(rows, columns=cols)


def phase_delta(pairs: Sequence[tuple[dict[str, Any], dict[str, Any]]], phase: str,
           runs: Mapping[tuple[str, str], np.ndarray], b: int, rng: np.random.Generator,
           totals: Mapping[str, float] | None = None) -> dict[str, Any] | None:
    """The mean over pairs of the change in `phase`'s median (ms) with a bootstrap ci95; with
    `totals` (cell → its traced start, ms) also each change over its baseline cell's start."""
    have = [(runs[(a["cell"], phase)], runs[(c["cell"], phase)], str(c["cell"]))
            for a, c in pairs if (a["cell"], phase) in runs and (c["cell"], phase) in runs]
    if not have:
        return None
    iv, _ = mean_of_differences([(x, y) for x, y, _ in have], b, rng)
    out = {"pairs": len(have), "delta_ms": iv.estimate, "delta_ci95_low_ms": iv.low,
           "delta_ci95_high_ms": iv.high, "ci_rule": RULE_RUNS}
    with_total = [(x, y, float(totals[base])) for x, y, base in have
                  if totals is not None and totals.get(base)]
    if with_total:
        rel, _ = mean_of_differences([(x, y) for x, y, _ in with_total], b, rng,
                                     scale=[t for _, _, t in with_total])
        out.update(delta_rel=rel.estimate, delta_rel_ci95_low=rel.low,
                   delta_rel_ci95_high=rel.high)
    return out


def where_it_lands(pe: pd.DataFrame, axis: str, value: str, cache: str,
                   app: str = ALL_APPS) -> str:
    """'+21.3%; pre entry +19.9% [+18.1, +21.7]': the knob's total traced change and the phase
    whose change is largest, each as a share of the baseline's start, over the same pairs and
    aggregated the same way as the effect beside it ('' without phases; "n.s." where the
    phase's ci95 holds no change)."""
    if pe.empty:
        return ""
    d = pe[(pe["axis"] == axis) & (pe["value"].astype(str) == str(value))
           & (pe["cache"] == cache) & (pe["app"] == app)]
    st = pd.DataFrame()
    if "stage" in d:
        st = d[d["stage"].fillna("").astype(str) != ""].dropna(subset=["delta_rel"])
        d = d[d["stage"].fillna("").astype(str) == ""]
    if d.empty:
        return ""
    if "delta_rel" not in d or d["delta_rel"].isna().all():  # effects.csv before this column
        total = float(d["delta_ms"].sum())
        top = d.loc[d["delta_ms"].abs().idxmax()]
        return f"{total:+.2f} ms; {str(top['phase']).replace('_', ' ')} " \
               f"{float(top['delta_ms']):+.2f} ms"
    d = d.dropna(subset=["delta_rel"])
    total = float(d["delta_rel"].sum())
    top = d.loc[d["delta_rel"].abs().idxmax()]
    lo, hi = float(top["delta_rel_ci95_low"]), float(top["delta_rel_ci95_high"])
    ns = "" if lo > 0 or hi < 0 else " n.s."
    text = (f"{total * 100:+.1f}%; {str(top['phase']).replace('_', ' ')} "
            f"{float(top['delta_rel']) * 100:+.1f}% [{lo * 100:+.1f}, {hi * 100:+.1f}]{ns}")
    inner = st[st["phase"] == top["phase"]] if len(st) else st
    if len(inner):  # the runtime stage inside that phase that moved most
        s_top = inner.loc[inner["delta_rel"].abs().idxmax()]
        text += f" (stage {str(s_top['stage']).replace('_', ' ')} " \
                f"{float(s_top['delta_rel']) * 100:+.1f}%)"
    return text


def instruments(ptrace: pd.DataFrame, ptrace_stages: pd.DataFrame, uprobe: pd.DataFrame,
                *, b: int, seed: int = 0) -> pd.DataFrame:
    """Per cell × phase (and stage) timed by both instruments: the ptrace tracer's median and
    the uprobes' (each over its own runs, with its ci95), their difference, and whether they
    agree within stats.significance.INSTRUMENTS. Never averaged."""
    cols = ["cell", "phase", "stage", "ptrace_ms", "ptrace_ci95_low_ms", "ptrace_ci95_high_ms",
            "uprobe_ms", "uprobe_ci95_low_ms", "uprobe_ci95_high_ms", "diff_ms", "agree"]
    if uprobe is None or uprobe.empty or ptrace.empty:
        return pd.DataFrame(columns=cols)
    is_stage = uprobe["stage"].fillna("").astype(str) != "" if "stage" in uprobe else \
        pd.Series(False, index=uprobe.index)
    up = phase_table(uprobe[~is_stage].drop(columns=["stage"], errors="ignore"), b=b,
                     seed=seed)
    ups = stage_table(uprobe[is_stage], b=b, seed=seed)
    rows = []
    pairs = [(ptrace.assign(stage=""), up.assign(stage="")), (ptrace_stages, ups)]
    for a_tab, b_tab in pairs:
        if a_tab is None or a_tab.empty or b_tab.empty:
            continue
        m = a_tab.merge(b_tab, on=["cell", "phase", "stage"], suffixes=("_a", "_b"))
        for r in m.to_dict("records"):
            pt, up_ms = float(r["p50_ms_a"]), float(r["p50_ms_b"])
            rows.append({"cell": r["cell"], "phase": r["phase"], "stage": r["stage"],
                         "ptrace_ms": pt, "ptrace_ci95_low_ms": r["ci95_low_ms_a"],
                         "ptrace_ci95_high_ms": r["ci95_high_ms_a"], "uprobe_ms": up_ms,
                         "uprobe_ci95_low_ms": r["ci95_low_ms_b"],
                         "uprobe_ci95_high_ms": r["ci95_high_ms_b"], "diff_ms": pt - up_ms,
                         "agree": INSTRUMENTS.agrees(pt, up_ms)})
    return pd.DataFrame(rows, columns=cols)
