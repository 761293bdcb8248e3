"""report.md and a self-contained report.html (charts embedded, every string escaped)."""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gostartbench.analysis import Analysis
from gostartbench.analysis import summary as summary_mod
from gostartbench.analysis.effects import startup_rows
from gostartbench.report import containers_text
from gostartbench.report.carryover_text import CARRYOVER_HEAD, CARRYOVER_TEXT, carryover_rows
from gostartbench.report.deps_text import DEPS_TEXT, MODULE_HEAD, dependency_blocks
from gostartbench.report.profile_text import PROFILE_HEAD, PROFILE_TEXT, profile_blocks
from gostartbench.report.runtime_text import (
    INSTRUMENTS_HEAD,
    RUNTIME_HEAD,
    RUNTIME_TEXT,
    instruments_text,
    runtime_blocks,
)
from gostartbench.report.text import (
    GLANCE_HEAD,
    PHASE_HEAD,
    SHORT_NOTE,
    SUMMARY_SHOW,
    any_short,
    calibration_rows,
    env_rows,
    findings,
    glance_rows,
    phase_rows,
    summary_rows,
)


def _md_escape(s: str) -> str:
    return html.escape(str(s), quote=False).replace("|", "\\|").replace("\n", " ")


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(_md_escape(x) for x in r) + " |" for r in rows]
    return "\n".join(out)


PHASES_TEXT = ("Median of each phase over separate traced runs (ms; timed runs are never "
               "traced), the cost of the tracer's stops subtracted: exec (fork+exec), pre-entry "
               "(dynamic loader or UPX unpacker), runtime entry (rt0 → schedinit), bootstrap "
               "(schedinit → runtime.main), package init (→ main.main), main (→ exit, or → "
               "ready), teardown (exit → reaped).")


def verdict_line(run: Mapping[str, Any]) -> str:
    """The run's verdict in one line where it is not plainly complete ('' when it is)."""
    status = str(run.get("status", ""))
    cells = run.get("cells") or {}
    if status == "complete":
        return ""
    if status == "cells_failed":
        return (f"Status: cells_failed — {cells.get('failed', '?')} of {cells.get('total', '?')} "
                "cells failed (see “Cells not measured”); the others are measured.")
    if status == "failed":
        return f"Status: failed — the harness failed: {run.get('failure') or 'see run.json'}."
    return f"Status: {status} — this run did not finish; figures cover what was measured."


def render_md(a: Analysis, charts: Sequence[tuple[str, Path, str]], run_dir: Path) -> str:
    """report.md: at a glance, findings, environment, calibration, matrix, tables, charts."""
    run = a.run
    parts = [f"# gostartbench report: {_md_escape(run.get('id', ''))}", ""]
    verdict = verdict_line(run)
    if verdict:
        parts += [f"**{_md_escape(verdict)}**", ""]
    glance = glance_rows(a.effects, a.phase_effects, a.function_effects)
    if glance:
        parts += ["## At a glance", "", "Change in P50 against each axis's baseline value, "
                  "geometric mean over all cell pairs that differ only there, with ci95 "
                  "(n.s.: not significant).", "", _md_table(GLANCE_HEAD, glance), ""]
        if any_short(a.effects):
            parts += [_md_escape(SHORT_NOTE), ""]
    parts += ["## Findings", ""] + [f"- {x}" for x in findings(a)] + [""]
    parts += ["## Environment", "", _md_table(["", ""], env_rows(run)), ""]
    cal = calibration_rows(a.data.calibration)
    if cal:
        parts += ["## Calibration", "", _md_table(["", ""], cal), ""]
    warns = list(run.get("warnings", [])) + list(run.get("matrix", {}).get("warnings", []))
    if warns:
        parts += ["Warnings about this run:", ""] + [f"- {_md_escape(w)}" for w in warns] + [""]
    parts += ["## Matrix", "", "```yaml", a.data.matrix_text, "```", ""]
    failed = a.cells[a.cells["status"] != "ok"] if len(a.cells) else a.cells
    if len(failed):
        parts += ["## Cells not measured", "", _md_table(
            ["cell", "status", "reason"],
            [[r["cell"], r["status"], str(r["reason"])] for r in failed.to_dict("records")]), ""]
    if len(a.summary):
        rows = summary_rows(a.summary)
        parts += ["## Summary", "", "Times in ms; ratio to the app's baseline with its ci95; "
                  "size and RSS in MB.", "",
                  _md_table(SUMMARY_SHOW, [[r[k] for k in SUMMARY_SHOW] for r in rows]), ""]
        if any_short(a.summary):
            parts += [_md_escape(SHORT_NOTE), ""]
    phases = phase_rows(a)
    if phases:
        parts += ["## Where the start goes", "", PHASES_TEXT, "",
                  _md_table(PHASE_HEAD, phases), ""]
    rt = runtime_blocks(a)
    if rt:
        parts += ["## The runtime's own stages", "", RUNTIME_TEXT, ""]
        for rb in rt:
            parts += [f"### {_md_escape(rb.label)}", "", _md_table(RUNTIME_HEAD, rb.rows), ""]
    two, two_rows = instruments_text(a)
    if two:
        parts += ["## Two instruments", "", _md_escape(two), ""]
        if two_rows:
            parts += [_md_table(INSTRUMENTS_HEAD, two_rows), ""]
    for i, (label, cmd, prows) in enumerate(profile_blocks(a)):
        if i == 0:
            parts += ["## Where the CPU time goes, by function", "", _md_escape(PROFILE_TEXT), ""]
        parts += [f"### {_md_escape(label)}", "", f"`{cmd}`", "", _md_table(PROFILE_HEAD, prows),
                  ""]
    order = carryover_rows(a)
    if order:
        parts += ["## Order effects (carry-over)", "", _md_escape(CARRYOVER_TEXT), "",
                  _md_table(CARRYOVER_HEAD, order), ""]
    blocks = dependency_blocks(a)
    if blocks:
        parts += ["## Which dependency costs the start", "", DEPS_TEXT, ""]
        for blk in blocks:
            parts += [f"### {_md_escape(blk.app)} ({_md_escape(blk.cell_label)})", "",
                      _md_table(MODULE_HEAD, blk.module_rows), "", _md_escape(blk.agreement),
                      ""]
            if blk.knob_rows:
                parts += ["How the knobs move them (ms; · = ci95 holds 0):", "",
                          _md_table(blk.knob_head, blk.knob_rows), ""]
    where = containers_text.section(a)
    if where:
        parts += ["## Where it runs", ""] + [f"{_md_escape(x)}\n" for x in where.lines]
        for title, head, table in where.tables:
            parts += [f"### {_md_escape(title)}", "", _md_table(head, table), ""]
    e = startup_rows(a.effects)
    if len(e):
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
    parts += ["## How these numbers were made", "", summary_mod.__doc__ or "", ""]
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


def _table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """An HTML table, every cell escaped."""
    e = html.escape
    return ("<table><tr>" + "".join(f"<th>{e(c)}</th>" for c in head) + "</tr>"
            + "".join("<tr>" + "".join(f"<td>{e(str(x))}</td>" for x in r) + "</tr>"
                      for r in rows) + "</table>")


def _kv(rows: Sequence[tuple[str, str]]) -> str:
    e = html.escape
    return ("<table>" + "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in rows)
            + "</table>")


def render_html(a: Analysis, charts: Sequence[tuple[str, Path, str]]) -> str:
    """Self-contained: charts embedded as data URIs, no external reference; every string from
    the matrix, the programs or the host escaped."""
    e = html.escape
    run = a.run
    rid = e(str(run.get("id", "")))
    h = ["<!doctype html><html><head><meta charset='utf-8'>", f"<title>gostartbench: {rid}</title>",
         f"<style>{CSS}</style></head><body>", f"<h1>gostartbench report: {rid}</h1>"]
    verdict = verdict_line(run)
    if verdict:
        h.append(f"<p class='warn'><b>{e(verdict)}</b></p>")
    glance = glance_rows(a.effects, a.phase_effects, a.function_effects)
    if glance:
        h.append("<h2>At a glance</h2><p>Change in P50 against each axis's baseline value, "
                 "geometric mean over all cell pairs that differ only there, with ci95 "
                 "(n.s.: not significant).</p>" + _table(GLANCE_HEAD, glance)
                 + (f"<p>{html.escape(SHORT_NOTE)}</p>" if any_short(a.effects) else ""))
    h.append("<h2>Findings</h2><ul>" + "".join(f"<li>{_html_inline(x)}</li>" for x in findings(a))
             + "</ul>")
    warns = list(run.get("warnings", [])) + list(run.get("matrix", {}).get("warnings", []))
    if warns:
        h.append("<ul>" + "".join(f"<li class='warn'>{e(w)}</li>" for w in warns) + "</ul>")
    h += [f"<figure><h3>{e(t)}</h3><img alt='{e(t)}' src='{_png_data(png)}'>"
          f"<figcaption>{e(cap)}</figcaption></figure>" for t, png, cap in charts]
    h.append("<h2>Environment</h2>" + _kv(env_rows(run)))
    calibration = calibration_rows(a.data.calibration)
    if calibration:
        h.append("<h2>Calibration</h2>" + _kv(calibration))
    phases = phase_rows(a)
    if phases:
        h.append(f"<h2>Where the start goes</h2><p>{e(PHASES_TEXT)}</p>"
                 + _table(PHASE_HEAD, phases))
    rt = runtime_blocks(a)
    if rt:
        h.append(f"<h2>The runtime's own stages</h2><p>{e(RUNTIME_TEXT)}</p>")
        h += [f"<h3>{e(rb.label)}</h3>" + _table(RUNTIME_HEAD, rb.rows) for rb in rt]
    two, two_rows = instruments_text(a)
    if two:
        h.append(f"<h2>Two instruments</h2><p>{e(two)}</p>"
                 + (_table(INSTRUMENTS_HEAD, two_rows) if two_rows else ""))
    for i, (label, cmd, prows) in enumerate(profile_blocks(a)):
        if i == 0:
            h.append(f"<h2>Where the CPU time goes, by function</h2><p>{e(PROFILE_TEXT)}</p>")
        h.append(f"<h3>{e(label)}</h3><p><code>{e(cmd)}</code></p>" + _table(PROFILE_HEAD, prows))
    order = carryover_rows(a)
    if order:
        h.append(f"<h2>Order effects (carry-over)</h2><p>{e(CARRYOVER_TEXT)}</p>"
                 + _table(CARRYOVER_HEAD, order))
    where = containers_text.section(a)
    if where:
        h.append("<h2>Where it runs</h2>" + "".join(f"<p>{e(x)}</p>" for x in where.lines))
        h += [f"<h3>{e(title)}</h3>" + _table(head, rows) for title, head, rows in where.tables]
    blocks = dependency_blocks(a)
    if blocks:
        h.append(f"<h2>Which dependency costs the start</h2><p>{e(DEPS_TEXT)}</p>")
        for blk in blocks:
            h.append(f"<h3>{e(blk.app)} ({e(blk.cell_label)})</h3>"
                     + _table(MODULE_HEAD, blk.module_rows) + f"<p>{e(blk.agreement)}</p>")
            if blk.knob_rows:
                h.append("<p>How the knobs move them (ms; · = ci95 holds 0):</p>"
                         + _table(blk.knob_head, blk.knob_rows))
    h += _summary_html(a)
    failed = a.cells[a.cells["status"] != "ok"] if len(a.cells) else a.cells
    if len(failed):
        h.append("<h2>Cells not measured</h2>" + _table(
            ["cell", "status", "reason"],
            [[r["cell"], r["status"], r["reason"]] for r in failed.to_dict("records")]))
    h.append(f"<h2>Matrix</h2><pre>{e(a.data.matrix_text)}</pre>")
    h.append("<h2>How these numbers were made</h2>"
             f"<pre>{e(summary_mod.__doc__ or '')}</pre></body></html>")
    return "\n".join(h)


def _summary_html(a: Analysis) -> list[str]:
    """The summary table, significant rows shaded."""
    if not len(a.summary):
        return []
    e = html.escape
    h = ["<h2>Summary</h2><p>Times in ms; ratio to the app's baseline with its ci95; size and "
         "RSS in MB.</p><table><tr>" + "".join(f"<th>{e(c)}</th>" for c in SUMMARY_SHOW)
         + "</tr>"]
    for r in summary_rows(a.summary):
        cls = " class='sig'" if r["sig"] else ""
        h.append(f"<tr{cls}>" + "".join(f"<td>{e(r[c])}</td>" for c in SUMMARY_SHOW) + "</tr>")
    h.append("</table>")
    if any_short(a.summary):
        h.append(f"<p>{e(SHORT_NOTE)}</p>")
    return h
