"""Which dependency costs the start (pure): inittrace.csv's per-package init rolled up to the
module each package comes from and to the direct requirement of the app's go.mod that pulls it
in (deps.csv, from `go list -deps` at build time), per cell, with a ci95; how each knob moves a
module's init (the same pairs of cells as effects.csv); and the package-init phase of the
traced runs beside the sum of the packages' init.

Statistics: a cell's init of a module is the sum over its packages within one untimed
GODEBUG=inittrace=1 run; its figure is the median over the runs, its ci95 a percentile
bootstrap of that median over the runs (the runs are taken as independent: they are few and
spread over seconds, not interleaved like the timed runs). A knob's change is the mean over
pairs of the change in the median, each cell's runs resampled (as for phases).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from gostartbench.analysis.effects import pairs_of
from gostartbench.analysis.phases import phase_delta
from gostartbench.results.schema import MODULES_COLUMNS, main_timer
from gostartbench.stats.intervals import RULE_RUNS
from gostartbench.stats.resample import mean_of_differences, median_interval
from gostartbench.stats.resample import rng as make_rng
from gostartbench.stats.significance import TRACED_VS_TIMED

STD = "std"  # as build/modules.py names the standard library (deps.csv `module`)
UNATTRIBUTED = "?"  # a package deps.csv does not list (a run without it)
TOP_MODULES = 8  # modules a report shows per app; the rest are summed as "other"
# The package-init phase (traced) and the sum of inittrace's per-package clocks measure
# different things: inittrace times each package's init functions only (not the runtime's walk
# between them, nor its own printing), on separate runs. Apart by more than
# stats.significance.TRACED_VS_TIMED, the report says so.



def _guess_module(package: str) -> str:
    first = package.split("/", 1)[0]
    return STD if "." not in first else UNATTRIBUTED


def attributed(init: pd.DataFrame, cells: pd.DataFrame, deps: pd.DataFrame) -> pd.DataFrame:
    """inittrace rows with the app, module, requirement and chain of each package (module `std`
    or `?` where deps.csv has no row for it: a run from before deps.csv)."""
    if init.empty:
        return pd.DataFrame(columns=[*init.columns, "app", "module", "requirement", "chain",
                                     "main_module"])
    df = init.merge(cells[["cell", "app", "build_id"]], on="cell", how="left",
                    suffixes=("_x", ""))
    df = df.drop(columns=[c for c in df.columns if c.endswith("_x")])
    if len(deps):
        d = deps[["build_id", "package", "module", "requirement", "chain"]].astype(str)
        # inittrace names the main package `main`; deps.csv by its import path, where every
        # chain starts
        heads = d[d["package"] == d["chain"]].drop_duplicates("build_id").set_index("build_id")
        is_main = df["package"].astype(str) == "main"
        df.loc[is_main, "package"] = df.loc[is_main, "build_id"].astype(str).map(
            heads["package"]).fillna("main")
        df = df.merge(d, on=["build_id", "package"], how="left")
        # The app's own module: that of the main package.
        df["main_module"] = df["build_id"].astype(str).map(heads["module"])
    else:
        df = df.assign(module=np.nan, requirement=np.nan, chain=np.nan, main_module=np.nan)
    df["main_module"] = df["main_module"].fillna("")
    guess = df["package"].astype(str).map(_guess_module)
    df["module"] = df["module"].fillna(guess)
    df["requirement"] = df["requirement"].fillna(UNATTRIBUTED)
    df["chain"] = df["chain"].fillna("")
    return df


def package_modules(cells: pd.DataFrame, deps: pd.DataFrame) -> dict[str, dict[str, str]]:
    """cell → its binary's package → module (deps.csv), `main` → the app's own module (Go names
    the main package's functions main.*: the same roll-up as inittrace's)."""
    if deps.empty or cells.empty or "build_id" not in cells:
        return {}
    d = deps[["build_id", "package", "module", "chain"]].astype(str)
    out: dict[str, dict[str, str]] = {}
    by_build = {bid: dict(zip(g["package"], g["module"], strict=True))
                for bid, g in d.groupby("build_id")}
    heads = d[d["package"] == d["chain"]].drop_duplicates("build_id").set_index("build_id")
    for cell, bid in zip(cells["cell"].astype(str), cells["build_id"].astype(str), strict=True):
        mods = dict(by_build.get(bid, {}))
        if bid in heads.index:
            mods["main"] = str(heads.loc[bid, "module"])
        out[cell] = mods
    return out


def per_run(att: pd.DataFrame, by: str = "module") -> pd.DataFrame:
    """Init (ms) per cell, run and `by` (module or requirement): the sum over its packages."""
    return (att.groupby(["cell", "run", by], sort=False)["clock_ms"].sum()
            .reset_index())


def module_table(att: pd.DataFrame, *, b: int, seed: int = 0) -> pd.DataFrame:
    """One row per cell × module: its packages, the median over runs of their summed init with
    a bootstrap ci95, its share of the cell's whole package init, the requirement that pulls
    it in and the chain of its costliest package."""
    if att.empty:
        return pd.DataFrame(columns=MODULES_COLUMNS)
    rng = make_rng(seed)
    pr = per_run(att)
    totals = pr.groupby(["cell", "run"])["clock_ms"].sum().groupby("cell").median()
    rows = []
    for (cell, module), g in att.groupby(["cell", "module"], sort=False):
        x = pr[(pr["cell"] == cell) & (pr["module"] == module)]["clock_ms"].to_numpy(float)
        runs = int(att[att["cell"] == cell]["run"].nunique())
        # A run where none of the module's packages printed a line is a zero, not missing.
        x = np.concatenate([x, np.zeros(max(runs - len(x), 0))])
        iv = median_interval(x, b, rng)
        by_pkg = g.groupby("package")["clock_ms"].median()
        heavy = str(by_pkg.idxmax())
        req = g["requirement"].mode()
        rows.append({
            "app": str(g["app"].iloc[0]), "cell": cell, "module": module,
            "requirement": str(req.iloc[0]) if len(req) else UNATTRIBUTED,
            "packages": int(g["package"].nunique()), "runs": runs,
            "init_ms": iv.estimate, "ci95_low_ms": iv.low, "ci95_high_ms": iv.high,
            "share": float(np.median(x) / totals[cell]) if totals[cell] > 0 else float("nan"),
            "chain": str(g[g["package"] == heavy]["chain"].iloc[0]),
            "main_module": str(g["main_module"].iloc[0]), "ci_rule": RULE_RUNS,
        })
    out = pd.DataFrame(rows, columns=MODULES_COLUMNS)
    return out.sort_values(["app", "cell", "init_ms"], ascending=[True, True, False]
                           ).reset_index(drop=True)


def module_effects(att: pd.DataFrame, summary: pd.DataFrame, axes: Sequence[str],
                   baseline: Mapping[str, str], axis_values: Mapping[str, Sequence[str]],
                   modules: Mapping[str, Sequence[str]], *, b: int, seed: int = 0
                   ) -> pd.DataFrame:
    """Per app, axis value and module (`modules`: app → the modules to show): the mean over
    pairs of cells that differ only in that axis of the change in the module's median init
    (ms), with a bootstrap ci95. Warm pairs only: inittrace runs warm cells."""
    cols = ["app", "axis", "value", "baseline_value", "module", "pairs", "delta_ms",
            "delta_ci95_low_ms", "delta_ci95_high_ms"]
    if att.empty or summary.empty:
        return pd.DataFrame(columns=cols)
    rng = make_rng(seed)
    pr = per_run(att)
    runs_per_cell = att.groupby("cell")["run"].nunique()
    runs: dict[tuple[str, str], np.ndarray] = {}
    for (cell, module), g in pr.groupby(["cell", "module"]):
        x = g["clock_ms"].to_numpy(float)
        n = int(runs_per_cell.get(cell, len(x)))
        runs[(str(cell), str(module))] = np.concatenate([x, np.zeros(max(n - len(x), 0))])
    sm = summary[summary["timer"] == main_timer(summary["timer"].unique())].copy()
    sm = sm[sm["cell"].isin(set(att["cell"]))]
    for a in axes:
        if a in sm:
            sm[a] = sm[a].astype(str)
    rows = []
    for axis in [a for a in axes if a in sm]:
        values = list(axis_values.get(axis, sorted(sm[axis].unique())))
        base_v = str(baseline.get(axis, values[0]))
        for v in values:
            if str(v) == base_v:
                continue
            pairs = pairs_of(sm, axes, axis, str(v), base_v)  # warm cells only (see above)
            for app, mods in modules.items():
                ap = [p for p in pairs if str(p[0]["app"]) == app]
                for module in mods:
                    r = phase_delta(ap, module, runs, b, rng)
                    if r is not None:
                        rows.append({"app": app, "axis": axis, "value": v,
                                     "baseline_value": base_v, "module": module, **r})
    return pd.DataFrame(rows, columns=cols)


def init_vs_phase(att: pd.DataFrame, phase_tab: pd.DataFrame,
                  stage_tab: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per cell with both: the traced span that holds the packages' init — the runtime stage
    `package_inits` (gcenable's return → main.main) where the run has stages, else the whole
    package-init phase (which also holds sysmon's start, the runtime's own init tasks and GC
    enable) — beside the median sum of inittrace's package clocks, their difference and
    whether it is within the stated bound (`span`: which span was compared)."""
    cols = ["cell", "span", "phase_ms", "inittrace_sum_ms", "diff_ms", "agree"]
    if att.empty or phase_tab.empty:
        return pd.DataFrame(columns=cols)
    sums = att.groupby(["cell", "run"])["clock_ms"].sum().groupby("cell").median()
    ph = phase_tab[phase_tab["phase"] == "package_init"].set_index("cell")["p50_ms"]
    st = pd.Series(dtype=float)
    if stage_tab is not None and len(stage_tab):
        st = stage_tab[stage_tab["stage"] == "package_inits"].set_index("cell")["p50_ms"]
    rows = []
    for cell in sorted(set(sums.index) & set(ph.index)):
        span, p = ("stage package_inits", float(st[cell])) if cell in st.index else \
            ("phase package_init", float(ph[cell]))
        s = float(sums[cell])
        rows.append({"cell": cell, "span": span, "phase_ms": p, "inittrace_sum_ms": s,
                     "diff_ms": p - s,
                     "agree": TRACED_VS_TIMED.agrees(p, s)})
    return pd.DataFrame(rows, columns=cols)


DEP_MOVE_COLUMNS = ["app", "module", "base_version", "head_version", "change", "direct", "own",
                    "pairs", "delta_ms", "delta_ci95_low_ms", "delta_ci95_high_ms", "ci_rule"]
ALL_MODULES = "(all packages)"  # the row of the whole package init


def module_versions(deps: pd.DataFrame, build_id: str) -> dict[str, str]:
    """module → its version in one binary (deps.csv; std and the main module have none)."""
    d = deps[(deps["build_id"].astype(str) == build_id) & (deps["module"].astype(str) != STD)]
    d = d[d["version"].fillna("").astype(str) != ""]
    return {str(m): str(v) for m, v in zip(d["module"], d["version"], strict=True)}


def dependency_moves(att: pd.DataFrame, cells: pd.DataFrame, deps: pd.DataFrame,
                     axes: Sequence[str], axis: str, base: str, head: str, *, b: int,
                     seed: int = 0) -> pd.DataFrame:
    """Which dependency moved between two values of a build axis (the gate's `rev`): per app,
    every module linked into either side with its version on each (deps.csv: changed, added,
    dropped or same; `direct` when the app's go.mod requires it), and the change in its
    package init (inittrace, each run's sum over the module's packages; a module one side lacks
    counts 0 there) — the mean over pairs of cells that differ only in `axis`, with a ci95
    (rule `runs`). One row per app is the whole package init (ALL_MODULES). Costliest change
    first."""
    if att.empty or axis not in cells:
        return pd.DataFrame(columns=DEP_MOVE_COLUMNS)
    c = cells[cells["cell"].isin(set(att["cell"]))].copy()
    # pairs: cells that differ only in `axis` (same app, toolchain and every other axis)
    key_cols = ["app", "toolchain", *[x for x in axes if x != axis and x in c]]
    pr = per_run(att)
    runs_of = att.groupby("cell")["run"].nunique()
    per_cell: dict[str, dict[str, np.ndarray]] = {}
    for (cell, module), g in pr.groupby(["cell", "module"]):
        per_cell.setdefault(str(cell), {})[str(module)] = g["clock_ms"].to_numpy(float)
    totals = {str(cell): g.groupby("run")["clock_ms"].sum().to_numpy(float)
              for cell, g in att.groupby("cell")}
    by_key: dict[tuple[str, ...], dict[str, dict[str, object]]] = {}
    for r in c.to_dict("records"):
        k = tuple(str(r.get(x, "")) for x in key_cols)
        by_key.setdefault(k, {})[str(r[axis])] = r
    # the app's own module (that of its main package, where every chain starts) requires
    # nothing of itself: a direct requirement is any other module a chain's second link names
    own = set(deps[deps["package"].astype(str) == deps["chain"].astype(str)]["module"]
              .astype(str)) if len(deps) else set()
    direct = (set(deps["requirement"].astype(str)) - own) if len(deps) else set()
    rng = make_rng(seed)
    rows = []
    for app in sorted(c["app"].astype(str).unique()):
        pairs = [(sides[head], sides[base]) for sides in by_key.values()
                 if base in sides and head in sides and str(sides[head]["app"]) == app]
        if not pairs:
            continue
        hv = module_versions(deps, str(pairs[0][0]["build_id"])) if len(deps) else {}
        bv = module_versions(deps, str(pairs[0][1]["build_id"])) if len(deps) else {}
        modules = sorted({m for h, bs in pairs for cell in (h, bs)
                          for m in per_cell.get(str(cell["cell"]), {})} | set(hv) | set(bv))

        def runs(cell: str, module: str) -> np.ndarray:
            x = per_cell.get(cell, {}).get(module, np.zeros(0))
            n = int(runs_of.get(cell, len(x)))
            return np.concatenate([x, np.zeros(max(n - len(x), 0))])

        for module in [ALL_MODULES, *modules]:
            have = [(totals[str(h["cell"])], totals[str(bs["cell"])]) if module == ALL_MODULES
                    else (runs(str(h["cell"]), module), runs(str(bs["cell"]), module))
                    for h, bs in pairs]
            have = [(x, y) for x, y in have if len(x) and len(y)]
            if not have:
                continue
            iv, _ = mean_of_differences(have, b, rng)
            old, new = bv.get(module, ""), hv.get(module, "")
            change = "same" if old == new else "added" if not old and module in hv and \
                module not in bv else "dropped" if not new and module in bv and \
                module not in hv else "changed"
            rows.append({"app": app, "module": module, "base_version": old,
                         "head_version": new, "change": change if module != ALL_MODULES
                         else "", "direct": module in direct, "own": module in own,
                         "pairs": len(have),
                         "delta_ms": iv.estimate, "delta_ci95_low_ms": iv.low,
                         "delta_ci95_high_ms": iv.high, "ci_rule": RULE_RUNS})
    out = pd.DataFrame(rows, columns=DEP_MOVE_COLUMNS)
    if out.empty:
        return out
    out["_o"] = [-1e9 if m == ALL_MODULES else -abs(d) for m, d in
                 zip(out["module"], out["delta_ms"], strict=True)]
    return out.sort_values(["app", "_o"]).drop(columns="_o").reset_index(drop=True)
