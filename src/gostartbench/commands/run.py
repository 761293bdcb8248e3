"""`gostartbench run`: the main job (also what `nox -s bench` calls), as a list of phases.

matrix → build → plan.json → calibration floor → pytest + pytest-benchmark over the packaged
cases (the timing) → inittrace runs → the verdict (run/verdict.py: pytest's outcomes decide
cells.csv and run.json) → statistics, charts and report from the files.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from gostartbench import __version__, build, matrix, results
from gostartbench.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, InputError
from gostartbench.host import hostinfo, tools
from gostartbench.matrix import Cell, Matrix
from gostartbench.measure import container
from gostartbench.progress import Progress
from gostartbench.results.plan import Plan, write_plan
from gostartbench.results.schema import ORDER_BALANCED
from gostartbench.run.bench import RUN_DIR_ENV
from gostartbench.run.inittrace import run_inittrace
from gostartbench.run.phases import run_phases
from gostartbench.run.plan import make_plan, prepare_containers, timer_skips
from gostartbench.run.profile import run_profiles
from gostartbench.run.verdict import (
    CASES_FILE,
    STATUS_COMPLETE,
    STATUS_FAILED,
    STATUS_INTERRUPTED,
    measured_failures,
    run_pytest,
    skipped_groups,
    verdict,
)
from gostartbench.stats import intervals


def new_run_id() -> str:
    """A run folder name: local time and the machine's architecture."""
    now = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{now}-{platform.machine()}"


def measure_overrides(m: Matrix, args: argparse.Namespace) -> Matrix:
    kw: dict[str, Any] = {}
    for k in ("runs", "warmup", "timer", "order"):
        v = getattr(args, k, None)
        if v is not None:
            if k in ("runs",) and v < 1:
                raise InputError(f"--{k} must be a positive integer, not {v}", key=f"--{k}")
            if k == "warmup" and v < 0:
                raise InputError(f"--warmup must be ≥ 0, not {v}", key="--warmup")
            kw[k] = v
    for k, lo, hi in (("precision", 0.0, 0.5), ("budget_s", 0.0, float("inf"))):
        v = getattr(args, k, None)
        if v is not None:
            if not lo < v < hi:
                raise InputError(f"--{k.replace('_', '-')} must be in ({lo:g}, {hi:g}), not {v}",
                                 key=f"--{k.replace('_', '-')}")
            kw[k] = v
    if getattr(args, "max_runs", None) is not None:
        kw["max_runs"] = args.max_runs
    if not kw:
        return m
    new = dataclasses.replace(m.measure, **kw)
    if new.max_runs < new.runs:
        raise InputError(f"max_runs ({new.max_runs}) is below runs ({new.runs})", key="--max-runs")
    if (new.precision or new.budget_s) and (new.order != "interleaved" or new.timer == "hyperfine"):
        raise InputError("--precision and --budget-s need order interleaved and the spawn timer",
                         key="--precision")
    return dataclasses.replace(m, measure=new)


def _max_cells(args: argparse.Namespace) -> int:
    return getattr(args, "max_cells", None) or matrix.MAX_CELLS_DEFAULT


def run_command(args: argparse.Namespace) -> int:
    """`gostartbench run`: load (or resume), lock the folder, run the phases."""
    resume = Path(args.resume) if args.resume else None
    if resume is not None:
        results.require_run_dir(resume, key="--resume")
        prev = results.read_json(resume / results.RUN_JSON)
        mfile = resume / "matrix.yaml"
        mx = matrix.load(mfile, installed_toolchains=tools.installed_toolchains(),
                         max_cells=_max_cells(args))
        mx = dataclasses.replace(mx, file=Path(prev["matrix"]["file"]))
        s = prev["settings"]
        mx = dataclasses.replace(mx, measure=matrix.Measure(**{
            **s["measure"], "cpus": tuple(s["measure"]["cpus"]) if s["measure"]["cpus"] else None
        }))
        expr = s.get("select")
        run_dir = resume
    else:
        mx = matrix.load(args.matrix, installed_toolchains=tools.installed_toolchains(),
                         max_cells=_max_cells(args))
        mx = measure_overrides(mx, args)
        expr = args.expr
        run_dir = Path(args.out) if args.out else Path("results") / new_run_id()
        if (run_dir / results.SAMPLES_CSV).exists():
            raise InputError(f"{run_dir} already holds a run; use --resume {run_dir} to "
                             "complete it, or another --out", key="--out")
        prev = None
    cells = matrix.select(mx.cells, expr)
    if not cells:
        raise InputError(f"-k {expr!r} selects no cell", key="-k")
    rules = budget_rules(getattr(args, "fail_on", None) or [])
    if rules:  # a judged run: its caps never end the timing before a verdict can be reached
        mx = dataclasses.replace(mx, measure=dataclasses.replace(
            mx.measure, verdict_span_s=intervals.FULL_SPAN_S))
    code = execute(mx, cells, run_dir, expr, prev, args)
    if not rules or code == EXIT_INTERRUPTED or not (run_dir / results.SAMPLES_CSV).exists():
        return code
    return _judge_budgets(run_dir, rules, code)


def budget_rules(texts: list[str]) -> list[Any]:
    """`run --fail-on`: budgets only (a change needs a base: `gate` or `compare`)."""
    from gostartbench.report.rules import rules_from

    rules = rules_from(texts)
    for r in rules:
        if r.budget is None:
            raise InputError(f"--fail-on {r.text!r}: a change needs a base to compare with "
                             "(`gostartbench gate` or `compare`); `run` judges budgets such as "
                             "'startup>20ms', 'init>5ms', 'size>30MB'", key="--fail-on")
    return rules


def _judge_budgets(run_dir: Path, rules: list[Any], code: int) -> int:
    """Every budget on every measured cell; the verdict to stdout and budgets.md; the exit."""
    from gostartbench.report import analyse_run, gate
    from gostartbench.report.budgets import budget_findings
    from gostartbench.report.rules import exit_code, short_run_why

    a = analyse_run(run_dir, write=False)
    timer = results.main_timer(a.summary["timer"].unique()) if len(a.summary) else "spawn"
    s = a.summary[a.summary["timer"] == timer] if len(a.summary) else a.summary
    labels = dict(zip(s["cell"], s["label"], strict=False)) if len(s) else {}
    findings = budget_findings(a, rules, list(labels), lambda c: str(labels.get(c) or c),
                               short_run_why(a.samples), b=a.data.settings.bootstrap)
    md = gate.gate_markdown(findings, rules, a.min_effect, None).replace(
        "Startup gate", "Budgets")
    results.write_atomic(run_dir / "budgets.md", md)
    sys.stdout.write(md)
    verdict = exit_code(findings)
    return code if code != EXIT_OK else verdict


def execute(mx: Matrix, cells: list[Cell], run_dir: Path, expr: str | None,
            prev: dict[str, Any] | None, args: argparse.Namespace) -> int:
    """Run the phases into `run_dir` under its lock; Ctrl-C and SIGTERM keep what was
    measured (exit 130). `run` and `gate` both come here."""
    try:
        lock = results.RunLock(run_dir)
    except BlockingIOError:
        pid = (run_dir / ".lock").read_text().strip() if (run_dir / ".lock").exists() else "?"
        raise InputError(f"{run_dir} is in use by another run (pid {pid}); wait for it or use "
                         "another --out", key="--out") from None
    from gostartbench.run.bench import install_sigterm

    install_sigterm()  # SIGTERM stops the run like Ctrl-C: finished samples kept, exit 130
    try:
        return _run(mx, cells, run_dir, expr, prev, args)
    except KeyboardInterrupt:
        _mark_interrupted(run_dir)
        print(f"interrupted: finished samples are on disk; continue with "
              f"`gostartbench run --resume {run_dir}`", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        _remove_containers(mx, run_dir)
        lock.release()


def _remove_containers(mx: Matrix, run_dir: Path) -> None:
    """Nothing started is left running: every container labelled with this run's id (the
    timing's helpers, an engine run the timeout or an interrupt cut short) is removed."""
    if all(c.run_values.get("container", "none") == "none" for c in mx.cells):
        return
    engine, _ = container.find_engine(mx.measure.engine)
    n = container.cleanup(engine, container.run_id(run_dir))
    if n:
        print(f"containers: removed {n} left by this run", file=sys.stderr)


def _mark_interrupted(run_dir: Path) -> None:
    try:
        run = results.read_json(run_dir / results.RUN_JSON)
    except (OSError, ValueError):
        return
    run.update(status="interrupted", end=dt.datetime.now().astimezone().isoformat())
    results.write_json(run_dir / results.RUN_JSON, run)


@dataclasses.dataclass
class _Clock:
    """Where the run's time went: run.json `phases_s`."""

    phases: dict[str, float]
    t: float = dataclasses.field(default_factory=time.monotonic)

    def phase(self, name: str) -> None:
        """Record the time since the last phase under `name`."""
        now = time.monotonic()
        self.phases[name] = round(now - self.t, 2)
        self.t = now


def _run(mx: Matrix, cells: list[Cell], run_dir: Path, expr: str | None,
         prev: dict[str, Any] | None, args: argparse.Namespace) -> int:
    """The phases of a run, in order; each writes what it found before the next starts."""
    run_json = _start(mx, run_dir, expr, prev)
    clock = _Clock(run_json["phases_s"])
    rows, cols, plan = _build_and_plan(mx, cells, run_dir, run_json, args)
    clock.phase("build")
    if getattr(args, "plan_only", False):
        run_json.update(status="planned", end=_now())
        results.write_json(run_dir / results.RUN_JSON, run_json)
        print(f"plan: {run_dir / results.PLAN_JSON}; time it with `pytest bench/` and "
              f"{RUN_DIR_ENV}={run_dir}, or `gostartbench run --resume {run_dir}`")
        return EXIT_OK
    _calibration(mx, run_dir, run_json)
    clock.phase("calibration")
    outcomes = run_pytest(run_dir, list(getattr(args, "pytest_args", None) or []))
    clock.phase("timing")
    if (run_dir / results.STOPPING_JSON).is_file():  # runs per cell and why each stopped
        run_json["stopping"] = results.read_json(run_dir / results.STOPPING_JSON)
    run_json["carryover"] = _carryover(mx, run_dir)
    interrupted = outcomes.interrupted
    failed = measured_failures(run_dir)  # samples.csv read once, after the timing
    if not interrupted and mx.measure.inittrace and mx.measure.inittrace_runs > 0:
        try:
            run_inittrace(run_dir, plan, mx.measure.inittrace_runs, failed)
        except KeyboardInterrupt:
            interrupted = True
    clock.phase("inittrace")
    if not interrupted and mx.measure.phases and mx.measure.phase_runs > 0:
        try:
            run_json["phases"] = run_phases(run_dir, plan, mx.measure.phase_runs, failed,
                                            mx.measure.seed)
        except KeyboardInterrupt:
            interrupted = True
    clock.phase("phases")
    if not interrupted and mx.measure.profile:
        try:
            run_json["profile"] = run_profiles(run_dir, plan, mx.measure.profile_runs,
                                               mx.measure.profile_hz, failed)
        except KeyboardInterrupt:
            interrupted = True
    clock.phase("profile")
    status, failure = verdict(outcomes, rows, failed)
    if interrupted:
        status = STATUS_INTERRUPTED
    results.write_csv(run_dir / results.CELLS_CSV, rows, cols)
    _finish(run_json, rows, status, failure, run_dir)
    if not getattr(args, "no_report", False) and not interrupted:
        _report(run_dir)
        clock.phase("report")
        results.write_json(run_dir / results.RUN_JSON, run_json)
    return _epilogue(run_dir, rows, status, failure)


def _carryover(mx: Matrix, run_dir: Path) -> dict[str, Any]:
    """run.json `carryover`: the timed starts' order and, per cell, carryover.csv's figures
    (the analysis's own table, from samples.csv as written)."""
    from gostartbench.analysis.carryover import carryover

    order = ORDER_BALANCED if mx.measure.order == "interleaved" else mx.measure.order
    table = carryover(results.read_samples(run_dir), bootstrap=mx.measure.bootstrap,
                      seed=mx.measure.seed)
    keep = ("n_after_self", "n_after_other", "share_after_self", "p50_after_self_ms",
            "p50_after_other_ms", "ratio", "ci95_low", "ci95_high", "why")
    cells = {str(r["cell"]): {k: (None if isinstance(r[k], float) and not math.isfinite(r[k])
                                  else round(r[k], 5) if isinstance(r[k], float) else r[k])
                              for k in keep} for r in table.to_dict("records")}
    return {"order": order, "cells": cells}


def _now() -> str:
    return dt.datetime.now().astimezone().isoformat()


def _start(mx: Matrix, run_dir: Path, expr: str | None, prev: dict[str, Any] | None
           ) -> dict[str, Any]:
    """run.json as the run starts (status running), with the host and tool facts."""
    run_dir.mkdir(parents=True, exist_ok=True)
    if prev is None:
        results.write_atomic(run_dir / "matrix.yaml", mx.text)
    run_json: dict[str, Any] = {
        "schema_version": results.SCHEMA_VERSION,
        "id": run_dir.name, "start": prev["start"] if prev else _now(), "end": None,
        "status": "running", "failure": None,
        "gostartbench": __version__,
        "command": sys.argv,
        "host": hostinfo.host_facts(tools.cache_dir()),
        "tools": {**tools.tool_versions(), "python": platform.python_version()},
        "matrix": {"file": str(mx.file), "sha256": mx.sha256, "copy": "matrix.yaml",
                   "warnings": list(mx.warnings)},
        "settings": {"measure": dataclasses.asdict(mx.measure), "select": expr,
                     "baseline": mx.baseline, "axes": mx.axis_names},
        "cases": str(CASES_FILE),  # the pytest cases that timed this run
        "resumed": (prev.get("resumed", []) if prev else []) + ([_now()] if prev else []),
        "phases_s": {},
    }
    run_json["warnings"] = hostinfo.host_warnings(run_json["host"], mx.measure.cpus)
    results.write_json(run_dir / results.RUN_JSON, run_json)
    return run_json


def _build_and_plan(mx: Matrix, cells: list[Cell], run_dir: Path, run_json: dict[str, Any],
                    args: argparse.Namespace
                    ) -> tuple[list[dict[str, Any]], list[str], Plan]:
    """Build every binary (cached), write cells.csv and plan.json."""
    nbin = len({c.build_id for c in cells})
    prog = Progress(nbin, "build")
    built = build.build_cells(mx, cells, getattr(args, "jobs", None),
                              progress=lambda d, t, cur: prog.update(d, cur), note=prog.note)
    prog.close()
    rows = build.cell_rows(mx, cells, built)
    run_json["warnings"] += timer_skips(mx, cells, rows)
    boxes, run_json["containers"] = prepare_containers(
        mx, cells, rows, container.run_id(run_dir),
        note=lambda text: print(text, file=sys.stderr))
    cols = results.cells_columns(mx.axis_names)
    results.write_csv(run_dir / results.CELLS_CSV, rows, cols)
    results.write_csv(run_dir / results.DEPS_CSV, build.deps_rows(built), results.DEPS_COLUMNS)
    run_json["tools"]["go"] = sorted({r.go_version for r in built.values() if r.go_version})
    plan = make_plan(mx, cells, built, rows, boxes)
    write_plan(run_dir, plan)
    results.write_json(run_dir / results.RUN_JSON, run_json)
    return rows, cols, plan


def _calibration(mx: Matrix, run_dir: Path, run_json: dict[str, Any]) -> None:
    """The instrument's floor (and, with calibration: full, its accuracy and noise), recorded
    with every run."""
    try:
        from gostartbench.commands import calibrate
        from gostartbench.run.calibration import engine_floor, quick_floor

        if mx.measure.calibration != "off":
            run_json["harness_floor"] = quick_floor(mx.measure.cpus)
            if run_json.get("containers", {}).get("engine"):
                run_json["containers"]["floor"] = engine_floor(
                    engine_name=mx.measure.engine, run_id=container.run_id(run_dir))
        if mx.measure.calibration == "full":
            cal = calibrate.calibrate(runs=100, cpus=mx.measure.cpus)
            run_json["calibration"] = {"floor": cal["floor"], "ladder_met": cal["ladder_met"],
                                       "noise": cal["noise"], "aa": cal["aa"]}
            results.write_json(run_dir / results.CALIBRATION_JSON, cal)
    except Exception as exc:  # context, not the measurement: a failure is recorded, not fatal
        run_json["harness_floor"] = {"error": str(exc)}
    results.write_json(run_dir / results.RUN_JSON, run_json)


def _finish(run_json: dict[str, Any], rows: list[dict[str, Any]], status: str,
            failure: str | None, run_dir: Path) -> None:
    run_json.update(
        end=_now(), status=status, failure=failure,
        cells={"total": len(rows), "ok": sum(r["status"] == "ok" for r in rows),
               "failed": sum(r["status"] == "failed" for r in rows),
               "skipped": sum(r["status"] == "skipped" for r in rows)},
        skipped_groups=skipped_groups(rows),
    )
    run_json["host"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    results.write_json(run_dir / results.RUN_JSON, run_json)


def _report(run_dir: Path) -> None:
    from gostartbench import report

    try:
        out = report.make_report(run_dir)
        print(f"report: {out}")
    except Exception as exc:  # the data is safe on disk; say so and how to redo
        print(f"gostartbench: the report failed ({exc!r}); the run's files are complete: "
              f"redo it with `gostartbench report {run_dir}`", file=sys.stderr)


def _epilogue(run_dir: Path, rows: list[dict[str, Any]], status: str, failure: str | None
              ) -> int:
    """The run's last lines: folder, skipped groups with their fix, failures; the exit code."""
    print(f"run folder: {run_dir}  (status: {status})")
    groups = skipped_groups(rows)
    if groups:
        print(f"{sum(g['cells'] for g in groups)} cell(s) skipped:", file=sys.stderr)
        for g in groups:
            print(f"  {g['cells']} × {g['reason']}", file=sys.stderr)
    nfail = [r for r in rows if r["status"] == "failed"]
    if nfail:
        print(f"{len(nfail)} cell(s) failed:", file=sys.stderr)
        for r in nfail:
            print(f"  {r['cell']}: {r['reason']}", file=sys.stderr)
    if status == STATUS_INTERRUPTED:
        print(f"interrupted: finished samples are on disk; continue with "
              f"`gostartbench run --resume {run_dir}`", file=sys.stderr)
        return EXIT_INTERRUPTED
    if status == STATUS_FAILED:
        print(f"gostartbench: the run failed: {failure}", file=sys.stderr)
    return EXIT_OK if status == STATUS_COMPLETE else EXIT_FAILED
