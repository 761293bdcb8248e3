"""The build stage: every distinct binary of the selected cells, built once (cached), with its
ELF facts. plan.py says how, steps.py runs the tools, cache.py keeps the results."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gostartbench.build import elfinfo
from gostartbench.build.cache import _TREE_CACHE, entry_dir, final_key, go_key, tree_hash
from gostartbench.build.plan import Plan, module_root, plan_for
from gostartbench.build.steps import _go_build, _post
from gostartbench.host.tools import get_toolchain
from gostartbench.matrix import Cell, Matrix

__all__ = [
    "_TREE_CACHE", "BuildResult", "Plan", "build_cells", "build_one", "cell_rows", "entry_dir",
    "final_key", "get_toolchain", "go_key", "mark_identical", "module_root", "plan_for",
    "tree_hash",
]


@dataclass(frozen=True)
class BuildResult:
    """One binary's build: status and reason, the binary in the cache, its ELF facts."""

    build_id: str
    status: str  # ok | failed | skipped
    reason: str = ""
    binary: Path | None = None
    key: str = ""
    build_s: float = 0.0
    cached: bool = False
    facts: elfinfo.ElfFacts | None = None
    go_version: str = ""
    buildinfo: dict[str, str] = field(default_factory=dict)
    pre_pack_linkage: str = ""  # linkage before UPX (a packed binary is always static)
    program: Path | None = None  # the `go build` output: same code, before strip and UPX
    argv: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)


def build_one(plan: Plan) -> BuildResult:
    """Build one plan's binary (go build, then strip and UPX), from the cache where it can."""
    if plan.skip:
        return BuildResult(plan.build_id, "skipped", plan.skip)
    try:
        tc = get_toolchain(plan.toolchain)
    except Exception as exc:  # an install failure is this cell's reason, not a crash
        return BuildResult(plan.build_id, "failed", f"toolchain {plan.toolchain}: {exc}")
    gokey = go_key(plan, tc)
    gometa = _go_build(plan, tc, gokey)
    key = gokey
    meta = gometa
    if gometa["status"] == "ok" and (plan.strip != "none" or plan.upx != "none"):
        key = final_key(gokey, plan)
        meta = _post(plan, gometa, gokey, key)
    cached = bool(meta.get("cached")) and bool(gometa.get("cached"))
    common: dict[str, Any] = dict(
        key=key, build_s=float(meta.get("build_s", 0.0)), cached=cached, go_version=tc.version,
        argv=tuple(gometa.get("argv", ())), env=dict(gometa.get("env", {})))
    if meta["status"] != "ok":
        return BuildResult(plan.build_id, "failed", meta.get("reason", "failed"), **common)
    binary = entry_dir(key) / plan.app
    facts = elfinfo.read_facts(binary)
    pre = elfinfo.read_facts(entry_dir(gokey) / plan.app).linkage if facts.packed else \
        facts.linkage
    status, reason = ("skipped", plan.runnable) if plan.runnable else ("ok", "")
    return BuildResult(plan.build_id, status, reason, binary=binary, facts=facts,
                       buildinfo=dict(meta.get("buildinfo", {})), pre_pack_linkage=pre,
                       program=entry_dir(gokey) / plan.app, **common)


def build_cells(matrix: Matrix, cells: Sequence[Cell], jobs: int | None = None,
                progress: Callable[[int, int, str], None] | None = None
                ) -> dict[str, BuildResult]:
    """Build every distinct binary among `cells` (cells differing only in run axes share one).
    Returns build_id → result. Never raises for a cell's failure."""
    plans: dict[str, Plan] = {}
    for c in cells:
        if c.build_id not in plans:
            plans[c.build_id] = plan_for(c, matrix.app(c.app).path)
    # Install each toolchain once, before the parallel builds race for it.
    for tc in {p.toolchain for p in plans.values() if not p.skip}:
        with contextlib.suppress(Exception):  # reported per cell by build_one
            get_toolchain(tc)
    results: dict[str, BuildResult] = {}
    total = len(plans)
    lock = threading.Lock()

    def one(plan: Plan) -> None:
        try:
            res = build_one(plan)
        except Exception as exc:  # a bug or an OS error: this cell fails, the rest go on
            res = BuildResult(plan.build_id, "failed", f"internal error: {exc!r}")
        with lock:
            results[plan.build_id] = res
            if progress:
                progress(len(results), total, plan.build_id)

    # Go builds are parallel inside too; -j bounds how many `go build`s run at once.
    with ThreadPoolExecutor(max_workers=max(1, jobs or os.cpu_count() or 2)) as pool:
        list(pool.map(one, plans.values()))
    return results


def mark_identical(results: dict[str, BuildResult]) -> dict[str, str]:
    """build_id → a note naming the other builds whose binary is identical ('identical to X')
    or identical but for Go's build info / build id ('same code as X')."""
    by_sha: dict[str, list[str]] = {}
    by_code: dict[str, list[str]] = {}
    for bid, r in sorted(results.items()):
        if r.facts is None:
            continue
        by_sha.setdefault(r.facts.sha256, []).append(bid)
        if r.facts.sha256_code:
            by_code.setdefault(r.facts.sha256_code, []).append(bid)
    notes: dict[str, str] = {}
    for bid, r in results.items():
        if r.facts is None:
            continue
        same = [b for b in by_sha[r.facts.sha256] if b != bid]
        if same:
            notes[bid] = "identical to " + ", ".join(same)
            continue
        code = [b for b in by_code.get(r.facts.sha256_code, []) if b != bid]
        if r.facts.sha256_code and code:
            notes[bid] = "identical but for Go build info to " + ", ".join(code)
    return notes


def cell_rows(matrix: Matrix, cells: Sequence[Cell], results: dict[str, BuildResult]
              ) -> list[dict[str, Any]]:
    """One cells.csv row per cell (SPEC columns; every axis the matrix varies as a column)."""
    notes = mark_identical(results)
    rows = []
    for c in cells:
        r = results.get(c.build_id) or BuildResult(c.build_id, "skipped", "not built")
        f = r.facts
        row: dict[str, Any] = {
            "cell": c.id, "app": c.app, "toolchain": c.toolchain, "go_version": r.go_version,
            "build_id": c.build_id, **c.axes,
            "status": r.status, "reason": r.reason,
            "binary": str(r.binary) if r.binary else "", "build_s": round(r.build_s, 3),
            "cached": r.cached, "cache_key": r.key, "identical": notes.get(c.build_id, ""),
            "pre_pack_linkage": r.pre_pack_linkage,
        }
        if f is not None:
            row.update({k: v for k, v in f.as_row().items()
                        if k not in ("has_symtab", "has_debug", "machine")})
            if f.interpreter:
                row["linkage"] = f"dynamic ({f.interpreter})"
        rows.append(row)
    return rows
