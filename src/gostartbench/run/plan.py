"""The run plan (plan.json): what is measured, per cell — kept in the run folder for `--resume`
and for `pytest bench/` — and which cells a timer cannot measure."""

from __future__ import annotations

import dataclasses
import os
import subprocess
from pathlib import Path
from typing import Any

from gostartbench import build
from gostartbench.host import tools
from gostartbench.matrix import Cell, Matrix
from gostartbench.matrix.axes import EVICTED, PREWARM
from gostartbench.measure import RunSpec, container
from gostartbench.results.plan import Plan
from gostartbench.run.schedule import (
    HYPERFINE_INSIDE_REASON,
    HYPERFINE_READY_REASON,
    hyperfine_skip_reason,
)


def make_plan(mx: Matrix, cells: list[Cell], built: dict[str, build.BuildResult],
              rows: list[dict[str, Any]], boxes: Boxes | None = None) -> Plan:
    """plan.json: per runnable cell what is run (argv, its own environment, expect, ready, cache,
    and for a container cell where: `inside`, or the engine's argv) and every cell's status."""
    boxes = boxes or Boxes()
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
        unit: dict[str, Any] = {}
        img = boxes.images.get(c.id)
        if img is not None and boxes.engine is not None:
            own_env = {**dict(app.env), **c.run_env}
            cpus = c.run_values.get("container_cpus")
            if c.run_values.get("launch") == "engine":
                # the engine on the host, the cell's variables passed into the container
                # a server timed to ready is stopped by a signal the engine may not pass on
                # in time: each run's container is named and removed before the next
                name = container.ready_name(boxes.run_id, c.id) if app.ready else ""
                unit = {"argv": container.engine_argv(boxes.engine, img, boxes.run_id, cpus,
                                                      own_env, app.args, name), "env": {},
                        "after": container.remove_argv(boxes.engine, name) if name else []}
            else:
                ins = container.inside(boxes.engine, img, boxes.run_id, cpus,
                                       str(r.get("interpreter") or ""))
                unit = {"argv": [container.IN_IMAGE, *app.args], "inside":
                        dataclasses.asdict(ins)}
            # the binary as the host sees it in the image's layer: eviction and read-back
            unit["binary"] = str(img.host_binary)
            unit["container"] = img.base
        units.append({
            # Only the cell's own variables: the harness's environment is added when the run
            # starts (plan.json is kept with the results and must not copy secrets).
            "cell": c.id, "binary": str(b.binary), "argv": list(spec.argv),
            "env": {**dict(app.env), **c.run_env},
            "timeout_s": spec.timeout_s,
            "ready": dataclasses.asdict(app.ready) if app.ready else None,
            "cpus": list(spec.cpus) if spec.cpus else None,
            "expect": dataclasses.asdict(app.expect), "cache": c.cache,
            "prewarm": PREWARM.get(c.cache, ""),
            "drop_caches": mx.measure.evict == "drop-caches" and c.cache in EVICTED,
            # for traced runs: symbols come from the `go build` output (before strip and UPX)
            "program": str(b.program or b.binary), "toolchain": c.toolchain,
            # the cell its ratio is to: a precision target is met on that ratio's interval
            "baseline": base.id if base else None,
            **unit,
        })
    return Plan(measure=dataclasses.asdict(mx.measure), units=tuple(units), cells=cells_meta,
                order=tuple(c.id for c in cells))


@dataclasses.dataclass(frozen=True)
class Boxes:
    """The containers of a run: the engine, the run's id (its containers' label) and each
    container cell's image."""

    engine: container.Engine | None = None
    run_id: str = ""
    images: dict[str, container.CellImage] = dataclasses.field(default_factory=dict)


def prepare_containers(mx: Matrix, cells: list[Cell], rows: list[dict[str, Any]], run_id: str,
                       note: Any = print) -> tuple[Boxes, dict[str, Any]]:
    """The engine and each container cell's image (built once per binary and base image);
    a cell whose image cannot be made fails with the engine's answer; where no engine can run
    containers here, every container cell is skipped with why (failed under CI=true, so CI
    never passes by skipping). Returns the boxes and what run.json records."""
    todo = [c for c in cells if c.run_values.get("container", container.NONE) != container.NONE]
    if not todo:
        return Boxes(), {}
    by_cell = {r["cell"]: r for r in rows}
    engine, why = container.find_engine(mx.measure.engine)
    why = container.usable(engine, why)
    if why and mx.measure.engine != "docker":
        # installed by the bench where it may, like upx: podman and the host setting it needs
        ok, line = tools.install_debian_tools(container.cgroup_problem()[0], containers=True)
        note(f"containers: {line}")
        if ok:
            engine, why = container.find_engine(mx.measure.engine)
            why = container.usable(engine, why)
    if why or engine is None:
        status = "failed" if os.environ.get("CI") == "true" else "skipped"
        for c in todo:
            r = by_cell[c.id]
            if r["status"] == "ok":
                r["status"], r["reason"] = status, f"containers cannot run here: {why}"
        note(f"containers: {len(todo)} cell(s) {status}: {why} (see `gostartbench doctor`)")
        return Boxes(), {"skipped": why}
    images: dict[str, container.CellImage] = {}
    made: dict[tuple[str, str], container.CellImage | str] = {}
    for c in todo:
        r = by_cell[c.id]
        if r["status"] != "ok":
            continue
        base = c.run_values["container"]
        key = (str(r["sha256"]), base)
        if key not in made:
            try:
                made[key] = container.cell_image(engine, base, Path(str(r["binary"])),
                                                 str(r["sha256"]))
            except (container.ContainerError, OSError, subprocess.TimeoutExpired) as exc:
                made[key] = str(exc)
        got = made[key]
        if isinstance(got, str):
            r["status"], r["reason"] = "failed", got
        else:
            images[c.id] = got
    info = {"engine": engine.name, "version": engine.version, "path": engine.path,
            "run_args": list(engine.run_args), "label": f"{container.RUN_LABEL}={run_id}",
            "images": {f"{img.base}": {"size_bytes": img.size_bytes} for img in images.values()}}
    return Boxes(engine, run_id, images), info


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
        inside = c.run_values.get("container", "none") != "none" and \
            c.run_values.get("launch", "direct") == "direct"
        why = hyperfine_skip_reason(c.cache, mx.app(c.app).ready is not None, inside)
        if not why or r["status"] != "ok":
            continue
        if timer == "hyperfine":
            r["status"], r["reason"] = "skipped", why
        elif why in (HYPERFINE_READY_REASON, HYPERFINE_INSIDE_REASON):
            warnings.append(f"{c.id}: not timed by hyperfine: {why}")
    return warnings
