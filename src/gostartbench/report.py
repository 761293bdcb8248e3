"""Statistics, charts and report of a run, from its files only (so any saved run can be redrawn):
summary.csv, effects.csv, plots/*.png|svg, report.md and a self-contained report.html."""

from __future__ import annotations

import base64
import html
import io
import json
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gostartbench import plots, stats
from gostartbench.results import (
    CELLS_CSV,
    EFFECTS_CSV,
    INITTRACE_CSV,
    RUN_JSON,
    SAMPLES_COLUMNS,
    SAMPLES_CSV,
    SUMMARY_CSV,
    read_json,
    write_atomic,
)


def read_table(path: Path, text_columns: Sequence[str] = ()) -> pd.DataFrame:
    """A CSV of the run folder; a torn last line (a kill mid-write) is dropped. Columns in
    `text_columns` stay text (axis values like "false", "0", "1.27.3" are labels)."""
    if not path.exists():
        return pd.DataFrame()
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        data = data[: data.rfind(b"\n") + 1]
    if not data.strip():
        return pd.DataFrame()
    return pd.read_csv(io.BytesIO(data), keep_default_na=False, na_values=[""],
                       on_bad_lines="skip", low_memory=False,
                       dtype={c: str for c in text_columns})


def read_samples(run_dir: Path) -> pd.DataFrame:
    df = read_table(run_dir / SAMPLES_CSV, ["cell", "cache", "timer", "reason"])
    if df.empty:
        df = pd.DataFrame(columns=SAMPLES_COLUMNS)
    df["ok"] = df["ok"].astype(str).str.lower() == "true"
    for c in ("round", "wall_ns", "user_ns", "sys_ns", "maxrss_bytes", "minflt", "majflt",
              "exit_code", "signal"):
        df[c] = pd.to_numeric(df[c], errors="coerce")
    df["reason"] = df["reason"].astype(object).fillna("").astype(str)
    df["cache"] = df["cache"].astype(object).fillna("").astype(str)
    return df


def read_cells(run_dir: Path, axes: Sequence[str]) -> pd.DataFrame:
    cells = read_table(run_dir / CELLS_CSV, [*axes, "toolchain", "app", "cell"])
    for a in axes:
        if a in cells:
            cells[a] = cells[a].fillna("").astype(str)
    if "toolchain" in cells:
        cells["toolchain"] = cells["toolchain"].astype(str)
    return cells


def baselines(cells: pd.DataFrame, axes: Sequence[str], baseline: Mapping[str, str]
              ) -> dict[str, str]:
    """cell → its baseline cell: same app and toolchain, the baseline's values for the axes it
    names, the cell's own for the rest."""
    key = ["app", "toolchain", *axes]
    index = {tuple(str(r[k]) for k in key): r["cell"] for r in cells.to_dict("records")}
    out = {}
    for r in cells.to_dict("records"):
        want = tuple(str(baseline.get(k, r[k])) for k in key)
        if want in index:
            out[r["cell"]] = index[want]
    return out


def analyse(run_dir: Path, write: bool = True) -> dict[str, Any]:
    """Recompute summary.csv and effects.csv from the run's files (written back unless
    write=False); returns the tables."""
    run = read_json(run_dir / RUN_JSON)
    axes = list(run["settings"]["axes"])
    base = {k: str(v) for k, v in run["settings"].get("baseline", {}).items()}
    m = run["settings"]["measure"]
    cells = read_cells(run_dir, axes)
    samples = read_samples(run_dir)
    bmap = baselines(cells, axes, base)
    summary = pd.DataFrame()
    eff = pd.DataFrame()
    ok = samples[samples["ok"] & (samples["round"] >= 0)] if len(samples) else samples
    if len(ok):
        summary = stats.summarise(samples, cells, bmap, bootstrap=m.get("bootstrap", 2000),
                                  min_effect=m.get("min_effect", 0.01), seed=m.get("seed", 0))
        axis_values = {a: list(dict.fromkeys(cells[a].astype(str))) for a in axes if a in cells}
        eff_axes = list(axes)
        if cells["toolchain"].nunique() > 1:
            # "What did upgrading Go do": the first listed toolchain is the baseline.
            eff_axes.append("toolchain")
            axis_values["toolchain"] = list(dict.fromkeys(cells["toolchain"]))
            base = {**base, "toolchain": axis_values["toolchain"][0]}
            summary["toolchain"] = summary["toolchain"].astype(str)
        eff = stats.effects(summary, samples, eff_axes, base, axis_values=axis_values,
                            seed=m.get("seed", 0), min_effect=m.get("min_effect", 0.01),
                            b=stats.choose_b(len(ok), 1000))
        lead = ["cell", "app", "toolchain", *[a for a in axes if a in summary], "timer"]
        summary = summary[lead + [c for c in summary.columns if c not in lead]]
        if write:
            _write_df(run_dir / SUMMARY_CSV, summary)
            _write_df(run_dir / EFFECTS_CSV, eff)
    init = read_table(run_dir / INITTRACE_CSV)
    if len(init):
        init = init.merge(cells[["cell", "app"]], on="cell", how="left")
    return {"run": run, "axes": axes, "cells": cells, "samples": samples, "summary": summary,
            "effects": eff, "init": init, "baseline": base}


def _write_df(path: Path, df: pd.DataFrame) -> None:
    write_atomic(path, df.to_csv(index=False, float_format="%.10g"))


def make_report(run_dir: Path, heat: tuple[str, str] | None = None) -> Path:
    a = analyse(run_dir)
    out = run_dir / "plots"
    charts: list[tuple[str, Path, str]] = []  # (title, png, caption)
    s, axes = a["summary"], a["axes"]
    if len(s):
        def add(title: str, paths: list[Path] | None, caption: str) -> None:
            if paths:
                charts.append((title, paths[0], caption))

        if len(a["effects"]):
            add("Main effects", plots.main_effects(a["effects"], out),
                "Each axis value against the axis's baseline value, over every pair of cells that "
                "differ only there (geometric mean; ci95 by bootstrap).")
        add("Startup time per cell", plots.p50_per_cell(s, axes, out),
            "P50 of each cell's runs with its bootstrap ci95; colour: significance against the "
            "app's baseline (Mann–Whitney U, Holm-adjusted, min effect "
            f"{a['run']['settings']['measure'].get('min_effect', 0.01):.0%}).")
        add("Size against startup", plots.size_vs_p50(s, axes, out),
            "Lower-left is better. The Pareto front joins the cells no other cell beats on both.")
        if s["maxrss_p50_bytes"].notna().any():
            add("Memory against startup",
                plots.size_vs_p50(s, axes, out, y="maxrss_p50_bytes", name="rss_vs_p50"),
                "Peak RSS of the program itself (ru_maxrss from a tiny spawner, see README).")
        add("Warm against cold", plots.warm_vs_cold(s, axes, out),
            "Cold: the binary evicted from the page cache before every run.")
        add("Distribution of runs", plots.distribution(a["samples"], s, axes, out),
            "Empirical CDF of every run: a shift is a real change, a long right tail is noise or "
            "a slow path.")
        add("Init by package", plots.init_by_package(a["init"], out),
            "From GODEBUG=inittrace=1 in separate runs.")
        h = heat or _heat_axes(s, axes)
        if h:
            fixed = {**a["baseline"], **({"cache": "warm"} if "cache" in s else {})}
            add(f"Heat map {h[0]} × {h[1]}", plots.heatmap(s, h[0], h[1], out, fixed),
                "P50 relative to the baseline by two axes, the other axes held at the "
                "baseline's values (warm cache).")
        add("The two timers", plots.timers_side_by_side(s, out),
            "Built-in spawn timer against hyperfine -N, per cell.")
    md = render_md(a, charts, run_dir)
    write_atomic(run_dir / "report.md", md)
    mtext = (run_dir / "matrix.yaml").read_text() if (run_dir / "matrix.yaml").exists() else ""
    write_atomic(run_dir / "report.html",
                 render_html(a, charts, mtext, _calibration_rows(run_dir)))
    return run_dir / "report.html"


def _heat_axes(s: pd.DataFrame, axes: Sequence[str]) -> tuple[str, str] | None:
    varied = [x for x in axes if x in s and s[x].nunique() > 1 and x != "cache"]
    return (varied[0], varied[1]) if len(varied) >= 2 else None


# ---------------------------------------------------------------------------------------------
# Text


def _fmt_ms(v: Any) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"


def _mb(v: Any) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return ""
    return "" if math.isnan(f) else f"{f / 1e6:.2f}"


def _ratio(r: Mapping[str, Any]) -> str:
    x = r.get("ratio")
    if x is None or x != x:
        return ""
    if r.get("cell") == r.get("baseline"):
        return "baseline"
    return f"{x:.3f} [{r['ratio_ci95_low']:.3f}, {r['ratio_ci95_high']:.3f}]"


def findings(a: Mapping[str, Any]) -> list[str]:
    s: pd.DataFrame = a["summary"]
    if s.empty:
        return ["No cell was measured."]
    out = []
    t = s[s["timer"] == ("spawn" if "spawn" in set(s["timer"]) else s["timer"].iloc[0])]
    for app, d in t.groupby("app"):
        warm = d[d["cache"] == "warm"] if "cache" in d else d
        warm = warm if len(warm) else d
        f = warm.nsmallest(1, "p50_ms").iloc[0]
        sm = warm.nsmallest(1, "size_bytes").iloc[0] if warm["size_bytes"].notna().any() else None
        line = f"**{app}**: fastest (warm) is `{f['cell']}` at {f['p50_ms']:.3f} ms P50"
        if f["cell"] != f["baseline"] and f["ratio"] == f["ratio"]:
            sig = "significant" if bool(f["significant"]) else "not significant"
            line += f" (×{f['ratio']:.3f} of its baseline, {sig})"
        elif f["cell"] == f["baseline"]:
            line += " (the baseline itself)"
        if sm is not None:
            line += f"; smallest is `{sm['cell']}` at {sm['size_bytes'] / 1e6:.2f} MB"
        front = d[stats.pareto_front(d["p50_ms"], d["size_bytes"].fillna(np.inf))]
        line += "; Pareto set (size vs startup): " + ", ".join(f"`{c}`" for c in front["cell"])
        out.append(line + ".")
    e: pd.DataFrame = a["effects"]
    if len(e):
        e = e[e["timer"] == ("spawn" if "spawn" in set(e["timer"]) else e["timer"].iloc[0])]
        sig = e[e["significant"]]
        non = e[~e["significant"]]
        for r in sig.sort_values(["cache", "ratio"]).itertuples():
            where = "" if r.cache == "all" else f" ({r.cache} cache)"
            out.append(f"`{r.axis}: {r.baseline_value or '∅'} → {r.value or '∅'}`{where} changes "
                       "startup "
                       f"by {(r.ratio - 1) * 100:+.1f}% (ci95 {(r.ci95_low - 1) * 100:+.1f}… "
                       f"{(r.ci95_high - 1) * 100:+.1f}%, {r.pairs} pairs)"
                       + (f" and size by {(r.size_ratio - 1) * 100:+.0f}%"
                          if r.size_ratio == r.size_ratio else "") + ".")
        if len(non):
            out.append("Not significant (ci95 includes no change): " + ", ".join(
                f"`{r.axis}: {r.baseline_value or '∅'} → {r.value or '∅'}`"
                + ("" if r.cache == "all" else f" ({r.cache})")
                + f" ({(r.ratio - 1) * 100:+.1f}%)" for r in non.itertuples()) + ".")
    return out


def _calibration_rows(run_dir: Path) -> list[tuple[str, str]]:
    """From calibration.json, where `gostartbench calibrate --out RUN_DIR` left one."""
    p = run_dir / "calibration.json"
    if not p.exists():
        return []
    c = read_json(p)
    f = c["floor"]
    rows = [("floor (no-op)", f"{f['framework_p50_ms']:.3f} ms; C loop {f['c_loop_p50_ms']:.3f} ms "
                              f"(×{f['framework_over_c']:.3f})"
             + (f"; hyperfine {f['hyperfine_p50_ms']:.3f} ms (×{f['framework_over_hyperfine']:.3f})"
                if f.get("hyperfine_p50_ms") else ""))]
    rows.append(("accuracy", ", ".join(
        f"{r['injected_ms']:g}→{r['measured_delta_ms']:.3f} ms" for r in c["ladder"])
        + (" (all within max(40 µs, 5%))" if c.get("ladder_met") else " (NOT all within target)")))
    n = c["noise"]
    rows.append(("noise", f"cv {n['cv']:.3f}; P50 resolution ±{n['p50_ci95_halfwidth_rel']:.2%}"))
    return rows


GLANCE_HEAD = ["knob", "startup, warm", "startup, cold", "startup (all runs)", "size",
               "peak RSS"]


def glance_rows(eff: pd.DataFrame) -> list[list[str]]:
    """One row per knob (axis value against its baseline value): the effect on startup per
    cache state with its ci95 ("n.s." where not significant), on size and on RSS."""
    if eff.empty:
        return []
    t = "spawn" if "spawn" in set(eff["timer"]) else eff["timer"].iloc[0]
    e = eff[eff["timer"] == t]
    rows = []
    for (axis, base, val), g in e.groupby(["axis", "baseline_value", "value"], sort=False):
        cells = {}
        for r in g.itertuples():
            txt = (f"{(r.ratio - 1) * 100:+.1f}% [{(r.ci95_low - 1) * 100:+.1f}, "
                   f"{(r.ci95_high - 1) * 100:+.1f}]")
            cells[r.cache] = txt + ("" if r.significant else " n.s.")
        size = g["size_ratio"].dropna()
        rss = g["rss_ratio"].dropna()
        rows.append([
            f"{str(axis).replace('runenv.', 'run env ')}: {base or '∅'} → {val or '∅'}",
            cells.get("warm", ""), cells.get("cold", ""), cells.get("all", ""),
            f"{(np.exp(np.log(size).mean()) - 1) * 100:+.0f}%" if len(size) else "",
            f"{(np.exp(np.log(rss).mean()) - 1) * 100:+.0f}%" if len(rss) else "",
        ])
    return rows


def _env_rows(run: Mapping[str, Any]) -> list[tuple[str, str]]:
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


SUMMARY_SHOW = ["cell", "cache", "timer", "n", "p50_ms", "ci95", "ratio", "sig", "size_mb",
                "rss_mb", "warnings"]


def _summary_rows(s: pd.DataFrame) -> list[dict[str, str]]:
    rows = []
    for r in s.sort_values(["app", "timer", "p50_ms"]).to_dict("records"):
        rows.append({
            "cell": r["cell"], "cache": str(r.get("cache", "")), "timer": r["timer"],
            "n": str(int(r["n"])), "p50_ms": _fmt_ms(r["p50_ms"]),
            "ci95": f"[{_fmt_ms(r['ci95_low_ms'])}, {_fmt_ms(r['ci95_high_ms'])}]",
            "ratio": _ratio(r), "sig": "yes" if bool(r.get("significant")) else "",
            "size_mb": _mb(r.get("size_bytes")), "rss_mb": _mb(r.get("maxrss_p50_bytes")),
            "warnings": str(r.get("warnings") or ""),
        })
    return rows


def _md_escape(s: str) -> str:
    return html.escape(str(s), quote=False).replace("|", "\\|").replace("\n", " ")


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(_md_escape(x) for x in r) + " |" for r in rows]
    return "\n".join(out)


def render_md(a: Mapping[str, Any], charts: Sequence[tuple[str, Path, str]], run_dir: Path
              ) -> str:
    run = a["run"]
    parts = [f"# gostartbench report: {_md_escape(run.get('id', ''))}", ""]
    glance = glance_rows(a["effects"])
    if glance:
        parts += ["## At a glance", "", "Change in P50 against each axis's baseline value, "
                  "geometric mean over all cell pairs that differ only there, with ci95 "
                  "(n.s.: not significant).", "", _md_table(GLANCE_HEAD, glance), ""]
    parts += ["## Findings", ""] + [f"- {x}" for x in findings(a)] + [""]
    parts += ["## Environment", "", _md_table(["", ""], _env_rows(run)), ""]
    cal = _calibration_rows(run_dir)
    if cal:
        parts += ["## Calibration", "", _md_table(["", ""], cal), ""]
    warns = list(run.get("warnings", [])) + list(run.get("matrix", {}).get("warnings", []))
    if warns:
        parts += ["Warnings about this run:", ""] + [f"- {_md_escape(w)}" for w in warns] + [""]
    parts += ["## Matrix", "", "```yaml", (run_dir / "matrix.yaml").read_text()
              if (run_dir / "matrix.yaml").exists() else "", "```", ""]
    failed = a["cells"][a["cells"]["status"] != "ok"] if len(a["cells"]) else a["cells"]
    if len(failed):
        parts += ["## Cells not measured", "", _md_table(
            ["cell", "status", "reason"],
            [[r["cell"], r["status"], str(r["reason"])] for r in failed.to_dict("records")]), ""]
    if len(a["summary"]):
        rows = _summary_rows(a["summary"])
        parts += ["## Summary", "", "Times in ms; ratio to the app's baseline with its ci95; "
                  "size and RSS in MB.", "",
                  _md_table(SUMMARY_SHOW, [[r[k] for k in SUMMARY_SHOW] for r in rows]), ""]
    if len(a["effects"]):
        e = a["effects"]
        parts += ["## Effects", "", _md_table(
            ["axis", "from → to", "cache", "timer", "pairs", "P50 ratio [ci95]", "significant",
             "size ratio", "RSS ratio"],
            [[r.axis, f"{r.baseline_value or '∅'} → {r.value or '∅'}", r.cache, r.timer,
              str(r.pairs),
              f"{r.ratio:.3f} [{r.ci95_low:.3f}, {r.ci95_high:.3f}]",
              "yes" if r.significant else "no",
              f"{r.size_ratio:.3f}" if r.size_ratio == r.size_ratio else "",
              f"{r.rss_ratio:.3f}" if r.rss_ratio == r.rss_ratio else ""]
             for r in e.itertuples()]), ""]
    parts += ["## Charts", ""]
    for title, png, cap in charts:
        parts += [f"### {title}", "", f"![{title}]({png.relative_to(run_dir)})", "", cap, ""]
    parts += ["## How these numbers were made", "", stats.__doc__ or "", ""]
    return "\n".join(parts)


CSS = """body{font:14px/1.45 system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222}table{border-collapse:collapse;font-size:12px;margin:.5em 0}td,th{border:1px solid #ddd;
padding:2px 6px;text-align:left;vertical-align:top}th{background:#f4f4f4}
tr.sig td{background:#f3fbf7}
img{max-width:100%;border:1px solid #eee}code,pre{background:#f6f6f6;padding:1px 3px}
pre{padding:.6em;overflow:auto}.warn{color:#a04000}figcaption{color:#555;font-size:12px}"""


def _png_data(p: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(p.read_bytes()).decode()


def _html_inline(md: str) -> str:
    """Escape, then turn `code` and **bold** of our own findings into tags."""
    t = html.escape(md)
    t = re.sub(r"`([^`]+)`", r"<code>\1</code>", t)
    return re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", t)


def render_html(a: Mapping[str, Any], charts: Sequence[tuple[str, Path, str]],
                matrix_text: str = "", calibration: Sequence[tuple[str, str]] = ()) -> str:
    """Self-contained: charts embedded as data URIs, no external reference; every string from
    the matrix, the programs or the host escaped."""
    e = html.escape
    run = a["run"]
    h = ["<!doctype html><html><head><meta charset='utf-8'>",
         f"<title>gostartbench: {e(str(run.get('id', '')))}</title>",
         f"<style>{CSS}</style></head><body>",
         f"<h1>gostartbench report: {e(str(run.get('id', '')))}</h1>"]
    glance = glance_rows(a["effects"])
    if glance:
        h.append("<h2>At a glance</h2><p>Change in P50 against each axis's baseline value, "
                 "geometric mean over all cell pairs that differ only there, with ci95 "
                 "(n.s.: not significant).</p><table><tr>"
                 + "".join(f"<th>{e(c)}</th>" for c in GLANCE_HEAD) + "</tr>")
        h += ["<tr>" + "".join(f"<td>{e(x)}</td>" for x in r) + "</tr>" for r in glance]
        h.append("</table>")
    h.append("<h2>Findings</h2><ul>")
    h += [f"<li>{_html_inline(x)}</li>" for x in findings(a)]
    h.append("</ul>")
    warns = list(run.get("warnings", [])) + list(run.get("matrix", {}).get("warnings", []))
    if warns:
        h.append("<ul>" + "".join(f"<li class='warn'>{e(w)}</li>" for w in warns) + "</ul>")
    for title, png, cap in charts:
        h.append(f"<figure><h3>{e(title)}</h3><img alt='{e(title)}' src='{_png_data(png)}'>"
                 f"<figcaption>{e(cap)}</figcaption></figure>")
    h.append("<h2>Environment</h2><table>")
    h += [f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in _env_rows(run)]
    h.append("</table>")
    if calibration:
        h.append("<h2>Calibration</h2><table>")
        h += [f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in calibration]
        h.append("</table>")
    if len(a["summary"]):
        h.append("<h2>Summary</h2><p>Times in ms; ratio to the app's baseline with its ci95; "
                 "size and RSS in MB.</p><table><tr>")
        h += [f"<th>{e(c)}</th>" for c in SUMMARY_SHOW]
        h.append("</tr>")
        for r in _summary_rows(a["summary"]):
            cls = " class='sig'" if r["sig"] else ""
            h.append(f"<tr{cls}>" + "".join(f"<td>{e(r[c])}</td>" for c in SUMMARY_SHOW)
                     + "</tr>")
        h.append("</table>")
    failed = a["cells"][a["cells"]["status"] != "ok"] if len(a["cells"]) else a["cells"]
    if len(failed):
        h.append("<h2>Cells not measured</h2><table><tr><th>cell</th><th>status</th>"
                 "<th>reason</th></tr>")
        h += [f"<tr><td>{e(str(r['cell']))}</td><td>{e(str(r['status']))}</td>"
              f"<td>{e(str(r['reason']))}</td></tr>" for r in failed.to_dict("records")]
        h.append("</table>")
    h.append(f"<h2>Matrix</h2><pre>{e(matrix_text)}</pre>")
    h.append("<h2>How these numbers were made</h2>"
             f"<pre>{e(stats.__doc__ or '')}</pre></body></html>")
    return "\n".join(h)
