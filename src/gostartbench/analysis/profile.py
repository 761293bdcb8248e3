"""profile.csv: where a start's CPU time goes, to the function, from the profiled starts'
samples (profile_samples.csv, profile_stacks.csv, profile_starts.csv; pure).

Each sample is put in a phase by its own stack (the frames it was taken in), the phases of
docs/results.md ("Phases"): `main` when main.main is on it; `package_init` when a package's
init function is, or runtime.main (the runtime's own init tasks before main.main);
`bootstrap` under runtime.schedinit; `runtime_entry` under the ELF entry and runtime.rt0_go
otherwise; `pre_entry` in the dynamic loader (ld.so) or in an unpacker before the Go entry;
`exec` in the kernel's execve; `teardown` in the kernel's exit; anything else (a thread the
runtime started, a kernel path reached from none of these) is `other`. The time of a sample is
its period (1 / the sampling rate): CPU time, on-CPU only — an I/O wait is off-CPU and is not
sampled (a cold start's wait for the disk shows in the wall-clock phases, not here).

Per cell × phase × function: self time per start (the function is the leaf), total time per
start (anywhere on the stack, once per sample), each the mean over the cell's starts (a start
without it counts 0) with a ci95 from resampling starts as independent (stats.resample,
rule `runs`); `all` rows pool the phases. A function's package is its Go package (the
name before the function, e.g. `github.com/spf13/cobra` of `github.com/spf13/cobra.init.0`);
its module is that package's in deps.csv (`std` for the standard library).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from gostartbench.analysis.effects import ALL_APPS, pair_groups
from gostartbench.results.schema import (
    EXEC_FUNCTIONS,
    FUNCTION_EFFECTS_COLUMNS,
    PROFILE_COLUMNS,
    frames_of,
    main_timer,
)
from gostartbench.stats.intervals import RULE_RUNS, Interval, mean_difference
from gostartbench.stats.resample import mean_intervals
from gostartbench.stats.resample import rng as make_rng

ALL_PHASES = "all"
OTHER = "other"
# a package's init function: `pkg.init`, `pkg.init.0` — not a method named init
# (`runtime.(*gcControllerState).init` runs in schedinit)
_INIT = re.compile(r"^[^()]+\.init(\.\d+)*$")
_EXIT = {"do_exit", "do_group_exit", "__x64_sys_exit_group", "__arm64_sys_exit_group",
         "exit_mmap", "mmput"}
_ENTRY = {"runtime.rt0_go", "_rt0_amd64_linux", "_rt0_arm64_linux", "_rt0_amd64",
          "_rt0_arm64", "runtime.rt0_go.abi0"}


def package_of(function: str) -> str:
    """The Go package of a function's full name ('' for a name that is not Go's)."""
    head, _, tail = function.rpartition("/")
    pkg = tail.split(".", 1)[0] if "." in tail else ""
    if not pkg:
        return ""
    return f"{head}/{pkg}" if head else pkg


def phase_of(functions: list[str], objects: list[str]) -> str:
    """The phase a sample is in, from its stack's functions and objects (leaf first)."""
    names = set(functions)
    if "main.main" in names:
        return "main"
    if any(_INIT.search(f) for f in functions if "." in f) or "runtime.doInit1" in names \
            or "runtime.main" in names:
        return "package_init"
    if "runtime.schedinit" in names:
        return "bootstrap"
    if names & _ENTRY:
        return "runtime_entry"
    if any("ld-linux" in o or "/ld-" in o or o.endswith("ld.so") for o in objects) or \
            any(f.startswith("_dl_") for f in functions):
        return "pre_entry"
    if names & EXEC_FUNCTIONS:
        return "exec"
    if names & _EXIT:
        return "teardown"
    return OTHER


def profile_table(samples: pd.DataFrame, stacks: pd.DataFrame, starts: pd.DataFrame,
                  modules: Mapping[str, Mapping[str, str]] | None = None, *, b: int,
                  seed: int = 0) -> pd.DataFrame:
    """profile.csv (see the module's doc); `modules`: cell → package → module (deps.csv)."""
    if samples.empty or stacks.empty:
        return pd.DataFrame(columns=PROFILE_COLUMNS)
    parsed: dict[int, tuple[str, str, list[tuple[str, str, int, str]]]] = {}
    for sid, text in zip(stacks["stack_id"], stacks["frames"].fillna(""), strict=True):
        frames = frames_of(str(text))
        fns = [f[0] for f in frames]
        parsed[int(sid)] = (phase_of(fns, [f[3] for f in frames]), fns[0] if fns else "?",
                            frames)
    gen = make_rng(seed)
    rows: list[dict[str, Any]] = []
    ok_starts = starts[starts["ok"].astype(str).str.lower() == "true"] if len(starts) else starts
    for cell, g in samples.groupby("cell", sort=True):
        idx = sorted(ok_starts.loc[ok_starts["cell"] == cell, "start"].astype(int)) \
            if len(ok_starts) else sorted(g["start"].unique())
        if not idx:
            continue
        col = {s: i for i, s in enumerate(idx)}
        n = len(idx)
        self_t: dict[tuple[str, str], np.ndarray] = defaultdict(partial(np.zeros, n))
        total_t: dict[tuple[str, str], np.ndarray] = defaultdict(partial(np.zeros, n))
        count: dict[tuple[str, str], int] = defaultdict(int)
        obj: dict[str, str] = {}
        for start, period, sid in zip(g["start"].astype(int), g["period_ns"].astype(float),
                                      g["stack_id"].astype(int), strict=True):
            if start not in col:
                continue
            phase, leaf, frames = parsed[sid]
            j = col[start]
            for ph in (phase, ALL_PHASES):
                self_t[(ph, leaf)][j] += period
                for fn in {f[0] for f in frames}:
                    total_t[(ph, fn)][j] += period
                    count[(ph, fn)] += 1
            for f in frames:
                obj.setdefault(f[0], f[3])
        keys = sorted(total_t)
        zeros = np.zeros(n)
        sv = np.stack([self_t.get(k, zeros) for k in keys])
        tv = np.stack([total_t[k] for k in keys])
        s_est, s_lo, s_hi = mean_intervals(sv, b, gen)
        t_est, t_lo, t_hi = mean_intervals(tv, b, gen)
        mods = (modules or {}).get(str(cell), {})
        for i, (ph, fn) in enumerate(keys):
            pkg = package_of(fn) if obj.get(fn, "").startswith("/") and "kernel" not in \
                obj.get(fn, "") else ""
            rows.append({"cell": cell, "phase": ph, "function": fn, "package": pkg,
                         "module": mods.get(pkg, "std" if pkg and "." not in
                                            pkg.split("/")[0] and pkg != "main" else "")
                         if pkg else "",
                         "object": obj.get(fn, ""), "starts": n, "samples": count[(ph, fn)],
                         "self_ns": s_est[i], "self_ci95_low_ns": s_lo[i],
                         "self_ci95_high_ns": s_hi[i], "total_ns": t_est[i],
                         "total_ci95_low_ns": t_lo[i], "total_ci95_high_ns": t_hi[i],
                         "ci_rule": RULE_RUNS})
    return pd.DataFrame(rows, columns=PROFILE_COLUMNS)


ROOT_SHARE = 0.9  # a function on this much of every start's time is a root, not an answer


def function_effects(profile: pd.DataFrame, summary: pd.DataFrame, axes: Sequence[str],
                     baseline: Mapping[str, str], axis_values: Mapping[str, Sequence[str]]
                     ) -> pd.DataFrame:
    """What each knob moved, to the function: over every pair of profiled cells that differ
    only in one axis (effects.pairs_of), the mean change of each function's total CPU time per
    start (phase `all`) with a ci95 (stats.intervals.mean_difference), pooled (app `all`) and
    per app; sorted by the change's size within a knob."""
    if profile.empty or summary.empty:
        return pd.DataFrame(columns=FUNCTION_EFFECTS_COLUMNS)
    t = profile[profile["phase"] == ALL_PHASES]
    by_cell = {c: g.set_index("function") for c, g in t.groupby("cell")}
    whole = {c: float(g["self_ns"].sum()) for c, g in by_cell.items()}
    sm = summary[summary["cell"].isin(list(by_cell))].copy()
    sm = sm[sm["timer"] == main_timer(sm["timer"].unique())] if len(sm) else sm
    for a in axes:
        if a in sm:
            sm[a] = sm[a].astype(str)
    rows = []
    for axis, v, base_v, cache, scope, sp in pair_groups(sm, axes, baseline, axis_values):
        rows += _moved(sp, by_cell, whole, axis, v, base_v, scope, cache)
    return pd.DataFrame(rows, columns=FUNCTION_EFFECTS_COLUMNS)


def _moved(pairs: Sequence[tuple[dict[str, Any], dict[str, Any]]],
           by_cell: Mapping[str, pd.DataFrame], whole: Mapping[str, float], axis: str,
           value: str, base_v: str, app: str, cache: str) -> list[dict[str, Any]]:
    """Each function's mean change over these pairs (a function one cell lacks counts 0)."""
    none = Interval(0.0, 0.0, 0.0)

    def iv(cell: str, fn: str) -> Interval:
        g = by_cell[cell]
        if fn not in g.index:
            return none
        r = g.loc[fn]
        return Interval(float(r["total_ns"]), float(r["total_ci95_low_ns"]),
                        float(r["total_ci95_high_ns"]))

    fns = set().union(*(set(by_cell[p[0]["cell"]].index) | set(by_cell[p[1]["cell"]].index)
                        for p in pairs))
    objects = {fn: str(g.loc[fn, "object"]) for g in by_cell.values() for fn in g.index}
    out = []
    for fn in fns:
        # a root (on nearly all of a start) moves with everything: not an answer
        if any(iv(p[0]["cell"], fn).estimate >= ROOT_SHARE * whole[p[0]["cell"]]
               for p in pairs):
            continue
        d = mean_difference([(iv(p[0]["cell"], fn), iv(p[1]["cell"], fn)) for p in pairs])
        out.append({"axis": axis, "value": value, "baseline_value": base_v, "app": app,
                    "cache": cache, "function": fn, "object": objects.get(fn, ""),
                    "pairs": len(pairs), "delta_ns": d.estimate, "ci95_low_ns": d.low,
                    "ci95_high_ns": d.high, "ci_rule": d.rule})
    out.sort(key=lambda r: -abs(r["delta_ns"]))
    return out


def top_moved(fe: pd.DataFrame, axis: str, value: str, cache: str, app: str = ALL_APPS
              ) -> str:
    """'_dl_relocate_object +0.31 ms [+0.27, +0.35]': the function whose time per start the
    knob moved most, where its interval excludes no change ('' otherwise)."""
    if fe.empty:
        return ""
    d = fe[(fe["axis"] == axis) & (fe["value"].astype(str) == str(value))
           & (fe["cache"] == cache) & (fe["app"] == app)]
    d = d[(d["ci95_low_ns"] > 0) | (d["ci95_high_ns"] < 0)]
    if d.empty:
        return ""
    r = d.loc[d["delta_ns"].abs().idxmax()]
    return (f"{r['function']} {r['delta_ns'] / 1e6:+.2f} ms [{r['ci95_low_ns'] / 1e6:+.2f}, "
            f"{r['ci95_high_ns'] / 1e6:+.2f}]")
