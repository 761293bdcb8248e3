"""`gostartbench run`: the main job (also what `nox -s bench` calls).

matrix → build → plan.json → pytest + pytest-benchmark over bench/ (the timing) → inittrace
runs → cells.csv/run.json final → statistics, charts and report from the files.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from gostartbench import __version__, build, hostinfo, matrix, results, tools
from gostartbench.bench import RUN_DIR_ENV
from gostartbench.errors import InputError
from gostartbench.matrix import Cell, Matrix
from gostartbench.measure import RunSpec, SpawnExecutor
from gostartbench.progress import Progress

EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130


def find_bench_dir(matrix_file: Path) -> Path:
    """bench/ next to the matrix file or above it, or the one beside this package's source."""
    cands = [Path.cwd(), *[matrix_file.parent, *matrix_file.parent.parents]]
    cands.append(Path(__file__).resolve().parents[2])
    for d in cands:
        if (d / "bench" / "test_startup.py").is_file():
            return d / "bench"
    raise InputError("cannot find bench/test_startup.py (run from the gostartbench checkout)",
                     key="bench")


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


def run_command(args: argparse.Namespace) -> int:
    resume = Path(args.resume) if args.resume else None
    if resume is not None:
        if not (resume / results.RUN_JSON).is_file():
            raise InputError(f"{resume} is not a run folder (no run.json)", key="--resume")
        prev = results.read_json(resume / results.RUN_JSON)
        mfile = resume / "matrix.yaml"
        mx = matrix.load(mfile, installed_toolchains=tools.installed_toolchains())
        mx = dataclasses.replace(mx, file=Path(prev["matrix"]["file"]))
        s = prev["settings"]
        mx = dataclasses.replace(mx, measure=matrix.Measure(**{
            **s["measure"], "cpus": tuple(s["measure"]["cpus"]) if s["measure"]["cpus"] else None
        }))
        expr = s.get("select")
        run_dir = resume
    else:
        mx = matrix.load(args.matrix, installed_toolchains=tools.installed_toolchains())
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


def _run(mx: Matrix, cells: list[Cell], run_dir: Path, expr: str | None,
         prev: dict[str, Any] | None, args: argparse.Namespace) -> int:
    run_dir.mkdir(parents=True, exist_ok=True)
    if prev is None:
        results.write_atomic(run_dir / "matrix.yaml", mx.text)
    started = prev["start"] if prev else dt.datetime.now().astimezone().isoformat()
    run_json: dict[str, Any] = {
        "id": run_dir.name, "start": started, "end": None, "status": "running",
        "gostartbench": __version__,
        "command": sys.argv,
        "host": hostinfo.host_facts(tools.cache_dir()),
        "tools": {**tools.tool_versions(), "python": platform.python_version()},
        "matrix": {"file": str(mx.file), "sha256": mx.sha256, "copy": "matrix.yaml",
                   "warnings": list(mx.warnings)},
        "settings": {"measure": dataclasses.asdict(mx.measure), "select": expr,
                     "baseline": mx.baseline, "axes": mx.axis_names},
        "resumed": (prev.get("resumed", []) if prev else []) + (
            [dt.datetime.now().astimezone().isoformat()] if prev else []),
    }
    run_json["warnings"] = hostinfo.host_warnings(run_json["host"], mx.measure.cpus)
    phases: dict[str, float] = {}
    run_json["phases_s"] = phases  # where the run's time went
    t_phase = time.monotonic()

    def phase(name: str) -> None:
        nonlocal t_phase
        now = time.monotonic()
        phases[name] = round(now - t_phase, 2)
        t_phase = now

    results.write_json(run_dir / results.RUN_JSON, run_json)

    # Build
    nbin = len({c.build_id for c in cells})
    prog = Progress(nbin, "build")
    built = build.build_cells(mx, cells, getattr(args, "jobs", None),
                              progress=lambda d, t, cur: prog.update(d, cur))
    prog.close()
    rows = build.cell_rows(mx, cells, built)
    if mx.measure.timer == "hyperfine":
        for r in rows:
            if r["status"] == "ok" and r.get("cache") == "cold":
                r["status"], r["reason"] = "skipped", (
                    "timer=hyperfine measures warm cells only (it cannot evict the page cache "
                    "between runs without a shell); use timer: both or spawn for cold cells")
    cols = cells_columns(mx)
    results.write_csv(run_dir / results.CELLS_CSV, rows, cols)
    gover = sorted({r.go_version for r in built.values() if r.go_version})
    run_json["tools"]["go"] = gover
    phase("build")

    # The instrument's floor (and, with calibration: full, its accuracy and noise), recorded
    # with every run.
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
    phase("calibration")
    results.write_json(run_dir / results.RUN_JSON, run_json)

    # Plan
    plan = make_plan(mx, cells, built, rows)
    results.write_json(run_dir / results.PLAN_JSON, plan)

    # Time: pytest + pytest-benchmark over bench/
    interrupted = False
    code = _pytest(run_dir, find_bench_dir(mx.file))
    if code == 2:
        interrupted = True
    phase("timing")

    # Init breakdown (separate, untimed runs)
    if not interrupted and mx.measure.inittrace and mx.measure.inittrace_runs > 0:
        try:
            _inittrace(run_dir, plan, mx.measure.inittrace_runs)
        except KeyboardInterrupt:
            interrupted = True
    phase("inittrace")

    # Final cell statuses: build results + measuring failures
    failures = measured_failures(run_dir)
    for r in rows:
        if r["status"] == "ok" and r["cell"] in failures:
            r["status"], r["reason"] = "failed", failures[r["cell"]]
    results.write_csv(run_dir / results.CELLS_CSV, rows, cols)
    nfail = [r for r in rows if r["status"] == "failed"]
    run_json.update(
        end=dt.datetime.now().astimezone().isoformat(),
        status="interrupted" if interrupted else "complete",
        cells={"total": len(rows), "ok": sum(r["status"] == "ok" for r in rows),
               "failed": len(nfail), "skipped": sum(r["status"] == "skipped" for r in rows)},
    )
    run_json["host"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    results.write_json(run_dir / results.RUN_JSON, run_json)

    if not getattr(args, "no_report", False) and not interrupted:
        from gostartbench import report

        try:
            out = report.make_report(run_dir)
            print(f"report: {out}")
        except Exception as exc:  # the data is safe on disk; say so and how to redo
            print(f"gostartbench: the report failed ({exc!r}); the run's files are complete: "
                  f"redo it with `gostartbench report {run_dir}`", file=sys.stderr)
        phase("report")
        results.write_json(run_dir / results.RUN_JSON, run_json)
    print(f"run folder: {run_dir}")
    if nfail:
        print(f"{len(nfail)} cell(s) failed:", file=sys.stderr)
        for r in nfail:
            print(f"  {r['cell']}: {r['reason']}", file=sys.stderr)
    if interrupted:
        print(f"interrupted: finished samples are on disk; continue with "
              f"`gostartbench run --resume {run_dir}`", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_FAILED if nfail else EXIT_OK


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


def _pytest(run_dir: Path, bench_dir: Path) -> int:
    import pytest

    old = os.environ.get(RUN_DIR_ENV)
    os.environ[RUN_DIR_ENV] = str(run_dir.resolve())
    try:
        argv = [
            str(bench_dir / "test_startup.py"), "-s", "-rsfE", "-p", "no:cacheprovider",
            "--rootdir", str(bench_dir), "-c", os.devnull, "-q",
            f"--benchmark-json={run_dir / results.BENCH_JSON}",
            "--benchmark-sort=name", "--benchmark-columns=min,median,mean,stddev,rounds",
            "--benchmark-group-by=group", "-W", "ignore::pytest_benchmark.logger."
            "PytestBenchmarkWarning",
        ]
        if os.environ.get("CI") in ("true", "1"):
            argv.append("--benchmark-disable-gc")
        return int(pytest.main(argv))
    finally:
        if old is None:
            os.environ.pop(RUN_DIR_ENV, None)
        else:
            os.environ[RUN_DIR_ENV] = old


def measured_failures(run_dir: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for r in results.read_csv_rows(run_dir / results.SAMPLES_CSV):
        if r["ok"] != "true" and r["timer"] == "spawn":
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
