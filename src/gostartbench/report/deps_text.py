"""The report's "Which dependency costs the start" section: per app, its baseline cell's package
init by module (with ci95, share, the direct requirement that pulls it in and the chain of its
costliest package), how each knob moves the top modules, and the package-init phase of the
traced runs beside the sum of inittrace's package clocks."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from gostartbench.analysis import Analysis
from gostartbench.analysis.deps import TOP_MODULES
from gostartbench.analysis.labels import change_label
from gostartbench.stats.significance import TRACED_VS_TIMED

MODULE_HEAD = ["module", "init ms [ci95]", "share", "packages", "pulled in by", "chain (costliest "
               "package)"]
DEPS_TEXT = (
    "Package init per module: GODEBUG=inittrace=1 in separate, untimed runs of each warm "
    "binary; a module's init in one run is the sum over its packages, shown as the median over "
    "runs with a percentile-bootstrap ci95 over the runs. Each package's module and the direct "
    "requirement that pulls it in come from `go list -deps` with the build's own flags "
    "(deps.csv); `std` is the standard library, attributed to the first requirement on its "
    "shortest import chain from main. Knob columns: the mean change (ms) over pairs of cells "
    "that differ only in that knob, with ci95.")


@dataclass(frozen=True)
class DepBlock:
    """One app's part of the section."""

    app: str
    cell_label: str
    module_rows: list[list[str]]
    knob_head: list[str]
    knob_rows: list[list[str]]
    agreement: str


def _baseline_cell(a: Analysis, app: str, cells: set[str]) -> str | None:
    s = a.summary
    if s.empty or "baseline" not in s:
        return sorted(cells)[0] if cells else None
    own = s[(s["app"] == app) & (s["cell"] == s["baseline"]) & s["cell"].isin(cells)]
    if len(own):
        return str(own["cell"].iloc[0])
    return sorted(cells)[0] if cells else None


def baseline_cells(a: Analysis) -> dict[str, str]:
    """app → the cell whose modules the section shows (its baseline, warm)."""
    m = a.modules
    if m is None or m.empty:
        return {}
    out = {}
    for app, g in m.groupby("app"):
        cell = _baseline_cell(a, str(app), set(g["cell"]))
        if cell is not None:
            out[str(app)] = cell
    return out


def _short_chain(chain: str, keep: int = 4) -> str:
    steps = chain.split(" > ")
    if len(steps) > keep + 1:
        steps = [steps[0], "…", *steps[-keep:]]
    return " → ".join(steps)


def dependency_blocks(a: Analysis) -> list[DepBlock]:
    """Per app with inittrace runs: the tables of the section (see the module's doc)."""
    m = a.modules
    if m is None or m.empty:
        return []
    me = a.module_effects
    labels = dict(zip(a.summary["cell"], a.summary["label"], strict=False)) \
        if len(a.summary) else {}
    out = []
    for app, cell in sorted(baseline_cells(a).items()):
        g = m[m["app"] == app]
        b = g[g["cell"] == cell].sort_values("init_ms", ascending=False)
        total = float(b["init_ms"].sum())
        rows = []
        for r in b.head(TOP_MODULES).itertuples():
            rows.append([str(r.module), f"{r.init_ms:.3f} [{r.ci95_low_ms:.3f}, "
                         f"{r.ci95_high_ms:.3f}]", f"{r.share:.0%}", str(r.packages),
                         "the app itself" if r.requirement == r.main_module
                         else str(r.requirement),
                         _short_chain(str(r.chain))])
        rest = b.iloc[TOP_MODULES:]
        if len(rest):
            rows.append([f"{len(rest)} other modules", f"{rest['init_ms'].sum():.3f}",
                         f"{rest['share'].sum():.0%}", str(int(rest["packages"].sum())), "",
                         ""])
        knob_head, knob_rows = _knob_table(me, str(app), list(b["module"].head(TOP_MODULES)))
        out.append(DepBlock(str(app), labels.get(cell, cell) or "baseline", rows, knob_head,
                            knob_rows, _agreement(a, cell, total)))
    return out


def _knob_table(me: pd.DataFrame, app: str, modules: list[str]
                ) -> tuple[list[str], list[list[str]]]:
    if me is None or me.empty:
        return [], []
    d = me[me["app"] == app]
    if d.empty:
        return [], []
    knobs = list(dict.fromkeys(zip(d["axis"], d["baseline_value"].astype(str),
                                   d["value"].astype(str), strict=True)))
    head = ["module", *[change_label(ax, b, v) for ax, b, v in knobs]]
    rows = []
    for mod in modules:
        row = [mod]
        for ax, _, v in knobs:
            x = d[(d["module"] == mod) & (d["axis"] == ax) & (d["value"].astype(str) == v)]
            if x.empty:
                row.append("")
                continue
            r = x.iloc[0]
            moved = r["delta_ci95_low_ms"] > 0 or r["delta_ci95_high_ms"] < 0
            row.append(f"{r['delta_ms']:+.3f} [{r['delta_ci95_low_ms']:+.3f}, "
                       f"{r['delta_ci95_high_ms']:+.3f}]" + ("" if moved else " ·"))
        rows.append(row)
    return head, rows


def _agreement(a: Analysis, cell: str, total: float) -> str:
    ivp = a.init_vs_phase
    line = f"Package init by inittrace, all modules: {total:.3f} ms (median per run)."
    if ivp is None or ivp.empty or cell not in set(ivp["cell"]):
        return line
    r = ivp[ivp["cell"] == cell].iloc[0]
    verdict = "agree" if bool(r["agree"]) else "DISAGREE"
    what = ("the traced stage package_inits (runtime.gcenable's return → main.main)"
            if str(r.get("span", "")).startswith("stage") else
            "the traced package-init phase (which also holds sysmon's start, the runtime's own "
            "init tasks and GC enable)")
    return (f"{line} Beside it {what}: {r['phase_ms']:.3f} ms; the sum of the packages' init "
            f"clocks: {r['inittrace_sum_ms']:.3f} ms; difference {r['diff_ms']:+.3f} ms: they "
            f"{verdict} within {TRACED_VS_TIMED.text()} (the traced "
            f"span also holds the runtime's walk between the init functions; separate runs).")
