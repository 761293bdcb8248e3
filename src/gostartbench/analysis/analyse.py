"""A run's statistics from its raw files (pure: RunData in, tables out): summary per cell and
effects per knob, with readable labels. Nothing is written here (report/ writes)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from gostartbench.analysis import deps
from gostartbench.analysis import summary as summary_mod
from gostartbench.analysis.carryover import carryover
from gostartbench.analysis.effects import effects
from gostartbench.analysis.labels import cell_label
from gostartbench.analysis.phases import (
    instruments,
    phase_effects,
    phase_table,
    stage_table,
    traced_vs_untraced,
)
from gostartbench.analysis.profile import function_effects, profile_table
from gostartbench.results import RunData
from gostartbench.results.schema import STOP_FLAGGED, SUMMARY_LEAD


@dataclass(frozen=True)
class Analysis:
    """What report, compare and the notebook show: the run's data and its derived tables."""

    data: RunData
    summary: pd.DataFrame  # summary.csv
    effects: pd.DataFrame  # effects.csv
    init: pd.DataFrame  # inittrace.csv with each cell's app
    baseline: Mapping[str, str]  # axis → baseline value (toolchain too, with several)
    phases: pd.DataFrame = field(default_factory=pd.DataFrame)  # cell × phase medians
    stages: pd.DataFrame = field(default_factory=pd.DataFrame)  # cell × runtime stage medians
    phase_effects: pd.DataFrame = field(default_factory=pd.DataFrame)  # where costs land
    modules: pd.DataFrame = field(default_factory=pd.DataFrame)  # init by module, per cell
    module_effects: pd.DataFrame = field(default_factory=pd.DataFrame)  # knobs × modules
    init_vs_phase: pd.DataFrame = field(default_factory=pd.DataFrame)  # two views of init
    instruments: pd.DataFrame = field(default_factory=pd.DataFrame)  # ptrace beside uprobes
    carryover: pd.DataFrame = field(default_factory=pd.DataFrame)  # carryover.csv
    profile: pd.DataFrame = field(default_factory=pd.DataFrame)  # profile.csv
    function_effects: pd.DataFrame = field(default_factory=pd.DataFrame)  # function_effects.csv

    @property
    def axes(self) -> list[str]:
        """The axes the matrix varies, in file order."""
        return list(self.data.settings.axes)

    @property
    def run(self) -> Mapping[str, Any]:
        """run.json as written."""
        return self.data.run

    @property
    def cells(self) -> pd.DataFrame:
        """cells.csv."""
        return self.data.cells

    @property
    def samples(self) -> pd.DataFrame:
        """samples.csv, every run."""
        return self.data.samples

    @property
    def min_effect(self) -> float:
        """The run's own smallest change called significant."""
        return self.data.settings.min_effect


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


def _stop_warnings(summary: pd.DataFrame, stopping: Mapping[str, Any]) -> None:
    """A cell that stopped short of the run's precision target (max_runs, budget) says so."""
    p = stopping.get("precision")
    for cell, rec in (stopping.get("cells") or {}).items():
        if rec.get("stopped") not in STOP_FLAGGED:
            continue
        hw = rec.get("half_width")
        need = rec.get("need_s")
        why = (f"stopped by {rec['stopped']} after {rec.get('runs')} runs"
               + (f" at ±{hw:.1%}" if hw is not None else "")
               + (f", short of ±{p:.1%}" if p else "")
               + (f" (about {need:.0f} s of timing would reach it)" if need else ""))
        m = summary["cell"] == cell
        summary.loc[m, "warnings"] = [w + ("; " if w else "") + why
                                      for w in summary.loc[m, "warnings"]]


def analyse(data: RunData) -> Analysis:
    """Summary and effects recomputed from samples.csv and cells.csv."""
    st = data.settings
    # every interval's replicates: the run's measure.bootstrap, fewer for very many samples
    b = summary_mod.choose_b(len(data.timed), st.bootstrap)
    axes = list(st.axes)
    base = dict(st.baseline)
    cells = data.cells
    summary = pd.DataFrame()
    eff = pd.DataFrame()
    eff_axes: list[str] = list(axes)
    axis_values: dict[str, list[str]] = {}
    if len(data.timed):
        summary = summary_mod.summarise(data.samples, cells, baselines(cells, axes, base),
                                  bootstrap=st.bootstrap, min_effect=st.min_effect, seed=st.seed)
        summary["label"] = [cell_label(r, axes, base) for r in summary.to_dict("records")]
        _stop_warnings(summary, data.run.get("stopping") or {})
        axis_values = {a: list(dict.fromkeys(cells[a].astype(str))) for a in axes if a in cells}
        if cells["toolchain"].nunique() > 1:
            # "What did upgrading Go do": the first listed toolchain is the baseline.
            eff_axes.append("toolchain")
            axis_values["toolchain"] = list(dict.fromkeys(cells["toolchain"]))
            base = {**base, "toolchain": axis_values["toolchain"][0]}
            summary["toolchain"] = summary["toolchain"].astype(str)
        eff = effects(summary, data.samples, eff_axes, base, axis_values=axis_values,
                      seed=st.seed, min_effect=st.min_effect,
                      b=b)
        lead = [*SUMMARY_LEAD, *[a for a in axes if a in summary], "label", "timer"]
        summary = summary[lead + [c for c in summary.columns if c not in lead]]
    init = data.inittrace
    if len(init):
        init = init.merge(cells[["cell", "app"]], on="cell", how="left")
    table = phase_table(data.phases, b=b, seed=st.seed)
    pe = pd.DataFrame()
    if len(summary) and len(data.phases):
        for cell, why in traced_vs_untraced(table, summary).items():
            m = summary["cell"] == cell
            summary.loc[m, "warnings"] = [w + ("; " if w else "") + why
                                          for w in summary.loc[m, "warnings"]]
        pe = phase_effects(data.phases, summary, eff_axes, base, axis_values, b=b, seed=st.seed,
                           stages=data.stages)
        eff = pd.concat([eff, pe.assign(significant=False)], ignore_index=True)
    stages = stage_table(data.stages, b=b, seed=st.seed)
    att = deps.attributed(data.inittrace, cells, data.deps) if len(data.inittrace) else \
        pd.DataFrame()
    mods = deps.module_table(att, b=b, seed=st.seed)
    me = pd.DataFrame()
    if len(mods) and len(summary):
        top = {app: list(g.groupby("module")["init_ms"].max().nlargest(deps.TOP_MODULES).index)
               for app, g in mods.groupby("app")}
        me = deps.module_effects(att, summary, eff_axes, base, axis_values, top, b=b,
                                 seed=st.seed)
    prof = profile_table(data.profile_samples, data.profile_stacks, data.profile_starts,
                         deps.package_modules(cells, data.deps), b=b, seed=st.seed)
    fe = function_effects(prof, summary, eff_axes, base, axis_values) if len(prof) else \
        pd.DataFrame()
    return Analysis(data=data, summary=summary, effects=eff, init=init, baseline=base,
                    phases=table, phase_effects=pe, modules=mods, module_effects=me,
                    stages=stages, init_vs_phase=deps.init_vs_phase(att, table, stages),
                    instruments=instruments(table, stages, data.uprobe, b=b, seed=st.seed),
                    carryover=carryover(data.samples, bootstrap=st.bootstrap, seed=st.seed),
                    profile=prof, function_effects=fe)
