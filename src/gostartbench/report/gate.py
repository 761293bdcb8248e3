"""`gostartbench compare BASE NEW --fail-on 'startup>+3%'`: a regression gate for CI, and the
gate's markdown (shared with `gostartbench gate`, report/gate_one_run.py).

The gate fails (exit 1) when a change is both *significant* (stats/significance.py: its
ci95 excludes 1, it is at least the run's min_effect and, where a test applies, its
Holm-adjusted p < 0.05) and *beyond the threshold* (its point estimate); otherwise it passes
(exit 0). Checked, for every rule:

- every cell the two runs share (matched by id): `startup` is the P50 wall time (main timer),
  `rss` the median peak RSS (spawn timer), `size` the file size (exact: any change beyond the
  threshold counts, there is no noise in a byte count);
- every axis effect both runs have (effects.csv startup rows, app `all` and per app): the
  change of the knob's cost, NEW's effect ratio / BASE's. (`size` and `rss` effects follow the
  cells' and are not gated twice.)

Two runs are two stretches of time: a machine slower as a whole during NEW moves every cell.
`--reference CELL` measures every startup change relative to a cell both runs share and the
change cannot touch (a program that did not change): each run's P50 is divided by that cell's,
with the ratio's interval taken within the run (same blocks of time), which cancels a uniform
slowdown of the machine. Axis effects are ratios within a run already.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from gostartbench.analysis import Analysis
from gostartbench.analysis.effects import startup_rows
from gostartbench.analysis.summary import timed_by_cell
from gostartbench.errors import InputError
from gostartbench.report.budgets import budget_findings
from gostartbench.report.rules import Finding, Rule, short_run_why, unjudged_why
from gostartbench.results import main_timer
from gostartbench.stats import intervals
from gostartbench.stats.significance import holm, mann_whitney_p, rule_text, significant


def gate(base: Analysis, new: Analysis, rules: Sequence[Rule], reference: str | None = None,
         seed: int = 0) -> list[Finding]:
    """Every gated comparison of NEW against BASE under the rules (replicates: BASE's
    measure.bootstrap, as compare's)."""
    b = base.data.settings.bootstrap
    timer = main_timer(base.summary["timer"].unique())
    sb = base.summary[base.summary["timer"] == timer].set_index("cell")
    sn = new.summary[new.summary["timer"] == timer].set_index("cell")
    cells = sorted(set(sb.index) & set(sn.index))
    wb, wn = timed_by_cell(base.samples, rss=True), timed_by_cell(new.samples, rss=True)
    if reference is not None and reference not in cells:
        raise InputError(f"--reference {reference}: not a cell measured in both runs",
                         key="--reference")
    new_short = short_run_why(new.samples, "NEW")
    too_short = "; ".join(w for w in (short_run_why(base.samples, "BASE"), new_short) if w)
    out: list[Finding] = []
    for rule in [r for r in rules if r.budget is None]:
        rows: list[dict[str, Any]] = []
        for c in cells:
            if reference is not None and c == reference and rule.metric == "startup":
                continue
            label = str(sb.loc[c].get("label") or c)
            if rule.metric == "size":
                vb, vn = sb.loc[c].get("size_bytes"), sn.loc[c].get("size_bytes")
                if not (vb and vn and vb == vb and vn == vn):
                    continue
                q = float(vn) / float(vb)
                rows.append({"what": label, "base": vb, "new": vn, "unit": "bytes", "ratio": q,
                             "low": q, "high": q, "p": math.nan})
                continue
            col = 1 if rule.metric == "startup" else 2
            xb, xn = wb.get((c, timer)), wn.get((c, timer))
            if rule.metric == "rss":
                xb, xn = wb.get((c, "spawn")), wn.get((c, "spawn"))
            if xb is None or xn is None or len(xb[1]) < 2 or len(xn[1]) < 2:
                continue
            ref_b = ref_n = None
            if reference is not None and rule.metric == "startup":
                ref_b, ref_n = wb[(reference, timer)][:2], wn[(reference, timer)][:2]
            iv = intervals.cross_run_ratio((xn[0], xn[col]), (xb[0], xb[col]), seed, ref_n,
                                           ref_b, b=b)
            vb = float(np.median(xb[col]) / (np.median(ref_b[1]) if ref_b else 1))
            vn = float(np.median(xn[col]) / (np.median(ref_n[1]) if ref_n else 1))
            p = mann_whitney_p(xn[col], xb[col]) if ref_b is None else math.nan
            unit = "× ref" if ref_b else ("ms" if rule.metric == "startup" else "bytes")
            rows.append({"what": label, "base": vb, "new": vn, "unit": unit,
                         "ratio": iv.estimate, "low": iv.low, "high": iv.high, "p": p})
        if rows:
            pv = np.array([r["p"] for r in rows], dtype=float)
            padj = holm(list(pv)) if np.isfinite(pv).any() else pv
            for r, pa in zip(rows, padj, strict=True):
                sig = bool(significant(r["ratio"], r["low"], r["high"], base.min_effect,
                                       None if not math.isfinite(pa) else pa)) \
                    if rule.metric != "size" else r["ratio"] != 1
                if rule.metric != "size" and too_short:
                    sig = False
                why = "" if rule.metric == "size" else \
                    unjudged_why(rule, r["ratio"], r["low"], r["high"], sig, too_short)
                out.append(Finding(rule.text, "cell", r["what"], r["base"], r["new"], r["unit"],
                                   r["ratio"], r["low"], r["high"], sig,
                                   sig and rule.beyond(r["ratio"]), why))
        if rule.metric == "startup":
            out += _effect_findings(base, new, rule, too_short)
    labels = sn["label"].to_dict() if "label" in sn else {}
    out += budget_findings(new, rules, list(sn.index), lambda c: str(labels.get(c) or c),
                           new_short, b=new.data.settings.bootstrap, seed=seed)
    return out


def _effect_findings(base: Analysis, new: Analysis, rule: Rule, too_short: str = ""
                     ) -> list[Finding]:
    """The change of each knob's cost: NEW's effect ratio / BASE's, its ci95 from the two
    (independent) intervals on the log scale."""
    key = ["axis", "value", "app", "timer", "cache"]
    eb, en = startup_rows(base.effects), startup_rows(new.effects)
    if eb.empty or en.empty:
        return []
    m = eb.merge(en, on=key, suffixes=("_b", "_n"))
    out = []
    for r in m.to_dict("records"):
        iv = intervals.log_ratio_of(
            *(intervals.Interval(r[f"ratio_{s}"], r[f"ci95_low_{s}"], r[f"ci95_high_{s}"])
              for s in ("n", "b")))
        lo, hi, ratio = iv.low, iv.high, iv.estimate
        sig = bool(significant(ratio, lo, hi, base.min_effect)) and not too_short
        what = f"{r['axis']} {r['baseline_value_b'] or '∅'} → {r['value'] or '∅'} " \
               f"({r['app']}, {r['cache']})"
        out.append(Finding(rule.text, "effect", what, r["ratio_b"], r["ratio_n"], "× baseline",
                           ratio, lo, hi, sig, sig and rule.beyond(ratio),
                           unjudged_why(rule, ratio, lo, hi, sig, too_short)))
    return out


def gate_markdown(findings: Sequence[Finding], rules: Sequence[Rule], min_effect: float,
                  reference: str | None, extra: Sequence[str] = (),
                  folded: Sequence[str] = ()) -> str:
    """The comment a reviewer reads in ten seconds: the verdict line first (pass, fail or
    inconclusive, which rule and the largest failing change), then what failed and what could
    not be judged, then `extra` (the gate's dependency table), then everything else folded
    (significant changes within the threshold, `folded`, the rule in words)."""
    failed = [f for f in findings if f.failed]
    unjudged = [f for f in findings if f.inconclusive]
    rules_txt = ", ".join(f"`{r.text}`" for r in rules)
    n_cells = len({f.what for f in findings if f.kind in ("cell", "budget")})
    n_eff = len({f.what for f in findings if f.kind == "effect"})
    if failed:
        worst = max(failed, key=lambda f: abs(math.log(f.ratio)) if f.ratio > 0 else 0.0)
        head = (f"## ❌ Startup gate failed: {len(failed)} significant change(s) beyond "
                f"{rules_txt} — worst: {md_cell(worst.what)} {_change(worst)} "
                f"(`{worst.rule}`)")
    elif unjudged:
        head = (f"## ❔ Startup gate inconclusive: {len(unjudged)} comparison(s) could not be "
                f"judged against {rules_txt} (not a pass)")
    elif not findings:
        head = f"## ❔ Startup gate inconclusive: nothing could be compared under {rules_txt}"
    else:
        head = f"## ✅ Startup gate passed: no significant change beyond {rules_txt}"
    out = [head, "", f"{n_cells} cell{'s' * (n_cells != 1)} and {n_eff} axis "
           f"effect{'s' * (n_eff != 1)} compared"
           + (f", startup relative to `{reference}`" if reference else "") + "."]
    if failed:
        out += ["", "| rule | what | BASE or budget | NEW | change or value [ci95] |",
                "|---|---|---|---|---|"]
        out += [f"| `{f.rule}` | {md_cell(f.what)} | {_num(f.base, f.unit)} | {_num(f.new, f.unit)}"
                f" | {_change(f)} |" for f in failed]
    if unjudged:
        out += ["", "Could not be judged (an inconclusive comparison is never a pass):", "",
                "| rule | what | change [ci95] | why |", "|---|---|---|---|"]
        out += [f"| `{f.rule}` | {md_cell(f.what)} | {_change(f)} | {md_cell(f.unjudged)} |"
                for f in unjudged]
    out += list(extra)
    rest: list[str] = []
    near = [f for f in findings if not f.failed and f.significant]
    if near:
        rest += [f"{len(near)} significant change(s) within the threshold:", "",
                 "| rule | what | change [ci95] |", "|---|---|---|"]
        rest += [f"| `{f.rule}` | {md_cell(f.what)} | {_change(f)} |" for f in near]
        rest += [""]
    rest += list(folded)
    rest += [f"{rule_text(min_effect).capitalize()}; beyond: the change's point estimate "
             "past the threshold."]
    out += ["", "<details><summary>Details</summary>", "", *rest, "", "</details>"]
    return "\n".join(out) + "\n"


def _change(f: Finding) -> str:
    if f.kind == "budget":  # the value with its interval, in the metric's unit
        return f"{_num(f.new, f.unit)} [{_num(f.low * f.base, f.unit)}, " \
               f"{_num(f.high * f.base, f.unit)}]" if math.isfinite(f.low) else \
               f"{_num(f.new, f.unit)} [no interval]" if math.isfinite(f.new) else "—"
    if not (math.isfinite(f.low) and math.isfinite(f.high)):
        return f"{f.ratio - 1:+.1%} [no interval]" if math.isfinite(f.ratio) else "—"
    return f"{f.ratio - 1:+.1%} [{f.low - 1:+.1%}, {f.high - 1:+.1%}]"


def md_cell(text: str) -> str:
    return text.replace("|", "\\|")


def _num(v: float, unit: str) -> str:
    if unit == "bytes":
        return f"{int(v):,} B"
    if unit == "ms":
        return f"{v:.3f} ms"
    return f"{v:.3f}{unit.replace('×', ' ×')}" if unit.startswith("×") else f"{v:.3f} {unit}"


