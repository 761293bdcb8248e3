"""`gostartbench gate`: one run, two trees. Base and head are a build axis, `rev`, timed in the
same shuffled rounds, so a machine that drifts moves both and the ratio cancels it. Every head
cell is judged against its base cell (the run's baseline: rev=base, every other axis the cell's
own), with the run's own joint-block interval and significance (summary.csv), and the `rev`
effect pooled and per app (effects.csv); intervals widened family-wise. The rules, findings,
verdict and markdown are report/gate.py's, shared with `compare --fail-on`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from gostartbench.analysis import Analysis
from gostartbench.analysis.deps import ALL_MODULES, STD, attributed, dependency_moves
from gostartbench.analysis.effects import startup_rows
from gostartbench.analysis.summary import timed_by_cell
from gostartbench.errors import EXIT_FAILED, InputError
from gostartbench.report.budgets import budget_findings
from gostartbench.report.carryover_text import carryover_line
from gostartbench.report.gate import gate_markdown, md_cell
from gostartbench.report.rules import (
    SHORT_RUN,
    Finding,
    Rule,
    exit_code,
    parse_rule,
    short_run_why,
    unjudged_why,
)
from gostartbench.results import main_timer
from gostartbench.stats import intervals
from gostartbench.stats.significance import FAMILY_ALPHA, significant

HEAD, BASE = "head", "base"


# The one-run gate judges many comparisons at once (every head cell, every app's `rev` effect,
# pooled): a per-comparison 95% interval would cry wolf in some gate out of a few by chance
# alone. Its intervals are widened to a family-wise level instead (stats.intervals.widen_family
# at stats.significance.FAMILY_ALPHA).


def family_wise(findings: list[Finding], alpha: float = FAMILY_ALPHA) -> list[Finding]:
    """The same findings with each interval widened from 95% to 1 − alpha/k for the k
    comparisons of its rule (sizes are exact: left as they are); significant and failed
    judged again on the wider interval (and min_effect, as before)."""
    by_rule: dict[str, int] = {}
    for f in findings:
        by_rule[f.rule] = by_rule.get(f.rule, 0) + 1
    out = []
    for f in findings:
        if f.unit == "bytes" and f.low == f.high:  # exact
            out.append(f)
            continue
        iv = intervals.widen_family(intervals.Interval(f.ratio, f.low, f.high), by_rule[f.rule],
                                    alpha)
        lo, hi = iv.low, iv.high
        sig = f.significant and (lo > 1 or hi < 1)
        rule = parse_rule(f.rule)
        short = f.unjudged if f.unjudged.startswith(SHORT_RUN) else ""
        out.append(replace(f, low=lo, high=hi, significant=sig,
                           failed=sig and rule.beyond(f.ratio),
                           unjudged=unjudged_why(rule, f.ratio, lo, hi, sig, short)))
    return out


@dataclass(frozen=True)
class OneRun:
    """The gate's reading of one interleaved run: what was judged, and the cells it could not
    judge (head cells that failed, head cells without a base cell, cells short of precision)."""

    findings: list[Finding]
    head_failed: list[tuple[str, str]]  # (head cell label, reason): fails the gate
    base_failed: list[tuple[str, str]]  # (base cell label, reason): reported only
    new: list[str]  # head cells whose app the base tree lacks
    short: list[str]  # head cells stopped short of the precision target (named, never failed)
    # which dependency moved: analysis.deps.dependency_moves over rev (empty without inittrace)
    deps: pd.DataFrame = field(default_factory=pd.DataFrame)
    # the order effect on this host (report/carryover_text.carryover_line) and whether it is
    # large beside the startup rule: then shown, else folded
    order: tuple[str, bool] = ("", False)
    # each head cell's ratio ci95 half-width reached (what the gate judges; the base cells are
    # held to their own P50's interval, for budgets and `compare`)
    head_widths: tuple[float, ...] = ()


def one_run(a: Analysis, rules: Sequence[Rule], seed: int = 0) -> OneRun:
    """Every gated comparison of head against base within one run with the `rev` axis
    (replicates: the run's measure.bootstrap)."""
    b = a.data.settings.bootstrap
    from gostartbench.analysis.labels import cell_label

    if "rev" not in a.cells:
        raise InputError(f"{a.data.run_dir} has no `rev` axis: not a `gostartbench gate` run",
                         key="RUN_DIR")
    cells = a.cells.set_index("cell")
    axes = [x for x in a.axes if x != "rev"]

    def label(cell: str) -> str:
        text = cell_label(cells.loc[cell].to_dict(), axes, {})
        return text.replace(" · baseline", "")  # no other axis varies: the app is the cell

    head_failed, base_failed, new = [], [], []
    for cell, r in cells.iterrows():
        if r["status"] == "ok":
            continue
        if r["rev"] == HEAD:
            head_failed.append((label(str(cell)), str(r["reason"])))
        elif "does not exist in this tree" in str(r["reason"]):
            new.append(label(str(cell)))
        else:
            base_failed.append((label(str(cell)), str(r["reason"])))
    stopping = (a.run.get("stopping") or {}).get("cells") or {}
    heads_stopped = {c: rec for c, rec in stopping.items()
                     if c in cells.index and str(cells.loc[c, "rev"]) == HEAD}
    short = sorted({label(c) for c, rec in heads_stopped.items()
                    if rec.get("stopped") in ("max_runs", "budget")})
    widths = tuple(sorted(float(rec["half_width"]) for rec in heads_stopped.values()
                          if rec.get("half_width") is not None))
    s = a.summary
    if s.empty:
        return OneRun([], head_failed, base_failed, new, short, head_widths=widths)
    too_short = short_run_why(a.samples)
    timer = main_timer(s["timer"].unique())
    s = s[(s["timer"] == timer) & (s["rev"].astype(str) == HEAD)
          & (s["baseline"] != s["cell"])].copy()
    s = s[s["baseline"].isin(set(a.summary["cell"]))]
    by_cell = a.summary[a.summary["timer"] == timer].set_index("cell")
    rss = timed_by_cell(a.samples, rss=True)
    rng = np.random.default_rng(seed)
    out: list[Finding] = []
    for rule in [r for r in rules if r.budget is None]:
        for r in s.to_dict("records"):
            what = label(str(r["cell"]))
            base_row = by_cell.loc[r["baseline"]]
            if rule.metric == "startup":
                sig = bool(r["significant"])
                q, lo, hi = (float(r[k]) for k in ("ratio", "ratio_ci95_low", "ratio_ci95_high"))
                out.append(Finding(rule.text, "cell", what, float(base_row["p50_ms"]),
                                   float(r["p50_ms"]), "ms", q, lo, hi, sig,
                                   sig and rule.beyond(q),
                                   unjudged_why(rule, q, lo, hi, sig, too_short)))
            elif rule.metric == "size":
                vb, vn = base_row.get("size_bytes"), r.get("size_bytes")
                if vb and vn and vb == vb and vn == vn:
                    q = float(vn) / float(vb)
                    out.append(Finding(rule.text, "cell", what, float(vb), float(vn), "bytes",
                                       q, q, q, q != 1, q != 1 and rule.beyond(q)))
            else:
                xn, xb = rss.get((str(r["cell"]), "spawn")), rss.get((str(r["baseline"]), "spawn"))
                if xn is None or xb is None or len(xn[2]) < 2 or len(xb[2]) < 2:
                    continue
                iv = intervals.ratio_interval(xn[2], xn[0], xb[2], xb[0], b, rng)
                q = iv.estimate
                sig = bool(significant(q, iv.low, iv.high, a.min_effect)) and not too_short
                out.append(Finding(rule.text, "cell", what, float(np.median(xb[2])),
                                   float(np.median(xn[2])), "bytes", q, iv.low, iv.high, sig,
                                   sig and rule.beyond(q),
                                   unjudged_why(rule, q, iv.low, iv.high, sig, too_short)))
        if rule.metric == "startup":
            out += _rev_effects(a, rule, too_short)
    heads = [str(c) for c in by_cell.index if str(cells.loc[c, "rev"]) == HEAD] \
        if len(by_cell) else []
    budgets = budget_findings(a, rules, heads, label, too_short, b=b, seed=seed)
    startup = [r.threshold for r in rules if r.metric == "startup" and r.budget is None]
    return OneRun(family_wise(out) + budgets, head_failed, base_failed, new, short,
                  _moves(a, b, seed),
                  carryover_line(a, min(startup, key=abs) if startup else None,
                                 lambda c: f"{label(c)} ({cells.loc[c, 'rev']})"),
                  widths)


def _moves(a: Analysis, b: int, seed: int) -> pd.DataFrame:
    """Which dependency moved between base and head (inittrace runs and deps.csv)."""
    if a.data.inittrace.empty:
        return pd.DataFrame()
    att = attributed(a.data.inittrace, a.cells, a.data.deps)
    return dependency_moves(att, a.cells, a.data.deps, a.axes, "rev", BASE, HEAD, b=b,
                            seed=seed)


def _rev_effects(a: Analysis, rule: Rule, too_short: str = "") -> list[Finding]:
    """The `rev` effect (head against base over every pair of cells), pooled and per app."""
    e = startup_rows(a.effects)
    if e.empty:
        return []
    e = e[(e["axis"] == "rev") & (e["value"].astype(str) == HEAD)]
    out = []
    for r in e.to_dict("records"):
        sig = bool(r["significant"])
        what = ("every cell" if r["app"] == "all" else f"every {r['app']} cell") + \
            (f" ({r['cache']})" if r["cache"] != "all" else "")
        q, lo, hi = float(r["ratio"]), float(r["ci95_low"]), float(r["ci95_high"])
        out.append(Finding(rule.text, "effect", what, 1.0, q, "× base", q, lo, hi, sig,
                           sig and rule.beyond(q), unjudged_why(rule, q, lo, hi, sig, too_short)))
    return out


def one_run_exit(res: OneRun) -> int:
    """EXIT_FAILED for a resolved slowdown beyond a rule or a head that does not build or run;
    else EXIT_INCONCLUSIVE when a comparison could not be judged (or none could be made); else
    EXIT_OK."""
    return EXIT_FAILED if res.head_failed else exit_code(res.findings)


def dependency_lines(moves: pd.DataFrame, top: int = 10) -> list[str]:
    """Which dependency moved: per app with a version change or a resolved change in package
    init, a lead sentence (the whole package init's change and the versions that changed) and
    a table of the modules that moved, costliest first (versions that changed always shown)."""
    if moves is None or moves.empty:
        return []
    out: list[str] = []
    for app, g in moves.groupby("app", sort=True):
        total = g[g["module"] == ALL_MODULES]
        mods = g[g["module"] != ALL_MODULES]
        resolved = (mods["delta_ci95_low_ms"] > 0) | (mods["delta_ci95_high_ms"] < 0)
        changed = mods["change"] != "same"
        show = mods[changed | resolved].head(top)
        if show.empty and (total.empty or not _resolved(total.iloc[0])):
            continue
        versions = [f"{m} {_v(o)} → {_v(n)}" for m, o, n in
                    zip(mods[changed]["module"], mods[changed]["base_version"],
                        mods[changed]["head_version"], strict=True)]
        lead = f"**{md_cell(str(app))}**: package init "
        lead += _delta(total.iloc[0]) if len(total) else "not measured"
        lead += (": " + "; ".join(md_cell(v) for v in versions[:5])) if versions else \
            " (no module changed version)"
        out += ["", lead]
        if len(show):
            out += ["", "| module | base → head | package init change [ci95] |", "|---|---|---|"]
            out += [f"| {md_cell(str(r['module']))}{' (direct)' if r['direct'] else ''} | "
                    f"{_versions(r)} | {_delta(r)} |" for r in show.to_dict("records")]
    if out:
        out = ["", "### Which dependency moved", "",
               "Package init by `GODEBUG=inittrace=1` (head − base, mean over cell pairs, "
               "ci95 over the inittrace runs; versions from each binary's `go list -deps`).",
               *out]
    return out


def _versions(r: Mapping[str, Any]) -> str:
    """'v1.9.1 → v1.10.2', '— → v0.3.0' (added); the standard library and the app's own module
    have no version: '(the Go release)', '(this module)'."""
    if _v(r["base_version"]) == _v(r["head_version"]) == "—":
        return "(the Go release)" if r["module"] == STD else \
            "(this module)" if r.get("own") else "(unversioned)"
    return f"{_v(r['base_version'])} → {_v(r['head_version'])}"


def _v(version: Any) -> str:
    return str(version) if version == version and str(version) else "—"


def _resolved(r: Mapping[str, Any]) -> bool:
    return bool(r["delta_ci95_low_ms"] > 0 or r["delta_ci95_high_ms"] < 0)


def _delta(r: Mapping[str, Any]) -> str:
    return (f"{r['delta_ms']:+.3f} ms [{r['delta_ci95_low_ms']:+.3f}, "
            f"{r['delta_ci95_high_ms']:+.3f}]" + ("" if _resolved(r) else " n.s."))


def one_run_markdown(res: OneRun, rules: Sequence[Rule], min_effect: float,
                     run: Mapping[str, Any]) -> str:
    """The gate's comment (and job summary): the verdict line, what failed and what could not
    be judged, which dependency moved; then, folded, everything else and how the run was
    made."""
    shown: list[str] = []
    if res.head_failed:
        shown += ["", "| head cell | why |", "|---|---|"]
        shown += [f"| {md_cell(w)} | {md_cell(r)} |" for w, r in res.head_failed]
    if res.new:
        shown += ["", f"New in head (no base to compare with): {', '.join(res.new)}."]
    if res.base_failed:
        shown += ["", "Base cells that did not build or run (their head cells are not judged):",
                  ""]
        shown += [f"- {md_cell(w)}: {md_cell(r)}" for w, r in res.base_failed]
    shown += dependency_lines(res.deps)
    order, large = res.order
    if order and large:
        shown += ["", order]
    folded: list[str] = []
    stop = run.get("stopping") or {}
    prec = stop.get("precision")
    widths = res.head_widths
    if widths:
        folded += [f"Precision reached (each head cell's ratio ci95, 95% per cell): median "
                   f"±{widths[len(widths) // 2]:.1%}, widest ±{widths[-1]:.1%}"
                   + (f" (target ±{prec:.1%})" if prec else "") + ".", ""]
    if res.short:
        folded += [f"Short of the precision target (±{prec:.1%}; named, never failed on a "
                   f"change their interval cannot resolve): {', '.join(res.short)}." if prec
                   else f"Stopped short: {', '.join(res.short)}.", ""]
    if stop.get("caps_gave_way"):
        folded += [f"max_runs and the budget gave way: a verdict needs ≥ "
                   f"{stop.get('verdict_span_s', intervals.FULL_SPAN_S):g} s of timing (the "
                   "significance rule's shortest run).", ""]
    t = (run.get("phases_s") or {}).get("timing")
    if order and not large:
        folded += [order, ""]
    folded += ["Base and head were built from their own trees and timed in the same rounds of "
               "one run" + (f" ({t:.0f} s of timing)" if t else "")
               + ", every cell in every round, in a serially balanced order (each cell follows "
               "each cell, itself included, equally often): a machine that drifts moves both, a "
               "start's carry-over to the next falls on both alike, and the ratio cancels them. "
               "Intervals are "
               f"family-wise: all of a rule's comparisons together at {1 - FAMILY_ALPHA:.0%} "
               "(Bonferroni).", ""]
    body = gate_markdown(res.findings, rules, min_effect, None, extra=shown, folded=folded)
    if res.head_failed:
        _, _, rest = body.partition("\n")
        body = (f"## ❌ Startup gate failed: the head does not build or run "
                f"({len(res.head_failed)} cell(s))") + "\n" + rest
    return body
