"""The run plan (plan.json): what is measured, per cell — kept in the run folder for `--resume`
and for `pytest bench/` — and which cells a timer cannot measure."""

from __future__ import annotations

import dataclasses
from typing import Any

from gostartbench import build
from gostartbench.matrix import Cell, Matrix
from gostartbench.measure import RunSpec
from gostartbench.run.schedule import HYPERFINE_READY_REASON, hyperfine_skip_reason


def make_plan(mx: Matrix, cells: list[Cell], built: dict[str, build.BuildResult],
              rows: list[dict[str, Any]]) -> dict[str, Any]:
    """plan.json: per runnable cell what is run (argv, its own environment, expect, ready, cache)
    and every cell's status."""
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
        base = mx.baseline_of(c)
        units.append({
            # Only the cell's own variables: the harness's environment is added when the run
            # starts (plan.json is kept with the results and must not copy secrets).
            "cell": c.id, "binary": str(b.binary), "argv": list(spec.argv),
            "env": {**dict(app.env), **c.run_env},
            "timeout_s": spec.timeout_s,
            "ready": dataclasses.asdict(app.ready) if app.ready else None,
            "cpus": list(spec.cpus) if spec.cpus else None,
            "expect": dataclasses.asdict(app.expect), "cache": c.cache,
            # for traced runs: symbols come from the `go build` output (before strip and UPX)
            "program": str(b.program or b.binary), "toolchain": c.toolchain,
            # the cell its ratio is to: a precision target is met on that ratio's interval
            "baseline": base.id if base else None,
        })
    return {"measure": dataclasses.asdict(mx.measure), "units": units, "cells": cells_meta,
            "order": [c.id for c in cells]}


def timer_skips(mx: Matrix, cells: list[Cell], rows: list[dict[str, Any]]) -> list[str]:
    """timer=hyperfine: cells it cannot time are skipped with the reason (cold ones, ready-mode
    ones). timer=both: those cells are timed by the spawn helper only; returned as warnings."""
    timer = mx.measure.timer
    if timer == "spawn":
        return []
    by_id = {c.id: c for c in cells}
    warnings: list[str] = []
    for r in rows:
        c = by_id[r["cell"]]
        why = hyperfine_skip_reason(c.cache, mx.app(c.app).ready is not None)
        if not why or r["status"] != "ok":
            continue
        if timer == "hyperfine":
            r["status"], r["reason"] = "skipped", why
        elif why == HYPERFINE_READY_REASON:
            warnings.append(f"{c.id}: not timed by hyperfine: {why}")
    return warnings
