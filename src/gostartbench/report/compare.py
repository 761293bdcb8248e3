"""`gostartbench compare`: runs side by side (two hosts, two dates, two toolchains).

Cells are matched by id and timer. Every ratio is to the first run, with a bootstrap ci95 of
the ratio of P50s (stats.intervals.cross_run_ratio: each run resampled by its own blocks of
time, independently — different runs share no moment — and widened for the fewer blocks; the
gate's interval for the same pair) and a Mann–Whitney U p-value,
Holm-adjusted over the cells compared. Cells present in some runs only are listed, never
dropped or averaged silently.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from gostartbench import results
from gostartbench.analysis import Analysis, analyse
from gostartbench.analysis.summary import timed_by_cell
from gostartbench.errors import EXIT_OK, InputError
from gostartbench.report import gate
from gostartbench.report import rules as rules_mod
from gostartbench.results import RUN_JSON, read_json, read_samples
from gostartbench.stats import intervals
from gostartbench.stats.significance import holm, mann_whitney_p, rule_text, significant


def _label(run: Mapping[str, Any], i: int) -> str:
    h = run.get("host", {})
    go = ",".join(run.get("tools", {}).get("go", []) or [])
    emulated = " — EMULATED: timings are not comparable" if h.get("emulated") else ""
    return f"{chr(65 + i)}: {run.get('id')} ({h.get('arch')}, {h.get('hostname')}, {go}){emulated}"


def load_runs(dirs: Sequence[Path]) -> list[Analysis]:
    """Each run folder loaded and analysed (nothing written: comparing leaves the run folders
    as they are)."""
    out = []
    for d in dirs:
        a = analyse(results.load(d))
        if a.summary.empty:
            raise InputError(f"{d} has no measured samples", key="RUN_DIR")
        out.append(a)
    return out


def compare_table(runs: Sequence[Analysis], seed: int = 0
                  ) -> tuple[pd.DataFrame, list[str]]:
    """One row per (cell, timer) present in every run; plus the list of mismatches. The
    significance rule uses the first run's own min_effect."""
    keys = [set(zip(a.summary["cell"], a.summary["timer"], strict=True)) for a in runs]
    common = sorted(set.intersection(*keys))
    mismatched = []
    for i, k in enumerate(keys):
        for cell, timer in sorted(k - set(common)):
            mismatched.append(f"{cell} ({timer}) only in {chr(65 + i)}"
                              + "".join(f", {chr(65 + j)}" for j, kk in enumerate(keys)
                                        if j != i and (cell, timer) in kk))
    walls = []
    for a in runs:
        walls.append(timed_by_cell(a.samples))
    rows = []
    for cell, timer in common:
        row: dict[str, Any] = {"cell": cell, "timer": timer}
        base_blocks, base = walls[0][(cell, timer)]
        for i, a in enumerate(runs):
            sm = a.summary
            r = sm[(sm["cell"] == cell) & (sm["timer"] == timer)].iloc[0]
            tag = chr(65 + i)
            row[f"{tag}_p50_ms"] = r["p50_ms"]
            row[f"{tag}_ci95_low_ms"] = r["ci95_low_ms"]
            row[f"{tag}_ci95_high_ms"] = r["ci95_high_ms"]
            row[f"{tag}_n"] = int(r["n"])
            row[f"{tag}_size_bytes"] = r.get("size_bytes")
            if i == 0:
                row["label"] = r.get("label", cell)
            if i == 0:
                continue
            blocks, x = walls[i][(cell, timer)]
            iv = intervals.cross_run_ratio((blocks, x), (base_blocks, base), seed,
                                           b=runs[0].data.settings.bootstrap)
            row[f"{tag}_ratio"] = iv.estimate
            row[f"{tag}_ratio_ci95_low"] = iv.low
            row[f"{tag}_ratio_ci95_high"] = iv.high
            row[f"{tag}_p_value"] = mann_whitney_p(x, base)
        rows.append(row)
    df = pd.DataFrame(rows)
    for i in range(1, len(runs)):
        tag = chr(65 + i)
        if f"{tag}_p_value" in df:
            df[f"{tag}_p_adj"] = holm(df[f"{tag}_p_value"].to_numpy())
            df[f"{tag}_significant"] = significant(
                df[f"{tag}_ratio"], df[f"{tag}_ratio_ci95_low"], df[f"{tag}_ratio_ci95_high"],
                runs[0].min_effect, df[f"{tag}_p_adj"])
    return df, mismatched


def to_markdown(runs: Sequence[Analysis], df: pd.DataFrame, mismatched: list[str],
                collapse: bool = False) -> str:
    """A table that reads well as a pull-request comment: cells by label, P50s, ratios
    (`collapse`: folded under a summary line, below a gate's verdict)."""
    out = ["<details><summary>Every cell</summary>", ""] if collapse else \
        ["# gostartbench compare", ""]
    out += [f"- {_label(a.run, i)}" for i, a in enumerate(runs)] + [""]
    head = ["cell", "timer"] + [f"{chr(65 + i)} P50 ms [ci95]" for i in range(len(runs))]
    head += [f"{chr(65 + i)}/A [ci95]" for i in range(1, len(runs))]
    out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in df.to_dict("records"):
        cells = [str(r.get("label") or r["cell"]), r["timer"]]
        for i in range(len(runs)):
            t = chr(65 + i)
            cells.append(f"{r[f'{t}_p50_ms']:.3f} [{r[f'{t}_ci95_low_ms']:.3f}, "
                         f"{r[f'{t}_ci95_high_ms']:.3f}]")
        for i in range(1, len(runs)):
            t = chr(65 + i)
            mark = " *" if r.get(f"{t}_significant") else ""
            cells.append(f"{r[f'{t}_ratio']:.3f} [{r[f'{t}_ratio_ci95_low']:.3f}, "
                         f"{r[f'{t}_ratio_ci95_high']:.3f}]{mark}")
        out.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    out += ["", f"`*`: {rule_text(runs[0].min_effect)}."]
    if mismatched:
        out += ["", "## Cells not in every run", ""] + [f"- {m}" for m in mismatched]
    if collapse:
        out += ["", "</details>"]
    return "\n".join(out) + "\n"


_BENCH_SAFE = re.compile(r"[^A-Za-z0-9._=+-]")


def to_benchstat(dirs: Sequence[Path]) -> str:
    """Go's benchmark text format (golang.org/design/14313-benchmark-format): one line per
    timed run, so benchstat computes its own statistics. Read with
    `benchstat -col gsbrun FILE` (or split by run)."""
    buf = io.StringIO()
    buf.write("Unit ns/op assume=nothing\nUnit size-B assume=exact\n")
    for d in dirs:
        run = read_json(d / RUN_JSON)
        h = run.get("host", {})
        buf.write(f"\ngsbrun: {_BENCH_SAFE.sub('_', str(run.get('id')))}\n")
        buf.write(f"goos: linux\ngoarch: {_BENCH_SAFE.sub('_', str(h.get('arch')))}\n")
        buf.write(f"cpu: {str(h.get('cpu_model')).replace(chr(10), ' ')}\n")
        buf.write("pkg: gostartbench\n")
        s = read_samples(d)
        cells = pd.read_csv(d / "cells.csv", keep_default_na=False)
        size = dict(zip(cells["cell"], cells["size_bytes"], strict=True))
        ok = s[s["ok"] & (s["round"] >= 0)].sort_values(["cell", "timer", "round"])
        for r in ok.itertuples():
            name = f"BenchmarkStartup/cell={_BENCH_SAFE.sub('_', str(r.cell))}/timer={r.timer}"
            line = f"{name} 1 {int(r.wall_ns)} ns/op"
            if size.get(r.cell) not in (None, ""):
                line += f" {int(size[r.cell])} size-B"
            if r.maxrss_bytes == r.maxrss_bytes and r.timer == "spawn":
                line += f" {int(r.maxrss_bytes)} maxrss-B"
            buf.write(line + "\n")
    return buf.getvalue()


def compare_command(dirs: Sequence[Path], fmt: str, fail_on: Sequence[str] = (),
                    reference: str | None = None) -> tuple[str, int]:
    """`gostartbench compare` in the asked format (md, csv, benchstat), and its exit code:
    with --fail-on rules, 1 when the gate fails, 3 when it could not judge a comparison
    (report/gate.py), else 0."""
    rules = rules_mod.rules_from(fail_on)
    rules_mod.check_two(dirs, rules)
    if fmt == "benchstat" and rules:
        raise InputError("--fail-on needs --format md or csv", key="--fail-on")
    if fmt == "benchstat":
        for d in dirs:
            results.require_run_dir(d)
        return to_benchstat(dirs), EXIT_OK
    runs = load_runs(dirs)
    df, mismatched = compare_table(runs)
    findings = gate.gate(runs[0], runs[1], rules, reference) if rules else []
    code = rules_mod.exit_code(findings) if rules else EXIT_OK
    if fmt == "csv":
        text = str(df.to_csv(index=False, float_format="%.10g"))
        if mismatched:
            text += "".join(f"# mismatched: {m}\n" for m in mismatched)
        text += "".join(f"# gate: {_verdict(f)} {f.rule} {f.kind} {f.what}: "
                        f"{f.ratio:.4f} [{f.low:.4f}, {f.high:.4f}]\n"
                        for f in findings if f.failed or f.significant or f.inconclusive)
        return text, code
    md = to_markdown(runs, df, mismatched, collapse=bool(rules))
    if rules:
        md = gate.gate_markdown(findings, rules, runs[0].min_effect, reference) + "\n" + md
    return md + "\n" + drift_note(df, reference) + "\n", code


def _verdict(f: rules_mod.Finding) -> str:
    return "FAIL" if f.failed else "INCONCLUSIVE" if f.inconclusive else "ok"


def drift_note(df: pd.DataFrame, reference: str | None) -> str:
    """What separate runs cannot know: the machine's drift between them is not in any
    interval here (each run is resampled alone); the reference cell, when named, shows it."""
    text = ("Between-run drift is not in these intervals: each run's cells are resampled "
            "within that run, and two runs are two stretches of the machine's time (on this "
            "project's 2-core host the same binary timed twice a minute apart read +12.5% "
            "[+5.6%, +19.5%]). "
            "`gostartbench gate` times base and head in the same rounds of one run instead.")
    if reference is None or df.empty or "B_ratio" not in df:
        return text
    ref = df[df["cell"] == reference]
    if ref.empty:
        return text
    r = ref.iloc[0]
    return (text + f" The unchanged reference `{reference}` moved by {r['B_ratio'] - 1:+.1%} "
            f"[{r['B_ratio_ci95_low'] - 1:+.1%}, {r['B_ratio_ci95_high'] - 1:+.1%}] between "
            "the runs: that much of every change above is the machine's.")
