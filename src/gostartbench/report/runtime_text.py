"""The report's runtime table (the article's table, measured): for each app's baseline, every
part of a start in order — the phases before the runtime, then the runtime's own stages inside
bootstrap and package init, then main and teardown — with its boundary functions, median ms
and ci95 over the traced runs, and share of the traced start."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from gostartbench.analysis import Analysis
from gostartbench.results.schema import PHASE_ORDER, PHASE_START_MARK, STAGES, main_timer
from gostartbench.stats.significance import INSTRUMENTS

RUNTIME_HEAD = ["part of the start", "boundaries", "ms [ci95]", "share", "the article's stage"]
RUNTIME_TEXT = (
    "Each app's baseline (warm), from its traced runs: the phases outside the runtime, and "
    "inside bootstrap and package init the runtime's own stages, each bounded by the runtime "
    "functions named (breakpoints at their first instruction; the stops' cost subtracted). "
    "Median over the traced runs with a bootstrap ci95; share of the traced start (the sum of "
    "its phases). Stages come from traced runs of their own, with a stop at each of 13 marks: "
    "while the main thread is stopped the runtime's other threads run on, so a stage that "
    "waits for them (GC enable waits for its sweeper and scavenger) can read longer than in an "
    "untraced start, and a phase's stages can add up to more than the phase. Read them for "
    "where the time goes and how a knob or a Go version moves it; the phases for how long. A "
    "stage whose functions a binary lacks is not shown (run.json `phases` "
    "`stage_functions_missing` names them).")
# The phases without stages of their own: their boundaries and the article's words.
PHASE_ROWS = {
    "exec": ("fork → the exec is done", "the kernel loading the ELF"),
    "pre_entry": ("exec → the ELF entry", "dynamic loader: PIE relocations, cgo's libc; UPX's "
                  "unpacker"),
    "runtime_entry": ("the entry → runtime.schedinit", "rt0: arguments, TLS, first checks"),
    "main": ("main.main → exit (or ready)", "the program itself"),
    "teardown": ("exit → reaped", "exit: the kernel tearing the process down"),
}


@dataclass(frozen=True)
class RuntimeBlock:
    """One app's table."""

    app: str
    label: str
    rows: list[list[str]]


def runtime_blocks(a: Analysis) -> list[RuntimeBlock]:
    """Per app with stage rows: its baseline's table (see the module's doc)."""
    st, ph, s = a.stages, a.phases, a.summary
    if st is None or st.empty or ph.empty or s.empty:
        return []
    s = s[s["timer"] == main_timer(s["timer"].unique())]
    base = s[(s["cell"] == s["baseline"]) & s["cell"].isin(set(st["cell"]))]
    if "cache" in base:
        base = base[base["cache"] == "warm"]
    out = []
    for app, g in base.groupby("app", sort=True):
        cell = str(g["cell"].iloc[0])
        out.append(RuntimeBlock(str(app), str(g["label"].iloc[0]), _rows(cell, ph, st)))
    return out


def _rows(cell: str, ph: pd.DataFrame, st: pd.DataFrame) -> list[list[str]]:
    phases = ph[ph["cell"] == cell].set_index("phase")
    stages = st[st["cell"] == cell].set_index("stage")
    total = float(phases["p50_ms"].sum())
    by_name = {x.name: x for x in STAGES}

    def row(name: str, bounds: str, article: str, r: pd.Series) -> list[str]:
        share = f"{r['p50_ms'] / total:.1%}" if total > 0 else ""
        return [name, bounds, f"{r['p50_ms']:.3f} [{r['ci95_low_ms']:.3f}, "
                f"{r['ci95_high_ms']:.3f}]", share, article]

    rows = []
    for phase in PHASE_ORDER:
        if phase not in phases.index:
            continue
        inner = [x.name for x in STAGES if x.phase == phase and x.name in stages.index]
        if phase in PHASE_ROWS or not inner:
            bounds, article = PHASE_ROWS.get(phase, ("", ""))
            rows.append(row(phase.replace("_", " "), bounds, article, phases.loc[phase]))
        else:
            rows.append(row(f"{phase.replace('_', ' ')} (all)", "", "",
                            phases.loc[phase]))
        for name in inner:
            x = by_name[str(name)]
            rows.append(row(f"  └ {x.name.replace('_', ' ')}", x.bounds, x.article,
                            stages.loc[name]))
    return rows


INSTRUMENTS_HEAD = ["cell", "phase / stage", "ptrace tracer ms [ci95]", "uprobes ms [ci95]",
                    "difference", "agree"]


BELIEF_RULE = (
    "Where they disagree, the report believes the instrument whose error at the phase's start "
    "mark is smaller, by each mark's own cost measured on this host (run.json "
    "phases.stop_cost.by_mark and second_instrument.probe_cost): the tracer's error there is "
    "how far that mark's own stop cost is from the one average it subtracts, the uprobes' is "
    "the uprobe's whole own cost (nothing is subtracted).")


def believed(run: Mapping[str, Any], phase: str) -> str:
    """'; believed: uprobes (their error ≤ 17 µs, the tracer's 34 µs)' for a disagreeing phase,
    '' where the run did not measure the marks' own costs."""
    ph = (run.get("phases") or {})
    stop = ph.get("stop_cost") or {}
    by_mark = (stop.get("by_mark") or {}).get("stop_ns_by_mark") or {}
    probes = ((ph.get("second_instrument") or {}).get("probe_cost") or {}) \
        .get("probe_ns_by_mark") or {}
    mark = PHASE_START_MARK.get(phase, "")
    if mark not in by_mark:
        return ""
    e_trace = abs(float(by_mark[mark]) - float(stop.get("stop_ns", 0.0)))
    e_probe = float(probes.get(mark, 0.0))  # exec: a tracepoint, no trap in the program
    who = "uprobes" if e_probe <= e_trace else "the tracer"
    return (f"; believed: {who} (error ≤ {min(e_probe, e_trace) / 1000:.0f} µs, the other's "
            f"{max(e_probe, e_trace) / 1000:.0f} µs)")


def instruments_text(a: Analysis) -> tuple[str, list[list[str]]]:
    """The two instruments side by side: a sentence (how many agree, which do not) and one row
    per cell × phase/stage timed by both. Never averaged: where they disagree it says so."""
    t = a.instruments
    if t is None or t.empty:
        second = ((a.run.get("phases") or {}).get("second_instrument") or {})
        why = second.get("skipped")
        return (f"The second instrument (eBPF uprobes) did not run: {why}." if why else ""), []
    labels = dict(zip(a.summary["cell"], a.summary["label"], strict=False)) \
        if len(a.summary) else {}
    ph = t[t["stage"] == ""]
    bad = ph[~ph["agree"].astype(bool)]
    head = (f"Every phase timed by both instruments — the ptrace tracer (stops, their cost "
            f"subtracted) and eBPF uprobes (in the kernel, no stop): {int(ph['agree'].sum())} "
            f"of {len(ph)} agree within {INSTRUMENTS.text()}; stages below are for reading "
            "(their marks are "
            "µs apart, where a stop's cost is the tracer's error). Each instrument's own "
            "median and ci95; never averaged.")
    if len(bad):
        head += " They DISAGREE on: " + "; ".join(
            f"{labels.get(r.cell, r.cell)} {str(r.phase).replace('_', ' ')} "
            f"({r.diff_ms:+.3f} ms{believed(a.run, str(r.phase))})"
            for r in bad.itertuples()) + "."
        head += " " + BELIEF_RULE
    rows = []
    for r in t.sort_values(["cell", "stage"]).itertuples():
        what = str(r.phase).replace("_", " ") + (f" / {r.stage.replace('_', ' ')}"
                                                 if r.stage else "")
        rows.append([labels.get(r.cell, str(r.cell)), what,
                     f"{r.ptrace_ms:.3f} [{r.ptrace_ci95_low_ms:.3f}, "
                     f"{r.ptrace_ci95_high_ms:.3f}]",
                     f"{r.uprobe_ms:.3f} [{r.uprobe_ci95_low_ms:.3f}, "
                     f"{r.uprobe_ci95_high_ms:.3f}]", f"{r.diff_ms:+.3f}",
                     ("yes" if r.agree else "NO") if not r.stage else ""])
    return head, rows
