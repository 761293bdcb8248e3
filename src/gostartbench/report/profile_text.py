"""The profiles as files users open and as a report section: profiles/<cell>.pb.gz (pprof's
profile.proto, gzipped: `go tool pprof` and speedscope read it; a `phase` label on every
sample) from the raw samples, and per baseline cell the phases' CPU time per start with the
function that takes most of each."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gostartbench.analysis import Analysis
from gostartbench.analysis.profile import ALL_PHASES, phase_of
from gostartbench.measure.profile import write_pprof
from gostartbench.results.schema import PHASE_ORDER, PROFILES_DIR, frames_of

PROFILE_HEAD = ["phase", "CPU per start, ms", "its costliest function (self)",
                "self per start, ms [ci95]"]
PROFILE_TEXT = (
    "Where each start's CPU time goes, to the function: the profiled starts (runs of their own, "
    "never timed runs) sampled by perf's software clock, every thread, kernel and user stacks; "
    "a sample's phase is read from its own stack. CPU time only: a wait for the disk is "
    "off-CPU and not sampled. Open a cell's file with `go tool pprof -top FILE` (or "
    "`-http :8080 FILE`; `-tagfocus phase=package_init` keeps one phase).")


def write_profiles(a: Analysis, run_dir: Path) -> list[Path]:
    """profiles/<cell>.pb.gz for every profiled cell."""
    d = a.data
    if d.profile_samples.empty or d.profile_stacks.empty:
        return []
    stacks = {int(s): frames_of(str(t)) for s, t in
              zip(d.profile_stacks["stack_id"], d.profile_stacks["frames"].fillna(""),
                  strict=True)}
    out_dir = run_dir / PROFILES_DIR
    out_dir.mkdir(exist_ok=True)
    written = []
    for cell, g in d.profile_samples.groupby("cell", sort=True):
        frames: dict[tuple[str, str, int, str], int] = {}
        agg: dict[tuple[int, str], list[int]] = {}
        for sid, period in zip(g["stack_id"].astype(int), g["period_ns"].astype(int),
                               strict=True):
            st = stacks[sid]
            phase = phase_of([f[0] for f in st], [f[3] for f in st])
            v = agg.setdefault((sid, phase), [0, 0])
            v[0] += 1
            v[1] += period
            for f in st:
                frames.setdefault(f, len(frames))
        prof: dict[str, Any] = {
            "sample_types": [["samples", "count"], ["cpu", "nanoseconds"]],
            "period_type": ["cpu", "nanoseconds"],
            "period": int(g["period_ns"].median()),
            "frames": [{"function": f[0], "file": f[1], "line": f[2], "mapping": f[3]}
                       for f in frames],
            "samples": [{"stack": [frames[f] for f in stacks[sid]], "values": v,
                         "labels": {"phase": ph}} for (sid, ph), v in agg.items()],
            "comments": [f"gostartbench {cell}: {g['start'].nunique()} starts, "
                         f"{len(g)} samples"]}
        path = out_dir / f"{cell}.pb.gz"
        write_pprof(path, prof)
        written.append(path)
    return written


def profile_blocks(a: Analysis) -> list[tuple[str, str, list[list[str]]]]:
    """Per baseline cell with a profile: (label, the pprof command, rows by phase)."""
    t = a.profile
    if t.empty:
        return []
    s = a.summary
    base = set(s.loc[s["cell"] == s["baseline"], "cell"]) if len(s) and "baseline" in s else \
        set(t["cell"])
    labels = dict(zip(s["cell"], s["label"], strict=False)) if len(s) else {}
    out = []
    for cell, g in t.groupby("cell", sort=True):
        if cell not in base:
            continue
        rows = []
        for ph in [*PHASE_ORDER, "other", ALL_PHASES]:
            p = g[g["phase"] == ph]
            if p.empty:
                continue
            top = p.sort_values("self_ns", ascending=False).iloc[0]
            rows.append([ph, f"{p['self_ns'].sum() / 1e6:.3f}", str(top["function"]),
                         f"{top['self_ns'] / 1e6:.3f} [{top['self_ci95_low_ns'] / 1e6:.3f}, "
                         f"{top['self_ci95_high_ns'] / 1e6:.3f}]"])
        out.append((str(labels.get(cell, cell)),
                    f"go tool pprof -top {PROFILES_DIR}/{cell}.pb.gz", rows))
    return out

