"""Traced runs: where each cell's start goes (phases.csv), separate from the timed runs and
interleaved across cells like the timed rounds. The cost of a stop is measured on this host
first and subtracted; where ptrace is refused the phases are skipped with the reason and the
run goes on."""

from __future__ import annotations

import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from gostartbench import results
from gostartbench.build.calib import calib_programs
from gostartbench.matrix import DEFAULT_TOOLCHAIN
from gostartbench.measure import SpawnExecutor, evict, normalise_warm, uprobe
from gostartbench.measure.pagecache import cold_paths
from gostartbench.measure.spec import RunSpec
from gostartbench.measure.trace import (
    BOUNDS,
    MARKS,
    PHASES,
    Costs,
    Target,
    cost_of,
    mark_costs,
    phases,
    ptrace_refused,
    stages,
    stop_cost,
    target_for,
    trace_run,
)
from gostartbench.progress import Progress
from gostartbench.results.plan import Plan
from gostartbench.run.bench import unit_from_plan
from gostartbench.run.schedule import Unit, shuffled_rounds


def run_phases(run_dir: Path, plan: Plan, runs: int, failures: dict[str, str],
               seed: int = 0) -> dict[str, Any]:
    """`runs` traced runs of every cell that did not fail (`failures`: cell → reason), into
    phases.csv as they finish; returns what run.json records (stop cost, method, runs, wall
    seconds, or why skipped)."""
    t0 = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="gsb-trace-"))
    try:
        why = ptrace_refused(work)
        if why:
            return {"skipped": why}
        # The engine's run is not traced (its time is the engine's; the program's start in
        # the image is, in the `direct` cell, by the tracer running inside the container); nor
        # is a prewarm condition (the tracer evicts, it does not prewarm).
        untraced = {u["cell"]: "launched by the engine: not traced (its direct cell is)"
                    for u in plan.units if u.get("container") and not u.get("inside")}
        untraced.update({u["cell"]: "a prewarm condition: not traced"
                         for u in plan.units if u.get("prewarm")})
        units = [u for u in plan.units
                 if u["cell"] not in failures and u["cell"] not in untraced]
        targets = _targets(units)
        noop = calib_programs()["noop"]
        probe = target_for(noop, noop, DEFAULT_TOOLCHAIN)
        cost: dict[str, Any] = stop_cost(noop, probe, work) if isinstance(probe, Target) \
            else {"stop_ns": 0.0, "runs": 0, "method": "none"}
        cost["stages"] = stop_cost(noop, probe, work, with_stages=True) \
            if isinstance(probe, Target) else {"stop_ns": 0.0}
        # Each phase mark's own stop cost is measured and recorded (it differs by mark: a stop
        # in a process with several threads costs more; the report names the instrument it
        # believes by them), but one average is what is subtracted: measured on an Intel
        # Xeon VM, subtracting each mark's own cost (from a no-op) left the instruments
        # further apart in real programs than the average (docs/validation.md).
        if isinstance(probe, Target):
            cost["by_mark"] = mark_costs(noop, probe, work, seed=seed)
        phase_costs: Costs = float(cost["stop_ns"])
        _traced_rounds(run_dir, units, targets, runs, phase_costs,
                       float(cost["stages"]["stop_ns"]), work, seed)
        second = _probed_rounds(run_dir, units, targets, runs, seed,
                                (noop, probe) if isinstance(probe, Target) else None)
        no_target = {**untraced, **{c: t for c, t in targets.items() if isinstance(t, str)}}
        # marks that never fired (an address the binary's symbols gave wrongly, a path not
        # taken): their phases are missing, named here and in the report, never drawn
        got: dict[str, set[str]] = {}
        for r in results.read_csv_rows(run_dir / results.PHASES_CSV):
            if not r.get("stage"):
                got.setdefault(r["cell"], set()).add(r["phase"])
        for c, have in got.items():
            lost = [p for p in PHASES[:-1] if p not in have]  # teardown: not when ready
            if lost:
                no_target[c] = (f"phases not traced: {', '.join(lost)} (their marks never "
                                "fired)")
        # marks a binary's symbols could not place: their phases are missing too
        for c, t in targets.items():
            lost = [label for label, _ in MARKS if isinstance(t, Target)
                    and label not in t.addresses]
            if lost:
                no_target[c] = (f"marks not placed: {', '.join(lost)} (not found in the "
                                f"binary's {t.symbols_from if isinstance(t, Target) else ''} "
                                "symbols): their phases are not traced")
        # A stage needs both its functions: one a binary's Go version lacks is named once.
        missing = {c: "no " + ", ".join(t.missing) for c, t in targets.items()
                   if isinstance(t, Target) and t.missing}
        return {"stop_cost": cost, "runs": runs, "wall_s": round(time.monotonic() - t0, 2),
                "subtracted": True, "cells_without_marks": no_target,
                "stage_functions_missing": missing, "second_instrument": second}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _targets(units: list[dict[str, Any]]) -> dict[str, Target | str]:
    """The tracer's target per cell (symbols looked up once per binary)."""
    by_binary: dict[str, Target | str] = {}
    out: dict[str, Target | str] = {}
    for u in units:
        if u["binary"] not in by_binary:
            by_binary[u["binary"]] = target_for(Path(u["binary"]),
                                                Path(u.get("program") or u["binary"]),
                                                u.get("toolchain", ""))
        out[u["cell"]] = by_binary[u["binary"]]
    return out


def _traced_rounds(run_dir: Path, units: list[dict[str, Any]],
                   targets: dict[str, Target | str], runs: int, stop_ns: Costs,
                   stage_stop_ns: float, work: Path, seed: int) -> None:
    """Rounds of one traced run per cell, shuffled each round; rows appended as they come."""
    specs = {u["cell"]: unit_from_plan(u) for u in units}
    warm = sorted({s.binary for s in specs.values() if s.cache == "warm"})
    normalise_warm(warm)
    writer = results.AppendCsv(run_dir / results.PHASES_CSV, results.PHASES_COLUMNS)
    # Phases come from runs with the four phase marks only; the runtime's stages from rounds
    # of their own (half as many again), interleaved after them: a stage mark's stop inside a
    # phase would move that phase by its cost's error.
    stage_rounds = max(5, runs // 2)
    rounds = iter(shuffled_rounds(list(specs), runs + stage_rounds, random.Random(seed + 2)))
    prog = Progress((runs + stage_rounds) * len(units), "phases", quiet=not units)
    done = 0
    try:
        for r in range(runs + stage_rounds):
            with_stages = r >= runs
            for cell in next(rounds):
                unit = specs[cell]
                target = targets[cell]
                ev, back = cold_paths(unit.cache, unit.binary, warm)
                if ev is not None:
                    evict(ev)
                tr = trace_run(unit.spec, target if isinstance(target, Target) else None, work,
                               stages=with_stages)
                if back is not None:
                    normalise_warm([back])
                how = tr.method + ("" if not isinstance(target, Target)
                                   else f", symbols from {target.symbols_from}")
                rows = [{"cell": cell, "run": r, "phase": st.phase, "stage": st.name,
                         "start_ns": start, "duration_ns": dur, "method": how,
                         "stop_cost_ns": round(stage_stop_ns)}
                        for st, start, dur in stages(tr.marks, stage_stop_ns)] \
                    if with_stages else \
                    [{"cell": cell, "run": r, "phase": ph, "start_ns": start,
                      "duration_ns": dur, "method": how,
                      "stop_cost_ns": round(cost_of(stop_ns, BOUNDS[ph][0]))
                      if BOUNDS[ph][0] != "start" else 0}
                     for ph, start, dur in phases(tr.marks, unit.spec.ready is not None,
                                                  stop_ns)]
                writer.write_many(rows)
                done += 1
                prog.update(done, cell)
    finally:
        writer.close()
        prog.close()


def _probed_rounds(run_dir: Path, units: list[dict[str, Any]],
                   targets: dict[str, Target | str], runs: int, seed: int,
                   noop: tuple[Path, Target] | None = None) -> dict[str, Any]:
    """The second instrument (eBPF uprobes, measure/uprobe.py) on the same warm cells: `runs`
    probed runs each, interleaved, into phases_uprobe.csv; what run.json records (the cells
    probed, those that could not be and why, wall seconds), or why it was skipped."""
    t0 = time.monotonic()
    why = uprobe.uprobe_refused()
    if why:
        return {"skipped": why}
    probed: dict[str, Unit] = {}
    refused: dict[str, str] = {}
    for u in units:
        t = targets[u["cell"]]
        if u["cache"] != "warm" or not isinstance(t, Target):
            continue
        if u.get("inside"):
            refused[u["cell"]] = ("in a container: the uprobes match a program by its host "
                                  "path, the container runs it by the image's")
            continue
        no = uprobe.probe_refused(Path(u["binary"]))
        if no:
            refused[u["cell"]] = no
        else:
            probed[u["cell"]] = unit_from_plan(u)
    if not probed:
        return {"skipped": "no warm cell can be probed", "cells_not_probed": refused}
    by_binary = {p.binary: targets[c] for c, p in probed.items()}
    order = [c for rnd in shuffled_rounds(list(probed), runs, random.Random(seed + 3))
             for c in rnd]
    ex = SpawnExecutor()

    def run_all() -> None:
        for cell in order:
            ex.run(probed[cell].spec)

    own: dict[str, Any] = {}
    try:
        if noop is not None:  # each uprobe's own cost, as the tracer's stops'
            own = uprobe.probe_costs(
                noop[0], noop[1],
                lambda b: ex.run(RunSpec(argv=(str(b),), env={"PATH": "/usr/bin:/bin"})),
                seed=seed)
        seen = uprobe.probe_runs({b: t for b, t in by_binary.items() if isinstance(t, Target)},
                                 run_all)
    except RuntimeError as exc:
        return {"skipped": str(exc)}
    finally:
        ex.close()
    # Runs of a binary come back in the order they were started: cells that share a binary
    # (run axes) take them in turn.
    cells_of: dict[str, list[str]] = {}
    for cell in order:
        cells_of.setdefault(str(probed[cell].binary), []).append(cell)
    rows: list[dict[str, Any]] = []
    count: dict[str, int] = {}
    # measured and recorded, not subtracted (as the tracer's per-mark costs; see run_phases)
    probe_ns: Costs = 0.0
    for run in seen:
        queue = cells_of.get(run.binary) or []
        if not queue:
            continue
        cell = queue.pop(0)
        i = count[cell] = count.get(cell, -1) + 1
        ready = probed[cell].spec.ready is not None
        rows += [{"cell": cell, "run": i, "phase": ph, "stage": "", "start_ns": a,
                  "duration_ns": d, "method": "uprobe (bpftrace)",
                  "stop_cost_ns": round(cost_of(probe_ns, BOUNDS[ph][0]))}
                 for ph, a, d in uprobe.run_phases(run, ready, probe_ns)]
        rows += [{"cell": cell, "run": i, "phase": ph, "stage": st, "start_ns": a,
                  "duration_ns": d, "method": "uprobe (bpftrace)", "stop_cost_ns": 0}
                 for st, ph, a, d in uprobe.run_stages(run)]
    results.write_csv(run_dir / results.PHASES_UPROBE_CSV, rows, results.PHASES_COLUMNS)
    return {"method": "uprobe (bpftrace)", "runs": runs, "cells": sorted(count),
            "cells_not_probed": refused, "wall_s": round(time.monotonic() - t0, 2),
            "probe_cost": own}
