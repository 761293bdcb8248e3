"""Profiled starts: per cell, `measure.profile_runs` starts under the sampler
(measure/profile.py), runs of their own after the timing, into profile_samples.csv (one row a
sample), profile_stacks.csv (each distinct stack once) and profile_starts.csv (one row a
start); what run.json records (the sampler, its rate, the cells profiled and those not, why)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from gostartbench import results
from gostartbench.measure import profile as sampler
from gostartbench.results.plan import Plan
from gostartbench.results.schema import (
    PROFILE_SAMPLES_COLUMNS,
    PROFILE_STACKS_COLUMNS,
    PROFILE_STARTS_COLUMNS,
    frames_text,
)
from gostartbench.run.bench import unit_from_plan


def run_profiles(run_dir: Path, plan: Plan, runs: int, hz: int, failures: dict[str, str]
                 ) -> dict[str, Any]:
    """Profile every cell that did not fail (`failures`: cell → reason) and runs on the host;
    the raw files are written, and what run.json records is returned."""
    t0 = time.monotonic()
    why = sampler.sampler_problem()
    if why:
        return {"skipped": why}
    rate = sampler.sample_hz(hz)
    not_profiled = {u["cell"]: "inside a container image: not profiled yet (the sampler "
                    "would see it from the host; the image's cells are timed and traced)"
                    for u in plan.units if u.get("container")}
    not_profiled.update({u["cell"]: "a prewarm condition: not profiled"
                         for u in plan.units if u.get("prewarm")})
    stacks: dict[str, int] = {}
    samples: list[dict[str, Any]] = []
    starts: list[dict[str, Any]] = []
    done: list[str] = []
    with tempfile.TemporaryDirectory(prefix="gsb-profile-") as work:
        for u in plan.units:
            cell = u["cell"]
            if cell in failures or cell in not_profiled:
                continue
            unit = unit_from_plan(u)
            try:
                got, taken = sampler.record(unit.spec, unit.binary, runs, rate,
                                            Path(work) / cell, evict=unit.cache == "cold")
            except (RuntimeError, OSError) as exc:
                not_profiled[cell] = f"the sampler failed: {exc}"
                continue
            done.append(cell)
            starts += [{"cell": cell, "start": i, "pid": s.pid, "how": s.how, "ok": s.ok,
                        "wall_ns": s.wall_ns, "samples": 0} for i, s in enumerate(got)]
            first = len(starts) - len(got)
            for s in taken:
                key = frames_text(s.stack)
                sid = stacks.setdefault(key, len(stacks))
                samples.append({"cell": cell, "start": s.start,
                                "thread": "main" if s.main_thread else "other",
                                "t_ns": s.t_ns, "period_ns": s.period_ns, "stack_id": sid})
                starts[first + s.start]["samples"] += 1
    results.write_csv(run_dir / results.PROFILE_SAMPLES_CSV, samples, PROFILE_SAMPLES_COLUMNS)
    results.write_csv(run_dir / results.PROFILE_STACKS_CSV,
                      [{"stack_id": i, "frames": k} for k, i in stacks.items()],
                      PROFILE_STACKS_COLUMNS)
    results.write_csv(run_dir / results.PROFILE_STARTS_CSV, starts, PROFILE_STARTS_COLUMNS)
    return {"sampler": f"perf record -e {sampler.EVENT} -g (frame pointers), "
                       f"CLOCK_MONOTONIC", "hz": rate, "runs": runs, "cells": len(done),
            "not_profiled": not_profiled, "wall_s": round(time.monotonic() - t0, 1)}
