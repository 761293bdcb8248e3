"""The build stage: every distinct binary of the selected cells, built once (cached), with its
ELF facts. plan.py says how, steps.py runs the tools, cache.py keeps the results."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gostartbench.build import elfinfo, modules
from gostartbench.build.cache import (
    TREE_CACHE,
    entry_dir,
    final_key,
    go_key,
    tree_hash,
    trims_paths,
)
from gostartbench.build.plan import Plan, module_root, plan_for
from gostartbench.build.steps import go_build, post_build
from gostartbench.host.tools import get_toolchain
from gostartbench.matrix import Cell, Matrix

__all__ = [
    "TREE_CACHE",
    "BuildResult",
    "Plan",
    "build_cells",
    "build_one",
    "cell_rows",
    "deps_rows",
    "entry_dir",
    "fetch_modules",
    "final_key",
    "get_toolchain",
    "go_key",
    "mark_identical",
    "module_root",
    "plan_for",
    "tree_hash",
    "trims_paths",
]


SLOW_BUILD_S = 10.0  # a build this slow is named in the progress, with its steps' times


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
    steps_s: dict[str, float] = field(default_factory=dict)  # go build, strip, upx: seconds

    def took(self) -> str:
        """'k8sclient_… 74.0 s (go build 50.1 s, upx best 23.9 s)', or '' when cached."""
        if self.cached or not self.build_s:
            return ""
        total = sum(self.steps_s.values()) if self.steps_s else self.build_s
        steps = ", ".join(f"{k} {v:.1f} s" for k, v in self.steps_s.items())
        return f"{self.build_id} {total:.1f} s" + (f" ({steps})" if steps else "")


def build_one(plan: Plan) -> BuildResult:
    """Build one plan's binary (go build, then strip and UPX), from the cache where it can."""
    if plan.skip:
        return BuildResult(plan.build_id, "skipped", plan.skip)
    try:
        tc = get_toolchain(plan.toolchain)
    except Exception as exc:  # an install failure is this cell's reason, not a crash
        return BuildResult(plan.build_id, "failed", f"toolchain {plan.toolchain}: {exc}")
    gokey = go_key(plan, tc)
    gometa = go_build(plan, tc, gokey)
    key = gokey
    meta = gometa
    if gometa["status"] == "ok" and (plan.strip != "none" or plan.upx != "none"):
        key = final_key(gokey, plan)
        meta = post_build(plan, gometa, gokey, key)
    cached = bool(meta.get("cached")) and bool(gometa.get("cached"))
    # The toolchain that really built it (a user's GOTOOLCHAIN may have switched it).
    built_by = str((meta.get("buildinfo") or {}).get("go") or tc.version)
    common: dict[str, Any] = dict(
        key=key, build_s=float(meta.get("build_s", 0.0)), cached=cached, go_version=built_by,
        argv=tuple(gometa.get("argv", ())), env=dict(gometa.get("env", {})),
        steps_s={} if cached else dict(meta.get("steps_s") or
                                       {"go build": float(meta.get("build_s", 0.0))}))
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
                progress: Callable[[int, int, str], None] | None = None,
                note: Callable[[str], None] | None = None) -> dict[str, BuildResult]:
    """Build every distinct binary among `cells` (cells differing only in run axes share one).
    Returns build_id → result. Never raises for a cell's failure. `note` is told of every build
    that took SLOW_BUILD_S or more, with its steps' times (a big binary's UPX takes minutes)."""
    plans: dict[str, Plan] = {}
    for c in cells:
        if c.build_id not in plans:
            plans[c.build_id] = plan_for(c, matrix.app_dir(c))
    # Install each toolchain once, before the parallel builds race for it.
    for tc in {p.toolchain for p in plans.values() if not p.skip}:
        with contextlib.suppress(Exception):  # reported per cell by build_one
            get_toolchain(tc)
    results: dict[str, BuildResult] = {}
    # Each module's requirements are fetched once, before its builds: a failure fails that
    # module's cells (one line each), the others build.
    unfetched = fetch_modules(list(plans.values()))
    for bid, plan in list(plans.items()):
        why = unfetched.get(plan.module_root)
        if why and not plan.skip:
            results[bid] = BuildResult(bid, "failed", why)
            del plans[bid]
    total = len(plans) + len(results)
    lock = threading.Lock()

    def one(plan: Plan) -> None:
        try:
            res = build_one(plan)
        except Exception as exc:  # a bug or an OS error: this cell fails, the rest go on
            res = BuildResult(plan.build_id, "failed", f"internal error: {exc!r}")
        with lock:
            results[plan.build_id] = res
            if note and sum(res.steps_s.values()) >= SLOW_BUILD_S and res.took():
                note(res.took())
            if progress:
                progress(len(results), total, plan.build_id)

    # Go builds are parallel inside too; -j bounds how many `go build`s run at once.
    with ThreadPoolExecutor(max_workers=max(1, jobs or os.cpu_count() or 2)) as pool:
        list(pool.map(one, plans.values()))
    return same_file_for_same_bytes(results)


def same_file_for_same_bytes(results: dict[str, BuildResult]) -> dict[str, BuildResult]:
    """Builds whose bytes are identical run one file (the first's, by build id): where a
    binary's pages land in the page cache moves its start by a few percent, so two copies of
    one program would differ by their files alone (a gate's unchanged app, built from two
    checkouts, is the same bytes)."""
    first: dict[str, Path] = {}
    out = {}
    for bid, r in sorted(results.items()):
        if r.facts is not None and r.binary is not None:
            keep = first.setdefault(r.facts.sha256, r.binary)
            if keep != r.binary:
                r = dataclasses.replace(r, binary=keep)
        out[bid] = r
    return out


def fetch_modules(plans: Sequence[Plan]) -> dict[Path, str]:
    """Fetch each module root's requirements once (with the first toolchain that builds it:
    the module cache is shared by all); module root → one-line failure, for those that failed."""
    by_root: dict[Path, list[Plan]] = {}
    for p in plans:
        if not p.skip:
            by_root.setdefault(p.module_root, []).append(p)
    failed: dict[Path, str] = {}
    for root, group in by_root.items():
        try:
            tc = get_toolchain(group[0].toolchain)
        except Exception:  # noqa: S112 -- reported per cell by build_one
            continue
        packages = sorted({p.package for p in group})
        why = modules.fetch(root, packages, tc, dict(group[0].go_env))
        if why:
            failed[root] = why
    return failed


def deps_rows(results: dict[str, BuildResult]) -> list[dict[str, Any]]:
    """deps.csv: every package linked into each built binary, with its module and the direct
    requirement that pulls it in (from the build's cache entry; none for a build without)."""
    rows: list[dict[str, Any]] = []
    for bid, r in sorted(results.items()):
        if r.program is not None and r.facts is not None:
            rows += [{"build_id": bid, **d}
                     for d in modules.read_deps(r.program.parent / modules.DEPS_FILE)]
    return rows


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
