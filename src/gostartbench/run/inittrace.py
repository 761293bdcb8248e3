"""Package init by package: separate, untimed GODEBUG=inittrace=1 runs (timed runs are never
traced) into inittrace.csv."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gostartbench import results
from gostartbench.measure import SpawnExecutor, parse_inittrace
from gostartbench.results.plan import Plan
from gostartbench.run.bench import unit_from_plan


def run_inittrace(run_dir: Path, plan: Plan, runs: int,
                  failures: dict[str, str]) -> None:
    """`runs` untimed GODEBUG=inittrace=1 runs of every binary (one warm cell each) that did
    not fail (`failures`: cell → reason); per-package init rows into inittrace.csv."""
    seen: set[str] = set()
    todo = []
    for u in plan.units:
        bid = plan.cells[u["cell"]]["build_id"]
        if bid in seen or u["cell"] in failures or u["cache"] != "warm" or u.get("container"):
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
