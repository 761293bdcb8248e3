"""The report stage: statistics written (summary.csv, effects.csv), charts (plots.py), words
(text.py) and report.md / report.html (render.py), all from a run's files — any saved run can be
redrawn. compare.py sets runs side by side; notebook.py executes the analysis notebook."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from gostartbench import results
from gostartbench.analysis import Analysis, analyse
from gostartbench.report import context_plots, plots
from gostartbench.report.deps_text import baseline_cells
from gostartbench.report.flame import flame_graphs
from gostartbench.report.profile_text import write_profiles
from gostartbench.report.render import render_html, render_md
from gostartbench.report.waterfall import waterfall
from gostartbench.results import (
    CARRYOVER_CSV,
    EFFECTS_CSV,
    FUNCTION_EFFECTS_CSV,
    MODULES_CSV,
    PROFILE_CSV,
    SUMMARY_CSV,
    write_atomic,
)


def analyse_run(run_dir: Path, write: bool = True) -> Analysis:
    """Load a run folder and recompute its statistics (summary.csv, effects.csv,
    carryover.csv and, with inittrace runs, modules.csv written back unless write=False)."""
    a = analyse(results.load(run_dir))
    if write and len(a.summary):
        _write_df(run_dir / SUMMARY_CSV, a.summary)
        _write_df(run_dir / EFFECTS_CSV, a.effects)
    if write and a.modules is not None and len(a.modules):
        _write_df(run_dir / MODULES_CSV, a.modules)
    if write and len(a.carryover):
        _write_df(run_dir / CARRYOVER_CSV, a.carryover)
    if write and len(a.profile):
        _write_df(run_dir / PROFILE_CSV, a.profile)
        _write_df(run_dir / FUNCTION_EFFECTS_CSV, a.function_effects)
        write_profiles(a, run_dir)
    return a


def _write_df(path: Path, df: pd.DataFrame) -> None:
    write_atomic(path, df.to_csv(index=False, float_format="%.10g"))


def make_report(run_dir: Path, heat: tuple[str, str] | None = None) -> Path:
    """summary.csv, effects.csv, every chart, report.md and report.html of a run folder."""
    a = analyse_run(run_dir)
    out = run_dir / "plots"
    charts: list[tuple[str, Path, str]] = []  # (title, png, caption)
    s, axes = a.summary, a.axes
    if len(s):
        def add(title: str, paths: list[Path] | None, caption: str) -> None:
            if paths:
                charts.append((title, paths[0], caption))

        if len(a.effects):
            add("Main effects", plots.main_effects(a.effects, out),
                "Each axis value against the axis's baseline value, over every pair of cells that "
                "differ only there (geometric mean; ci95 by bootstrap).")
        add("Startup time per cell", plots.p50_per_cell(s, axes, out),
            "P50 of each cell's runs with its bootstrap ci95; colour: significance against the "
            "app's baseline (Mann–Whitney U, Holm-adjusted, min effect "
            f"{a.min_effect:.0%}).")
        add("Where the start goes", waterfall(a.phases, s, out),
            "Each cell's phases (medians of separate traced runs, the tracer's stop cost "
            "subtracted) stacked from fork to reaped; the tick is the untimed-by-tracing P50. "
            "Same order as the chart above.")
        add("Size against startup", plots.size_vs_p50(s, axes, out),
            "Lower-left is better. The Pareto front joins the cells no other cell beats on both.")
        if s["maxrss_p50_bytes"].notna().any():
            add("Memory against startup",
                plots.size_vs_p50(s, axes, out, y="maxrss_p50_bytes", name="rss_vs_p50"),
                "Peak RSS of the program itself (ru_maxrss from a tiny spawner, see "
                "docs/methodology.md).")
        add("Where it runs", context_plots.where_it_runs(s, dict(a.baseline), out),
            "Per app and place (the host, each image): the program's own start timed inside "
            "the image (warm, cold, prewarmed) and the container's start through the engine, to "
            "exit or ready; P50 on a log scale, the baseline build.")
        add("Warm against cold", plots.warm_vs_cold(s, axes, out),
            "Cold: the binary evicted from the page cache before every run.")
        add("Distribution of runs", plots.distribution(a.samples, s, axes, out),
            "Empirical CDF of every run: a shift is a real change, a long right tail is noise or "
            "a slow path.")
        add("Package init, zoomed: init by package", context_plots.init_by_package(a.init, out),
            "The waterfall's package-init phase, package by package: GODEBUG=inittrace=1 in "
            "separate runs (its clock starts at runtime.main, as that phase does).")
        add("The runtime's start by Go version",
            context_plots.stages_by_toolchain(a.stages, s, out),
            "Each toolchain's baseline (warm): the runtime's own stages inside bootstrap and "
            "package init, medians of the traced runs, the stops' cost subtracted.")
        add("Which dependency costs the start",
            context_plots.init_by_module(a.modules, a.module_effects, baseline_cells(a), out),
            "Each app's baseline: package init rolled up by module (GODEBUG=inittrace=1, "
            "separate untimed runs; median per run, ci95 over runs); markers: the same module "
            "under each knob (baseline + the mean change over the knob's pairs).")
        h = heat or _heat_axes(s, axes)
        if h:
            fixed = {**a.baseline, **({"cache": "warm"} if "cache" in s else {})}
            add(f"Heat map {h[0]} × {h[1]}", context_plots.heatmap(s, h[0], h[1], out, fixed),
                "P50 relative to the baseline by two axes, the other axes held at the "
                "baseline's values (warm cache).")
        add("The two timers", context_plots.timers_side_by_side(s, out),
            "Built-in spawn timer against hyperfine -N, per cell.")
        for png in flame_graphs(a, out) or []:
            charts.append((f"Flame graph: {png.stem.removeprefix('flame_')}", png,
                           "The profiled starts' samples (perf, CPU time): first row the phase "
                           "each sample is in, below it the call chain, root first; width: "
                           "share of the start's CPU time. The same data: profiles/*.pb.gz."))
    write_atomic(run_dir / "report.md", render_md(a, charts, run_dir))
    write_atomic(run_dir / "report.html", render_html(a, charts))
    return run_dir / "report.html"


def _heat_axes(s: pd.DataFrame, axes: Sequence[str]) -> tuple[str, str] | None:
    varied = [x for x in axes if x in s and s[x].nunique() > 1 and x != "cache"]
    return (varied[0], varied[1]) if len(varied) >= 2 else None


