"""`gostartbench run`: the main job (also what `nox -s bench` calls).

matrix → build → plan.json → pytest + pytest-benchmark over the packaged cases (the timing) →
inittrace runs → cells.csv/run.json final → statistics, charts and report from the files.

The run's verdict is pytest's: every selected case's outcome (collected with pytest's hooks,
see pytest_plugin.Outcomes) decides each cell's final status and the run's:
- complete: every case passed, or was skipped with the reason cells.csv records (exit 0);
- cells_failed: some cells' programs failed (wrong output, crash, hang, build), each with its
  reason in cells.csv; the harness worked (exit 1);
- failed: the harness itself failed — a collection, usage or internal error of pytest, or a
  case that errored outside the program under test (exit 1, one-line reason in run.json);
- interrupted: Ctrl-C or SIGTERM (exit 130; `--resume` continues).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import platform
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import gostartbench.cases
from gostartbench import __version__, build, hostinfo, matrix, results, tools
from gostartbench.bench import RUN_DIR_ENV
from gostartbench.errors import InputError
from gostartbench.matrix import Cell, Matrix
from gostartbench.measure import RunSpec, SpawnExecutor
from gostartbench.progress import Progress
from gostartbench.pytest_plugin import Outcomes

EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130
STATUS_COMPLETE, STATUS_CELLS_FAILED, STATUS_FAILED, STATUS_INTERRUPTED = (
    "complete", "cells_failed", "failed", "interrupted")
CASES_FILE = Path(gostartbench.cases.__file__).with_name("test_startup.py")


def new_run_id() -> str:
    now = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{now}-{platform.machine()}"


def _measure_overrides(m: Matrix, args: argparse.Namespace) -> Matrix:
    kw: dict[str, Any] = {}
    for k in ("runs", "warmup", "timer", "order"):
        v = getattr(args, k, None)
        if v is not None:
            if k in ("runs",) and v < 1:
                raise InputError(f"--{k} must be a positive integer, not {v}", key=f"--{k}")
            if k == "warmup" and v < 0:
                raise InputError(f"--warmup must be ≥ 0, not {v}", key="--warmup")
            kw[k] = v
    if not kw:
        return m
    return dataclasses.replace(m, measure=dataclasses.replace(m.measure, **kw))


def _max_cells(args: argparse.Namespace) -> int:
    return getattr(args, "max_cells", None) or matrix.MAX_CELLS_DEFAULT


def run_command(args: argparse.Namespace) -> int:
    """`gostartbench run`: load (or resume), lock the folder, run the phases."""
    resume = Path(args.resume) if args.resume else None
    if resume is not None:
        if not (resume / results.RUN_JSON).is_file():
            raise InputError(f"{resume} is not a run folder (no run.json)", key="--resume")
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
        mx = _measure_overrides(mx, args)
        expr = args.expr
        run_dir = Path(args.out) if args.out else Path("results") / new_run_id()
        if (run_dir / results.SAMPLES_CSV).exists():
            raise InputError(f"{run_dir} already holds a run; use --resume {run_dir} to "
                             "complete it, or another --out", key="--out")
        prev = None
    cells = matrix.select(mx.cells, expr)
    if not cells:
        raise InputError(f"-k {expr!r} selects no cell", key="-k")
    try:
        lock = results.RunLock(run_dir)
    except BlockingIOError:
        pid = (run_dir / ".lock").read_text().strip() if (run_dir / ".lock").exists() else "?"
        raise InputError(f"{run_dir} is in use by another run (pid {pid}); wait for it or use "
                         "another --out", key="--out") from None
    from gostartbench.bench import install_sigterm

    install_sigterm()  # SIGTERM stops the run like Ctrl-C: finished samples kept, exit 130
    try:
        return _run(mx, cells, run_dir, expr, prev, args)
    except KeyboardInterrupt:
        _mark_interrupted(run_dir)
        print(f"interrupted: finished samples are on disk; continue with "
              f"`gostartbench run --resume {run_dir}`", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        lock.release()


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
    outcomes = _pytest(run_dir, list(getattr(args, "pytest_args", None) or []))
    clock.phase("timing")
    interrupted = outcomes.interrupted
    if not interrupted and mx.measure.inittrace and mx.measure.inittrace_runs > 0:
        try:
            _inittrace(run_dir, plan, mx.measure.inittrace_runs)
        except KeyboardInterrupt:
            interrupted = True
    clock.phase("inittrace")
    status, failure = verdict(outcomes, rows, run_dir)
    if interrupted:
        status = STATUS_INTERRUPTED
    results.write_csv(run_dir / results.CELLS_CSV, rows, cols)
    _finish(run_json, rows, status, failure, run_dir)
    if not getattr(args, "no_report", False) and not interrupted:
        _report(run_dir)
        clock.phase("report")
        results.write_json(run_dir / results.RUN_JSON, run_json)
    return _epilogue(run_dir, rows, status, failure)


def _now() -> str:
    return dt.datetime.now().astimezone().isoformat()


def _start(mx: Matrix, run_dir: Path, expr: str | None, prev: dict[str, Any] | None
           ) -> dict[str, Any]:
    """run.json as the run starts (status running), with the host and tool facts."""
    run_dir.mkdir(parents=True, exist_ok=True)
    if prev is None:
        results.write_atomic(run_dir / "matrix.yaml", mx.text)
    run_json: dict[str, Any] = {
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
                    ) -> tuple[list[dict[str, Any]], list[str], dict[str, Any]]:
    """Build every binary (cached), write cells.csv and plan.json."""
    nbin = len({c.build_id for c in cells})
    prog = Progress(nbin, "build")
    built = build.build_cells(mx, cells, getattr(args, "jobs", None),
                              progress=lambda d, t, cur: prog.update(d, cur))
    prog.close()
    rows = build.cell_rows(mx, cells, built)
    run_json["warnings"] += timer_skips(mx, cells, rows)
    cols = cells_columns(mx)
    results.write_csv(run_dir / results.CELLS_CSV, rows, cols)
    run_json["tools"]["go"] = sorted({r.go_version for r in built.values() if r.go_version})
    plan = make_plan(mx, cells, built, rows)
    results.write_json(run_dir / results.PLAN_JSON, plan)
    results.write_json(run_dir / results.RUN_JSON, run_json)
    return rows, cols, plan


def timer_skips(mx: Matrix, cells: list[Cell], rows: list[dict[str, Any]]) -> list[str]:
    """timer=hyperfine: cells it cannot time are skipped with the reason (cold ones, ready-mode
    ones). timer=both: those cells are timed by the spawn helper only; returned as warnings."""
    from gostartbench.session import HYPERFINE_COLD_REASON, HYPERFINE_READY_REASON

    timer = mx.measure.timer
    if timer == "spawn":
        return []
    by_id = {c.id: c for c in cells}
    warnings: list[str] = []
    for r in rows:
        c = by_id[r["cell"]]
        why = ""
        if c.cache != "warm":
            why = HYPERFINE_COLD_REASON
        elif mx.app(c.app).ready is not None:
            why = HYPERFINE_READY_REASON
        if not why or r["status"] != "ok":
            continue
        if timer == "hyperfine":
            r["status"], r["reason"] = "skipped", why
        elif why == HYPERFINE_READY_REASON:
            warnings.append(f"{c.id}: not timed by hyperfine: {why}")
    return warnings


def _calibration(mx: Matrix, run_dir: Path, run_json: dict[str, Any]) -> None:
    """The instrument's floor (and, with calibration: full, its accuracy and noise), recorded
    with every run."""
    try:
        from gostartbench import calibrate

        if mx.measure.calibration != "off":
            run_json["harness_floor"] = calibrate.quick_floor(mx.measure.cpus)
        if mx.measure.calibration == "full":
            cal = calibrate.calibrate(runs=100, cpus=mx.measure.cpus)
            run_json["calibration"] = {"floor": cal["floor"], "ladder_met": cal["ladder_met"],
                                       "noise": cal["noise"], "aa": cal["aa"]}
            results.write_json(run_dir / "calibration.json", cal)
    except Exception as exc:  # context, not the measurement: a failure is recorded, not fatal
        run_json["harness_floor"] = {"error": str(exc)}
    results.write_json(run_dir / results.RUN_JSON, run_json)


def verdict(outcomes: Outcomes, rows: list[dict[str, Any]], run_dir: Path
            ) -> tuple[str, str | None]:
    """The run's status and one-line failure from what pytest saw; updates each cell's row
    (status, reason) from its case's outcome."""
    failed_runs = measured_failures(run_dir)
    harness: list[str] = list(outcomes.session_errors)
    for r in rows:
        o = outcomes.cases.get(r["cell"])
        if o is None:
            if r["status"] == "ok" and not outcomes.interrupted:
                r["status"], r["reason"] = "failed", "not run: pytest reported no outcome"
            continue
        if o.outcome == "failed":
            r["status"], r["reason"] = "failed", o.reason or failed_runs.get(r["cell"], "")
        elif o.outcome == "error":
            r["status"], r["reason"] = "failed", o.reason
            harness.append(f"{r['cell']}: {o.reason}")
        elif o.outcome in ("skipped", "deselected") and r["status"] == "ok":
            r["status"], r["reason"] = "skipped", o.reason
    code = outcomes.exitstatus
    if code in (3, 4) and not harness:
        harness.append({3: "pytest internal error", 4: "pytest usage error"}[code])
    if code == 5 and any(r["status"] == "ok" for r in rows):
        harness.append("pytest collected no case")
    if harness:
        more = f" (and {len(harness) - 1} more)" if len(harness) > 1 else ""
        return STATUS_FAILED, harness[0] + more
    if any(r["status"] == "failed" for r in rows):
        return STATUS_CELLS_FAILED, None
    return STATUS_COMPLETE, None


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


def skipped_groups(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Skipped cells grouped by reason (each reason says how to fix it), largest first."""
    count = Counter(r["reason"] for r in rows if r["status"] == "skipped")
    return [{"cells": n, "reason": why} for why, n in count.most_common()]


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


def cells_columns(mx: Matrix) -> list[str]:
    cols = list(results.CELLS_COLUMNS)
    i = cols.index("build_id") + 1
    return cols[:i] + list(mx.axis_names) + cols[i:]


def make_plan(mx: Matrix, cells: list[Cell], built: dict[str, build.BuildResult],
              rows: list[dict[str, Any]]) -> dict[str, Any]:
    by_cell = {r["cell"]: r for r in rows}
    units = []
    cells_meta: dict[str, Any] = {}
    for c in cells:
        r = by_cell[c.id]
        b = built.get(c.build_id)
        app = mx.app(c.app)
        cells_meta[c.id] = {
            "app": c.app, "toolchain": c.toolchain, "axes": c.axes, "status": r["status"],
            "reason": r["reason"], "binary": r["binary"], "size_bytes": r.get("size_bytes"),
            "build_id": c.build_id,
        }
        if r["status"] != "ok" or b is None or b.binary is None:
            continue
        spec = RunSpec(
            argv=(str(b.binary), *app.args), env={},
            timeout_s=mx.measure.timeout_s, ready=app.ready, cpus=mx.measure.cpus,
            expect=app.expect,
        )
        units.append({
            # Only the cell's own variables: the harness's environment is added when the run
            # starts (plan.json is kept with the results and must not copy secrets).
            "cell": c.id, "binary": str(b.binary), "argv": list(spec.argv),
            "env": {**dict(app.env), **c.run_env},
            "timeout_s": spec.timeout_s,
            "ready": dataclasses.asdict(app.ready) if app.ready else None,
            "cpus": list(spec.cpus) if spec.cpus else None,
            "expect": dataclasses.asdict(app.expect), "cache": c.cache,
        })
    return {"measure": dataclasses.asdict(mx.measure), "units": units, "cells": cells_meta,
            "order": [c.id for c in cells]}


def pytest_argv(run_dir: Path, extra: list[str]) -> list[str]:
    """pytest's arguments for the timing: the packaged cases, pytest-benchmark's JSON into the
    run folder, and every run saved to pytest-benchmark's storage beside the run folders
    (`<parent>/.benchmarks`) so that `pytest-benchmark compare` works across runs."""
    storage = (run_dir.resolve().parent / ".benchmarks").as_uri()
    argv = [
        str(CASES_FILE), "-s", "-rsfE", "-p", "no:cacheprovider",
        "--rootdir", str(CASES_FILE.parent), "-c", os.devnull, "-q",
        f"--benchmark-json={run_dir / results.BENCH_JSON}",
        f"--benchmark-storage={storage}", f"--benchmark-save={run_dir.name}",
        "--benchmark-sort=name", "--benchmark-columns=min,median,mean,stddev,rounds",
        "--benchmark-group-by=group",
        # A failed cell's case never calls the fixture; gostartbench itself is imported
        # before pytest starts (so not assert-rewritten): neither is news to the user.
        "-W", "ignore::pytest_benchmark.logger.PytestBenchmarkWarning",
        "-W", "ignore::pytest.PytestAssertRewriteWarning",
    ]
    if os.environ.get("CI") in ("true", "1"):
        argv.append("--benchmark-disable-gc")
    return argv + extra


def _pytest(run_dir: Path, extra: list[str]) -> Outcomes:
    """Time the plan: pytest + pytest-benchmark in this process; what it saw of each case."""
    import pytest

    from gostartbench import pytest_plugin

    outcomes = Outcomes()
    plugins: list[object] = [outcomes]
    if os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
        plugins.append(pytest_plugin)  # the entry point is not loaded then
    old = os.environ.get(RUN_DIR_ENV)
    os.environ[RUN_DIR_ENV] = str(run_dir.resolve())
    try:
        code = pytest.main(pytest_argv(run_dir, extra), plugins=plugins)
        if outcomes.exitstatus is None:  # usage errors end before the session starts
            outcomes.exitstatus = int(code)
            if int(code) != 0 and not outcomes.session_errors:
                outcomes.session_errors.append(f"pytest exited with code {int(code)} before "
                                               "running any case (usage error?)")
        return outcomes
    finally:
        if old is None:
            os.environ.pop(RUN_DIR_ENV, None)
        else:
            os.environ[RUN_DIR_ENV] = old


def measured_failures(run_dir: Path) -> dict[str, str]:
    """cell → the reason of its first failed run on disk (any timer)."""
    out: dict[str, str] = {}
    for r in results.read_csv_rows(run_dir / results.SAMPLES_CSV):
        if r["ok"] != "true":
            out.setdefault(r["cell"], r["reason"])
    return out


def _inittrace(run_dir: Path, plan: dict[str, Any], runs: int) -> None:
    from gostartbench.bench import unit_from_plan
    from gostartbench.measure import parse_inittrace

    failures = measured_failures(run_dir)
    seen: set[str] = set()
    todo = []
    for u in plan["units"]:
        bid = plan["cells"][u["cell"]]["build_id"]
        if bid in seen or u["cell"] in failures or u["cache"] != "warm":
            continue
        seen.add(bid)
        todo.append(u)
    rows: list[dict[str, Any]] = []
    ex = SpawnExecutor()
    try:
        for u in todo:
            env = dict(u["env"])
            env["GODEBUG"] = ",".join(x for x in (env.get("GODEBUG", ""), "inittrace=1") if x)
            unit = unit_from_plan({**u, "env": env})
            for i in range(runs):
                res = ex.run(unit.spec)
                for pkg in parse_inittrace(res.stderr):
                    rows.append({"cell": u["cell"], "run": i, **pkg})
    finally:
        ex.close()
    results.write_csv(run_dir / results.INITTRACE_CSV, rows, results.INITTRACE_COLUMNS)
