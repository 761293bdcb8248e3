"""`gostartbench compare BASE NEW --fail-on 'startup>+3%'`: a regression gate for CI.

The gate fails (exit 1) when a change is both *significant* (analysis/significance.py: its
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
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as sps

from gostartbench import intervals
from gostartbench.analysis import Analysis
from gostartbench.analysis.effects import startup_rows, timing_span_s
from gostartbench.analysis.significance import rule_text, significant
from gostartbench.analysis.stats import holm, timed_by_cell
from gostartbench.errors import EXIT_FAILED, EXIT_INCONCLUSIVE, EXIT_OK, InputError
from gostartbench.results import main_timer

METRICS = {"startup": "P50 start time", "size": "file size", "rss": "median peak RSS",
           "init": "package init (GODEBUG=inittrace=1, the sum; init[MODULE]: one module's)"}
_RULE = re.compile(r"^\s*(startup|size|rss|init)(?:\[([^\]\s]+)\])?\s*([<>])\s*"
                   r"([+-]?\d+(?:\.\d+)?)\s*(%|ms|s|B|kB|KB|MB|MiB|GB|GiB)\s*$")
Z95 = intervals.Z95
# An absolute rule's unit → its factor to the metric's own unit (ms for times, bytes for sizes)
TIME_UNITS = {"ms": 1.0, "s": 1000.0}
SIZE_UNITS = {"B": 1.0, "kB": 1e3, "KB": 1e3, "MB": 1e6, "MiB": 2.0 ** 20, "GB": 1e9,
              "GiB": 2.0 ** 30}


@dataclass(frozen=True)
class Rule:
    """One --fail-on rule: a metric, a direction and a threshold — relative to the base
    (`startup>+3%`: threshold +0.03) or, a budget, absolute on the head alone (`startup>20ms`,
    `init[google.golang.org/grpc]>1ms`, `size>30MB`: `budget` in ms or bytes)."""

    metric: str
    op: str  # '>': fail on an increase beyond (or a value above); '<': a decrease (value below)
    threshold: float  # relative rules: signed fraction, e.g. +0.03 or -0.05
    text: str
    budget: float | None = None  # absolute rules: the limit, in ms (times) or bytes (sizes)
    module: str | None = None  # init[MODULE]

    def beyond(self, ratio: float) -> bool:
        """True when a ratio NEW/BASE (or value/budget) goes past the rule's edge."""
        if not math.isfinite(ratio):
            return False
        edge = 1.0 if self.budget is not None else 1 + self.threshold
        return ratio > edge if self.op == ">" else ratio < edge


def parse_rule(text: str) -> Rule:
    """'startup>+3%', 'startup>20ms', 'init[MODULE]>1ms', 'size>30MB' → Rule (InputError, exit
    2, on anything else)."""
    m = _RULE.match(text)
    bad = (f"--fail-on {text!r}: expected METRIC>+N% (against the base) or METRIC>N UNIT (a "
           f"budget on the head: ms or s for startup and init, B/kB/MB/MiB/GB for size and rss) "
           f"with METRIC one of {', '.join(METRICS)}, or init[MODULE] (e.g. 'startup>+3%', "
           "'startup>20ms', 'init>5ms', 'size>30MB')")
    if not m:
        raise InputError(bad, key="--fail-on")
    metric, module, op, num, unit = m.groups()
    if unit == "%":
        if metric == "init" or module:
            raise InputError(f"--fail-on {text!r}: init rules are budgets (init>5ms, "
                             "init[MODULE]>1ms), not changes against the base", key="--fail-on")
        return Rule(metric, op, float(num) / 100, text.strip())
    units = TIME_UNITS if metric in ("startup", "init") else SIZE_UNITS
    if unit not in units or (module and metric != "init"):
        raise InputError(bad, key="--fail-on")
    return Rule(metric, op, 0.0, text.strip(), budget=float(num) * units[unit], module=module)


@dataclass(frozen=True)
class Finding:
    """One gated comparison: what, BASE and NEW values, the change with its ci95."""

    rule: str
    kind: str  # cell | effect
    what: str
    base: float
    new: float
    unit: str
    ratio: float
    low: float
    high: float
    significant: bool
    failed: bool
    # Why the comparison could not be judged ("" when it was): the run too short for the
    # significance rule, no interval, or an interval holding both no change and a change past
    # the rule's threshold. An inconclusive comparison is never a pass.
    unjudged: str = ""

    @property
    def inconclusive(self) -> bool:
        """True when the gate could not judge this comparison."""
        return bool(self.unjudged) and not self.failed


def unjudged_why(rule: Rule, ratio: float, low: float, high: float, significant: bool,
                 short: str = "") -> str:
    """Why a comparison cannot be judged under `rule` ("" when it can): `short` names a run
    too short for the significance rule; an interval that is missing, or that reaches past the
    threshold while not excluding "no change", cannot tell a pass from a fail."""
    if short:
        return short
    if not (math.isfinite(low) and math.isfinite(high) and math.isfinite(ratio)):
        return "no interval (too few runs or blocks of time)"
    if significant:
        return ""  # resolved: judged by its point estimate
    edge = 1 + rule.threshold
    if (rule.op == ">" and high > edge) or (rule.op == "<" and low < edge):
        return (f"its interval [{low - 1:+.1%}, {high - 1:+.1%}] holds both no change and a "
                f"change past {rule.threshold:+.0%}: more timing would tell")
    return ""


def budget_why(rule: Rule, low: float, high: float, short: str = "") -> str:
    """Why a budget cannot be judged ("" when it can): a short run, no interval, or an interval
    (as a ratio to the budget) holding the budget itself."""
    if short:
        return short
    if not (math.isfinite(low) and math.isfinite(high)):
        return "no interval (too few runs or blocks of time)"
    if low <= 1.0 <= high:
        return "its interval holds the budget: more runs would tell"
    return ""


def _p50_reps(x: np.ndarray, blocks: np.ndarray, b: int, rng: np.random.Generator,
              ref: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
    """Replicates of a P50, or of P50 / reference P50 resampled by the same blocks."""
    if ref is None:
        return intervals.median_replicates(x, blocks, b, rng)
    return intervals.ratio_replicates(x, blocks, ref[1], ref[0], b, rng)


def gate(base: Analysis, new: Analysis, rules: Sequence[Rule], reference: str | None = None,
         b: int = 2000, seed: int = 0) -> list[Finding]:
    """Every gated comparison of NEW against BASE under the rules."""
    rng = np.random.default_rng(seed)
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
                ref_b = (wb[(reference, timer)][0], wb[(reference, timer)][1])
                ref_n = (wn[(reference, timer)][0], wn[(reference, timer)][1])
            reps = _p50_reps(xn[col], xn[0], b, rng, ref_n) / _p50_reps(xb[col], xb[0], b, rng,
                                                                          ref_b)
            vb = float(np.median(xb[col]) / (np.median(ref_b[1]) if ref_b else 1))
            vn = float(np.median(xn[col]) / (np.median(ref_n[1]) if ref_n else 1))
            lo, hi = np.nanpercentile(reps, [2.5, 97.5])
            k = min(len(np.unique(xb[0])), len(np.unique(xn[0])))
            iv = intervals.widen(vn / vb, float(lo), float(hi), k)
            lo, hi = iv.low, iv.high
            p = float(sps.mannwhitneyu(xn[col], xb[col]).pvalue) if ref_b is None else math.nan
            unit = "× ref" if ref_b else ("ms" if rule.metric == "startup" else "bytes")
            rows.append({"what": label, "base": vb, "new": vn, "unit": unit, "ratio": vn / vb,
                         "low": float(lo), "high": float(hi), "p": p})
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
    from gostartbench.report.budgets import budget_findings

    labels = sn["label"].to_dict() if "label" in sn else {}
    out += budget_findings(new, rules, list(sn.index), lambda c: str(labels.get(c) or c),
                           new_short, b=b, seed=seed)
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
        lr = math.log(r["ratio_n"] / r["ratio_b"])
        se = math.hypot(*(math.log(r[f"ci95_high_{s}"] / r[f"ci95_low_{s}"]) / (2 * Z95)
                          for s in ("b", "n")))
        lo, hi, ratio = math.exp(lr - Z95 * se), math.exp(lr + Z95 * se), math.exp(lr)
        sig = bool(significant(ratio, lo, hi, base.min_effect)) and not too_short
        what = f"{r['axis']} {r['baseline_value_b'] or '∅'} → {r['value'] or '∅'} " \
               f"({r['app']}, {r['cache']})"
        out.append(Finding(rule.text, "effect", what, r["ratio_b"], r["ratio_n"], "× baseline",
                           ratio, lo, hi, sig, sig and rule.beyond(ratio),
                           unjudged_why(rule, ratio, lo, hi, sig, too_short)))
    return out


def gate_markdown(findings: Sequence[Finding], rules: Sequence[Rule], min_effect: float,
                  reference: str | None) -> str:
    """The gate's verdict first, then what failed, in a form that reads well as a
    pull-request comment."""
    failed = [f for f in findings if f.failed]
    unjudged = [f for f in findings if f.inconclusive]
    rules_txt = ", ".join(f"`{r.text}`" for r in rules)
    n_cells = len({f.what for f in findings if f.kind in ("cell", "budget")})
    n_eff = len({f.what for f in findings if f.kind == "effect"})
    if failed:
        head = f"## ❌ Startup gate failed: {len(failed)} significant change(s) beyond {rules_txt}"
    elif unjudged:
        head = (f"## ❔ Startup gate inconclusive: {len(unjudged)} comparison(s) could not be "
                f"judged against {rules_txt} (not a pass)")
    elif not findings:
        head = f"## ❔ Startup gate inconclusive: nothing could be compared under {rules_txt}"
    else:
        head = f"## ✅ Startup gate passed: no significant change beyond {rules_txt}"
    out = [head, "", f"{n_cells} cells and {n_eff} axis effects compared"
           + (f", startup relative to `{reference}`" if reference else "") + "."]
    if failed:
        out += ["", "| rule | what | BASE or budget | NEW | change or value [ci95] |",
                "|---|---|---|---|---|"]
        out += [f"| `{f.rule}` | {_md(f.what)} | {_num(f.base, f.unit)} | {_num(f.new, f.unit)}"
                f" | {_change(f)} |" for f in failed]
    if unjudged:
        out += ["", "Could not be judged (an inconclusive comparison is never a pass):", "",
                "| rule | what | change [ci95] | why |", "|---|---|---|---|"]
        out += [f"| `{f.rule}` | {_md(f.what)} | {_change(f)} | {_md(f.unjudged)} |"
                for f in unjudged]
    near = [f for f in findings if not f.failed and f.significant]
    if near:
        out += ["", f"<details><summary>{len(near)} significant change(s) within the "
                f"threshold</summary>", "", "| rule | what | change [ci95] |", "|---|---|---|"]
        out += [f"| `{f.rule}` | {_md(f.what)} | {f.ratio - 1:+.1%} "
                f"[{f.low - 1:+.1%}, {f.high - 1:+.1%}] |" for f in near]
        out += ["", "</details>"]
    out += ["", f"{rule_text(min_effect).capitalize()}; beyond: the change's point estimate "
            "past the threshold."]
    return "\n".join(out) + "\n"


def _change(f: Finding) -> str:
    if f.kind == "budget":  # the value with its interval, in the metric's unit
        return f"{_num(f.new, f.unit)} [{_num(f.low * f.base, f.unit)}, " \
               f"{_num(f.high * f.base, f.unit)}]" if math.isfinite(f.low) else \
               f"{_num(f.new, f.unit)} [no interval]" if math.isfinite(f.new) else "—"
    if not (math.isfinite(f.low) and math.isfinite(f.high)):
        return f"{f.ratio - 1:+.1%} [no interval]" if math.isfinite(f.ratio) else "—"
    return f"{f.ratio - 1:+.1%} [{f.low - 1:+.1%}, {f.high - 1:+.1%}]"


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def _num(v: float, unit: str) -> str:
    if unit == "bytes":
        return f"{int(v):,} B"
    if unit == "ms":
        return f"{v:.3f} ms"
    return f"{v:.3f}{unit.replace('×', ' ×')}" if unit.startswith("×") else f"{v:.3f} {unit}"


def exit_code(findings: Sequence[Finding]) -> int:
    """EXIT_FAILED when any finding failed its rule; else EXIT_INCONCLUSIVE when one could not
    be judged or nothing was compared; else EXIT_OK."""
    if any(f.failed for f in findings):
        return EXIT_FAILED
    if not findings or any(f.inconclusive for f in findings):
        return EXIT_INCONCLUSIVE
    return EXIT_OK


def rules_from(texts: Sequence[str]) -> list[Rule]:
    """Every --fail-on rule, parsed."""
    return [parse_rule(t) for t in texts]


def check_two(dirs: Sequence[Any], rules: Sequence[Rule]) -> None:
    """--fail-on compares exactly BASE and NEW."""
    if rules and len(dirs) != 2:
        raise InputError("--fail-on compares two runs: BASE NEW", key="--fail-on")



# ---------------------------------------------------------------------------------------------
# One run, two trees (`gostartbench gate`): base and head are a build axis, `rev`, timed in the
# same shuffled rounds, so a machine that drifts moves both and the ratio cancels it. Every
# head cell is judged against its base cell (the run's baseline: rev=base, every other axis the
# cell's own), with the run's own joint-block interval and significance (summary.csv), and the
# `rev` effect pooled and per app (effects.csv).

HEAD, BASE = "head", "base"
SHORT_RUN = "the run was too short for the significance rule"


def short_run_why(samples: Any, name: str = "") -> str:
    """Why a run's comparisons cannot be judged for its length ("" when it is long enough)."""
    span = timing_span_s(samples)
    if span >= intervals.FULL_SPAN_S:
        return ""
    return (f"{SHORT_RUN}: {name + ' has ' if name else ''}{span:.1f} s of timing, ≥ "
            f"{intervals.FULL_SPAN_S:g} s needed")
# The one-run gate judges many comparisons at once (every head cell, every app's `rev` effect,
# pooled): a per-comparison 95% interval would cry wolf in some gate out of a few by chance
# alone. Its intervals are widened to a family-wise level instead (Bonferroni over the
# comparisons a rule makes, normal approximation on the log scale): all of a gate's A/A
# comparisons hold together with probability ≥ 1 − FAMILY_ALPHA.
FAMILY_ALPHA = 0.01


def family_wise(findings: list[Finding], alpha: float = FAMILY_ALPHA) -> list[Finding]:
    """The same findings with each interval widened from 95% to 1 − alpha/k for the k
    comparisons of its rule (sizes are exact: left as they are); significant and failed
    judged again on the wider interval (and min_effect, as before)."""
    from dataclasses import replace

    by_rule: dict[str, int] = {}
    for f in findings:
        by_rule[f.rule] = by_rule.get(f.rule, 0) + 1
    out = []
    for f in findings:
        if f.unit == "bytes" and f.low == f.high:  # exact
            out.append(f)
            continue
        k = by_rule[f.rule]
        scale = float(sps.norm.ppf(1 - alpha / (2 * k))) / Z95
        if not (f.ratio > 0 and f.low > 0 and f.high > 0):
            out.append(f)
            continue
        lo = f.ratio * (f.low / f.ratio) ** scale
        hi = f.ratio * (f.high / f.ratio) ** scale
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
    short: list[str]  # cells stopped short of the precision target (named, never failed)


def one_run(a: Analysis, rules: Sequence[Rule], b: int = 2000, seed: int = 0) -> OneRun:
    """Every gated comparison of head against base within one run with the `rev` axis."""
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
    short = sorted({label(c) for c, rec in stopping.items()
                    if rec.get("stopped") in ("max_runs", "budget") and c in cells.index})
    s = a.summary
    if s.empty:
        return OneRun([], head_failed, base_failed, new, short)
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
                reps = intervals.ratio_replicates(xn[2], xn[0], xb[2], xb[0], b, rng)
                lo, hi = np.nanpercentile(reps, [2.5, 97.5])
                q = float(np.median(xn[2]) / np.median(xb[2]))
                k = len(np.unique(np.concatenate([xn[0], xb[0]])))
                iv = intervals.widen(q, float(lo), float(hi), k)
                sig = bool(significant(q, iv.low, iv.high, a.min_effect)) and not too_short
                out.append(Finding(rule.text, "cell", what, float(np.median(xb[2])),
                                   float(np.median(xn[2])), "bytes", q, iv.low, iv.high, sig,
                                   sig and rule.beyond(q),
                                   unjudged_why(rule, q, iv.low, iv.high, sig, too_short)))
        if rule.metric == "startup":
            out += _rev_effects(a, rule, too_short)
    from gostartbench.report.budgets import budget_findings

    heads = [str(c) for c in by_cell.index if str(cells.loc[c, "rev"]) == HEAD] \
        if len(by_cell) else []
    budgets = budget_findings(a, rules, heads, label, too_short, b=b, seed=seed)
    return OneRun(family_wise(out) + budgets, head_failed, base_failed, new, short)


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


def one_run_markdown(res: OneRun, rules: Sequence[Rule], min_effect: float,
                     run: Mapping[str, Any]) -> str:
    """The gate's comment: the verdict and what failed first, then what it could not judge,
    then how the run was made."""
    body = gate_markdown(res.findings, rules, min_effect, None)
    if res.head_failed:
        head, _, rest = body.partition("\n")
        head = (f"## ❌ Startup gate failed: the head does not build or run "
                f"({len(res.head_failed)} cell(s))")
        body = head + "\n" + rest
    out = [body.rstrip("\n")]
    if res.head_failed:
        out += ["", "| head cell | why |", "|---|---|"]
        out += [f"| {_md(w)} | {_md(r)} |" for w, r in res.head_failed]
    if res.new:
        out += ["", f"New in head (no base to compare with): {', '.join(res.new)}."]
    if res.base_failed:
        out += ["", "Base cells that did not build or run (their head cells are not judged):", ""]
        out += [f"- {_md(w)}: {_md(r)}" for w, r in res.base_failed]
    stop = run.get("stopping") or {}
    prec = stop.get("precision")
    widths = sorted(float(c["half_width"]) for c in (stop.get("cells") or {}).values()
                    if c.get("half_width") is not None)
    if widths:
        out += ["", f"Precision reached (each head cell's ratio ci95, 95% per cell): median "
                f"±{widths[len(widths) // 2]:.1%}, widest ±{widths[-1]:.1%}"
                + (f" (target ±{prec:.1%})" if prec else "") + "."]
    if res.short:
        out += ["", f"Short of the precision target (±{prec:.1%}; named, never failed on a "
                f"change their interval cannot resolve): {', '.join(res.short)}." if prec else
                f"Stopped short: {', '.join(res.short)}."]
    if stop.get("caps_gave_way"):
        out += ["", f"max_runs and the budget gave way: a verdict needs ≥ "
                f"{stop.get('verdict_span_s', intervals.FULL_SPAN_S):g} s of timing (the "
                "significance rule's shortest run)."]
    t = (run.get("phases_s") or {}).get("timing")
    out += ["", "Base and head were built from their own trees and timed in the same shuffled "
            "rounds of one run" + (f" ({t:.0f} s of timing)" if t else "")
            + ": a machine that drifts moves both, and the ratio cancels it. Intervals are "
            f"family-wise: all of a rule's comparisons together at {1 - FAMILY_ALPHA:.0%} "
            "(Bonferroni)."]
    return "\n".join(out) + "\n"
