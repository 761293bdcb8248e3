"""plan.json, written and read here only: what a run measures, per cell — kept in the run folder
for `--resume` and for `pytest bench/`. The run stage makes its content (run/plan.py); every
reader gets a typed `Plan`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gostartbench.results.files import read_json, write_json
from gostartbench.results.schema import PLAN_JSON


@dataclass(frozen=True)
class Plan:
    """A run's plan: the measure settings, one unit per runnable cell (its argv, its own
    environment, expect, ready, cache, container and baseline), every cell's build facts and
    status, and the cells in matrix order."""

    measure: dict[str, Any]
    units: tuple[dict[str, Any], ...]
    cells: dict[str, dict[str, Any]]
    order: tuple[str, ...]

    def unit(self, cell: str) -> dict[str, Any] | None:
        """The unit of a cell, or None when it is not runnable."""
        return next((u for u in self.units if u["cell"] == cell), None)

    def to_json(self) -> dict[str, Any]:
        return {"measure": self.measure, "units": list(self.units), "cells": self.cells,
                "order": list(self.order)}


def write_plan(run_dir: Path, plan: Plan) -> None:
    """plan.json of a run folder (atomically)."""
    write_json(run_dir / PLAN_JSON, plan.to_json())


def read_plan(run_dir: Path) -> Plan:
    """plan.json of a run folder (OSError when missing, ValueError when it is not a plan)."""
    raw = read_json(run_dir / PLAN_JSON)
    if not isinstance(raw, dict) or not {"order", "units", "measure", "cells"} <= set(raw):
        raise ValueError(f"{run_dir / PLAN_JSON} is not a gostartbench run plan")
    return Plan(measure=dict(raw["measure"]), units=tuple(raw["units"]),
                cells=dict(raw["cells"]), order=tuple(raw["order"]))
