"""The run's verdict is pytest's: every selected case's outcome (collected with pytest's hooks,
run/plugin.py Outcomes) decides each cell's final status and the run's:
- complete: every case passed, or was skipped with the reason cells.csv records (exit 0);
- cells_failed: some cells' programs failed (wrong output, crash, hang, build), each with its
  reason in cells.csv; the harness worked (exit 1);
- failed: the harness itself failed — a collection, usage or internal error of pytest, or a
  case that errored outside the program under test (exit 1, one-line reason in run.json);
- interrupted: Ctrl-C or SIGTERM (exit 130; `--resume` continues).
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

import gostartbench.run.cases
from gostartbench import results
from gostartbench.run.bench import RUN_DIR_ENV
from gostartbench.run.plugin import Outcomes

STATUS_COMPLETE, STATUS_CELLS_FAILED, STATUS_FAILED, STATUS_INTERRUPTED = (
    "complete", "cells_failed", "failed", "interrupted")
PYTEST_BENCHMARK_STORAGE = ".benchmarks"  # pytest-benchmark's storage, inside the run folder
CASES_FILE = Path(gostartbench.run.cases.__file__).with_name("test_startup.py")


def pytest_argv(run_dir: Path, extra: list[str]) -> list[str]:
    """pytest's arguments for the timing: the packaged cases, pytest-benchmark's JSON into the
    run folder, and its saved run in a storage inside the run folder (`RUN_DIR/.benchmarks`):
    whatever keeps the run folder (a CI artifact) keeps it too; `pytest-benchmark compare`
    takes the saved files of two runs by path."""
    storage = (run_dir.resolve() / PYTEST_BENCHMARK_STORAGE).as_uri()
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


def run_pytest(run_dir: Path, extra: list[str]) -> Outcomes:
    """Time the plan: pytest + pytest-benchmark in this process; what it saw of each case."""
    import pytest

    from gostartbench.run import plugin as pytest_plugin

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


def verdict(outcomes: Outcomes, rows: list[dict[str, Any]], failed_runs: dict[str, str]
            ) -> tuple[str, str | None]:
    """The run's status and one-line failure from what pytest saw; updates each cell's row
    (status, reason) from its case's outcome (`failed_runs`: measured_failures, the reason
    of a cell's first failed run where pytest's message has none)."""
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


def measured_failures(run_dir: Path) -> dict[str, str]:
    """cell → the reason of its first failed run on disk (any timer)."""
    out: dict[str, str] = {}
    for r in results.read_csv_rows(run_dir / results.SAMPLES_CSV):
        if r["ok"] != "true":
            out.setdefault(r["cell"], r["reason"])
    return out


def skipped_groups(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Skipped cells grouped by reason (each reason says how to fix it), largest first."""
    count = Counter(r["reason"] for r in rows if r["status"] == "skipped")
    return [{"cells": n, "reason": why} for why, n in count.most_common()]
