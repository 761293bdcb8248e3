"""The report's words: findings, the at-a-glance table, environment and summary rows. People
read labels (what differs from the baseline), never cell ids."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from gostartbench.analysis import Analysis
from gostartbench.analysis.effects import ALL_APPS, pareto_front, startup_rows
from gostartbench.analysis.labels import change_label
from gostartbench.analysis.phases import missing_phases, where_it_lands
from gostartbench.analysis.profile import top_moved
from gostartbench.results.schema import PHASE_ORDER, main_timer
from gostartbench.stats.intervals import RULE_SHORT, RULES


def _fmt_ms(v: Any) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"


def _mb(v: Any) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return ""
    return "" if math.isnan(f) else f"{f / 1e6:.2f}"


# The mark of an interval made by the short-run rule (stats.intervals.RULE_SHORT), and the note
# every table that shows one carries: widths made by different rules are never read unmarked.
SHORT_MARK = "†"
SHORT_NOTE = (f"{SHORT_MARK}: a short run's interval ({RULES[RULE_SHORT]}); "
              "docs/methodology.md 'Which interval'.")


def short_mark(r: Mapping[str, Any]) -> str:
    """' †' for a row whose intervals were made by the short-run rule, else ''."""
    return f" {SHORT_MARK}" if r.get("ci_rule") == RULE_SHORT else ""


def any_short(df: pd.DataFrame) -> bool:
    """True when a table holds an interval made by the short-run rule."""
    return "ci_rule" in df and bool((df["ci_rule"] == RULE_SHORT).any())


def _ratio(r: Mapping[str, Any]) -> str:
    x = r.get("ratio")
    if x is None or x != x:
        return ""
    if r.get("cell") == r.get("baseline"):
        return "baseline"
    return f"{x:.3f} [{r['ratio_ci95_low']:.3f}, {r['ratio_ci95_high']:.3f}]{short_mark(r)}"


def findings(a: Analysis) -> list[str]:
    """The run in words: per app the fastest, the smallest and the Pareto set; then every
    knob's effect, significant first."""
    s: pd.DataFrame = a.summary
    if s.empty:
        return ["No cell was measured."]
    out = []
    t = s[s["timer"] == main_timer(s["timer"].unique())]
    for app, d in t.groupby("app"):
        warm = d[d["cache"] == "warm"] if "cache" in d else d
        warm = warm if len(warm) else d
        f = warm.nsmallest(1, "p50_ms").iloc[0]
        sm = warm.nsmallest(1, "size_bytes").iloc[0] if warm["size_bytes"].notna().any() else None
        # A cell is "fastest" only where it is significantly faster than its baseline: where
        # the variants tie, the lowest point estimate is the noise's pick, not a finding.
        faster = warm[warm["significant"].astype(bool) & (warm["ratio"] < 1)]
        if len(faster):
            f = faster.nsmallest(1, "p50_ms").iloc[0]
            line = (f"**{app}**: fastest (warm) is `{_lab(f)}` at {f['p50_ms']:.3f} ms P50 "
                    f"(×{f['ratio']:.3f} of its baseline, significant)")
        else:
            line = (f"**{app}**: no variant starts significantly faster than its baseline (warm; "
                    f"the lowest P50, `{_lab(f)}` at {f['p50_ms']:.3f} ms, is within the noise)")
        if sm is not None:
            line += f"; smallest is `{_lab(sm)}` at {sm['size_bytes'] / 1e6:.2f} MB"
        front = d[pareto_front(d["p50_ms"], d["size_bytes"].fillna(np.inf))]
        line += "; Pareto set (size vs startup): " + ", ".join(
            f"`{_lab(r)}`" for _, r in front.iterrows())
        out.append(line + ".")
    return out + _effect_findings(a.effects)


def _lab(row: Mapping[str, Any]) -> str:
    """A summary row's label without the app (findings are already per app)."""
    text = str(row.get("label") or row["cell"])
    return text.split(" · ", 1)[1] if " · " in text else text


def _effect_findings(e: pd.DataFrame) -> list[str]:
    e = startup_rows(e)
    if e.empty:
        return []
    e = e[e["timer"] == main_timer(e["timer"].unique())]
    pooled = e[e["app"] == ALL_APPS] if "app" in e else e
    out = []
    for r in pooled[pooled["significant"]].sort_values(["cache", "ratio"]).itertuples():
        where = "" if r.cache == "all" else f" ({r.cache} cache)"
        apps = _per_app_text(e, r)
        out.append(f"`{change_label(r.axis, r.baseline_value, r.value)}`{where} changes startup "
                   f"by {(r.ratio - 1) * 100:+.1f}% (ci95 {(r.ci95_low - 1) * 100:+.1f}… "
                   f"{(r.ci95_high - 1) * 100:+.1f}%, {r.pairs} pairs{apps})"
                   + (f" and size by {(r.size_ratio - 1) * 100:+.0f}%"
                      if r.size_ratio == r.size_ratio else "") + ".")
    non = pooled[~pooled["significant"]]
    if len(non):
        out.append("Not significant (ci95 includes no change): " + ", ".join(
            f"`{change_label(r.axis, r.baseline_value, r.value)}`"
            + ("" if r.cache == "all" else f" ({r.cache})")
            + f" ({(r.ratio - 1) * 100:+.1f}%)" for r in non.itertuples()) + ".")
    return out


def _per_app_text(e: pd.DataFrame, r: Any) -> str:
    """'; hello +0.2%, netcli +36.1%': each app's own figure for a pooled effect."""
    if "app" not in e:
        return ""
    d = e[(e["app"] != ALL_APPS) & (e["axis"] == r.axis) & (e["value"] == r.value)
          & (e["cache"] == r.cache)]
    if d.empty:
        return ""
    return "; " + ", ".join(f"{x.app} {(x.ratio - 1) * 100:+.1f}%" for x in d.itertuples())


def calibration_rows(c: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """From calibration.json, where the run (calibration: full) or `gostartbench calibrate
    --out RUN_DIR` left one."""
    if not c:
        return []
    f = c["floor"]
    rows = [("floor (no-op)", f"{f['framework_p50_ms']:.3f} ms; C loop {f['c_loop_p50_ms']:.3f} ms "
                              f"(×{f['framework_over_c']:.3f})"
             + (f"; hyperfine {f['hyperfine_p50_ms']:.3f} ms (×{f['framework_over_hyperfine']:.3f})"
                if f.get("hyperfine_p50_ms") else ""))]
    rows.append(("accuracy", ", ".join(
        f"{r['injected_ms']:g}→{r['measured_delta_ms']:.3f} ms" for r in c["ladder"])
        + (" (all within max(40 µs, 5%))" if c.get("ladder_met") else " (NOT all within target)")))
    n = c["noise"]
    spread = (f"; one start varies by {f['framework_spread']:.1%}, the bare C loop's by "
              f"{f['c_loop_spread']:.1%} (×{f['spread_over_c']:.2f})"
              if f.get("framework_spread") is not None else "")  # before 2026-11-28: absent
    rows.append(("noise", f"cv {n['cv']:.3f}; P50 resolution ±{n['p50_ci95_halfwidth_rel']:.2%}"
                 + spread))
    ins = c.get("instruments") or {}
    if ins.get("phases"):
        rows.append(("two phase instruments", ", ".join(
            f"{ph.replace('_', ' ')} {v['ptrace_ms']:.3f}/{v['uprobe_ms']:.3f} ms"
            + ("" if v["agree"] else " (DISAGREE)") for ph, v in ins["phases"].items())
            + " (ptrace/uprobes, the delay program)"))
    elif ins.get("skipped"):
        rows.append(("two phase instruments", f"not compared: {ins['skipped']}"))
    return rows


GLANCE_HEAD = ["knob", "startup, warm", "startup, cold", "startup (all runs)", "size",
               "peak RSS", "where it lands (traced phases, share of the start)"]


def glance_rows(eff: pd.DataFrame, pe: pd.DataFrame | None = None,
                fe: pd.DataFrame | None = None) -> list[list[str]]:
    """One row per knob (axis value against its baseline value), pooled over every app, then
    one indented row per app where there are several: the effect on startup per cache state
    with its ci95 ("n.s." where not significant), on size and on RSS, and (with traced runs)
    where its cost lands among the start's phases — and (with profiled starts, `fe`: the
    function effects) the function whose CPU time per start it moved most."""
    eff = startup_rows(eff)
    if eff.empty:
        return []
    e = eff[eff["timer"] == main_timer(eff["timer"].unique())]
    if "app" not in e:
        e = e.assign(app=ALL_APPS)
    pe = pe if pe is not None else pd.DataFrame()
    fe = fe if fe is not None else pd.DataFrame()
    rows = []
    for (axis, base, val), g in e.groupby(["axis", "baseline_value", "value"], sort=False):
        knob = change_label(str(axis), str(base), str(val))
        rows.append(_glance_row(knob, g[g["app"] == ALL_APPS], _lands(pe, fe, axis, val)))
        for app, ga in g[g["app"] != ALL_APPS].groupby("app", sort=True):
            rows.append(_glance_row(f"  └ {app}", ga, _lands(pe, fe, axis, val, str(app))))
    return rows


def _lands(pe: pd.DataFrame, fe: pd.DataFrame, axis: object, val: object,
           app: str = ALL_APPS) -> str:
    """Where a knob's cost lands: warm runs where the matrix has a cache axis, else all; then
    the function it moved most, where profiled."""
    phase = (where_it_lands(pe, str(axis), str(val), "warm", app)
             or where_it_lands(pe, str(axis), str(val), "all", app))
    fn = (top_moved(fe, str(axis), str(val), "warm", app)
          or top_moved(fe, str(axis), str(val), "all", app))
    return "; ".join(x for x in (phase, f"function {fn}" if fn else "") if x)


def _glance_row(name: str, g: pd.DataFrame, where: str) -> list[str]:
    cells = {}
    for r in g.itertuples():
        txt = (f"{(r.ratio - 1) * 100:+.1f}% [{(r.ci95_low - 1) * 100:+.1f}, "
               f"{(r.ci95_high - 1) * 100:+.1f}]")
        cells[r.cache] = txt + ("" if r.significant else " n.s.") + \
            short_mark(r._asdict())
    size = g["size_ratio"].dropna()
    rss = g["rss_ratio"].dropna()
    return [name, cells.get("warm", ""), cells.get("cold", ""), cells.get("all", ""),
            f"{(np.exp(np.log(size).mean()) - 1) * 100:+.0f}%" if len(size) else "",
            f"{(np.exp(np.log(rss).mean()) - 1) * 100:+.0f}%" if len(rss) else "", where]


def phase_rows(a: Analysis) -> list[list[str]]:
    """The phase table: per cell (by label), each phase's median in ms, and the total."""
    t = a.phases
    if t.empty or a.summary.empty:
        return []
    s = a.summary[a.summary["timer"] == main_timer(a.summary["timer"].unique())]
    labels = dict(zip(s["cell"], s["label"], strict=False))
    p50 = dict(zip(s["cell"], s["p50_ms"], strict=False))
    rows = []
    missing = missing_phases(t)
    for cell, g in t.groupby("cell", sort=False):
        med = dict(zip(g["phase"], g["p50_ms"], strict=True))
        rows.append([labels.get(cell, str(cell)),
                     *[f"{med[p]:.3f}" if p in med else
                       ("not traced" if p in missing.get(str(cell), ()) else "")
                       for p in PHASE_ORDER],
                     "incomplete" if str(cell) in missing else f"{sum(med.values()):.3f}",
                     f"{p50[cell]:.3f}" if cell in p50 else ""])
    return sorted(rows)


PHASE_HEAD = ["cell", *[p.replace("_", " ") for p in PHASE_ORDER], "traced total",
              "untraced P50"]


def env_rows(run: Mapping[str, Any]) -> list[tuple[str, str]]:
    h = run.get("host", {})
    tools = run.get("tools", {})
    fl = run.get("harness_floor", {})
    rows = [
        ("run", f"{run.get('id')} ({run.get('status')}), {run.get('start')} → {run.get('end')}"),
        ("host", f"{h.get('cpu_model')} × {h.get('cores')} cores, {h.get('arch')}, "
                 f"{(h.get('memory_bytes') or 0) / 2**30:.0f} GiB"),
        ("os", f"{h.get('os')}, kernel {h.get('kernel')}, {h.get('libc')}"),
        ("cpu", f"governor {h.get('governor')}, turbo {h.get('turbo')}, ASLR {h.get('aslr')}, "
                f"load {h.get('loadavg')} → {h.get('loadavg_end')}"),
        ("disk", f"read_ahead_kb {h.get('read_ahead_kb')}"),
        ("tools", ", ".join(f"{k}: {v}" for k, v in tools.items() if v)),
        ("harness floor", f"{fl.get('noop_p50_ms', float('nan')):.3f} ms P50 for a static "
                          "no-op Go binary" if "noop_p50_ms" in fl else str(fl)),
        ("settings", json.dumps(run.get("settings", {}).get("measure", {}))),
    ]
    return rows


SUMMARY_SHOW = ["cell", "timer", "n", "p50_ms", "ci95", "ratio", "sig", "size_mb",
                "rss_mb", "warnings"]


def summary_rows(s: pd.DataFrame) -> list[dict[str, str]]:
    rows = []
    for r in s.sort_values(["app", "timer", "p50_ms"]).to_dict("records"):
        rows.append({
            "cell": str(r.get("label") or r["cell"]), "timer": r["timer"],
            "n": str(int(r["n"])), "p50_ms": _fmt_ms(r["p50_ms"]),
            "ci95": f"[{_fmt_ms(r['ci95_low_ms'])}, {_fmt_ms(r['ci95_high_ms'])}]"
                    f"{short_mark(r)}",
            "ratio": _ratio(r), "sig": "yes" if bool(r.get("significant")) else "",
            "size_mb": _mb(r.get("size_bytes")), "rss_mb": _mb(r.get("maxrss_p50_bytes")),
            "warnings": str(r.get("warnings") or ""),
        })
    return rows


