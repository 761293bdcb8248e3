"""The build stage: `go build` (no shell), then `strip` and `upx` as post-steps, into a
content-addressed cache.

A cache entry is a folder named by the hash of every input (toolchain, source tree, flags,
environment, post-steps and the tools' versions; and the module's location unless -trimpath,
since the binary embeds source paths). It is built in a temporary folder, its `meta.json`
written last, then renamed into place: an entry exists only once complete, and two processes
building the same entry both end with a good one. Only successes are cached: a failed build is
tried again next time (its cause may lie outside the key: a module cache, a C library, where
the source sits). The `go build` output is cached on its own, so strip/UPX variants of one
build share it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gostartbench import elfinfo
from gostartbench.matrix import ENV_PREFIX, Cell, Matrix
from gostartbench.tools import (
    HOW_TO_GET,
    Toolchain,
    cache_dir,
    file_lock,
    find_tool,
    get_toolchain,
    go_env,
    goamd64_supported,
    host_arch,
)

FORMAT = 4  # bump when the cache layout or key recipe changes
STRIP_ARGS = {"unneeded": ["--strip-unneeded"], "debug": ["-g"], "all": ["-s"]}
UPX_ARGS = {"fast": ["-1"], "best": ["--best"], "lzma": ["--lzma"]}


@dataclass(frozen=True)
class BuildResult:
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
    argv: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Plan:
    """How to build one cell's binary: everything that goes into its cache key."""

    build_id: str
    app: str
    module_root: Path
    package: str  # ./relative/path from the module root
    toolchain: str
    go_args: tuple[str, ...]  # after `go build`, without -o
    go_env: tuple[tuple[str, str], ...]  # the environment entries that differ per cell
    strip: str
    upx: str
    skip: str = ""  # a reason to skip without building
    runnable: str = ""  # non-empty: builds, but this host cannot run it (the reason)


def module_root(app_dir: Path) -> Path | None:
    for d in [app_dir, *app_dir.parents]:
        if (d / "go.mod").is_file():
            return d
    return None


def plan_for(cell: Cell, app_dir: Path) -> Plan:
    b = cell.build_values
    root = module_root(app_dir)
    skip = ""
    if root is None:
        skip = f"{app_dir} is not inside a Go module (no go.mod found above it)"
        root = app_dir
    rel = os.path.relpath(app_dir, root)
    package = "." if rel == "." else "./" + rel.replace(os.sep, "/")
    args: list[str] = ["-buildvcs=false"]  # the tree may be in git or not; keep binaries equal
    env: dict[str, str] = {"CGO_ENABLED": b["cgo"]}
    if (root / "vendor").is_dir():
        args.append("-mod=vendor")
    if b["buildmode"] != "exe":
        args.append(f"-buildmode={b['buildmode']}")
    if b["trimpath"] == "true":
        args.append("-trimpath")
    if b["tags"]:
        args.append(f"-tags={b['tags']}")
    if b["gcflags"]:
        args.append(f"-gcflags={b['gcflags']}")
    # -ldflags is one argument; the Go command splits it with its own quoting rules, so quoted
    # -X values ('-X "main.v=a b"') reach the linker intact. No shell is involved.
    ld = b["ldflags"].strip()
    extld: list[str] = []
    linkmode = b["linkmode"]
    if b["libc"] in ("musl-static", "glibc-static"):
        if b["cgo"] != "1":
            skip = skip or (f"libc={b['libc']} links C code but cgo=0 builds none; "
                            "exclude this combination")
        linkmode = "external"
        extld.append("-static-pie" if b["buildmode"] == "pie" else "-static")
        if b["libc"] == "musl-static":
            musl = find_tool("musl-gcc")
            if not musl.found:
                skip = skip or f"musl-gcc not found: {HOW_TO_GET['musl-gcc']}"
            env["CC"] = "musl-gcc"
    if linkmode != "default":
        ld = (ld + f" -linkmode={linkmode}").strip()
    if extld:
        ld = (ld + " '-extldflags=" + " ".join(extld) + "'").strip()
    if ld:
        args.append(f"-ldflags={ld}")
    if b["flags"]:
        args += shlex.split(b["flags"])
    if b["goamd64"]:
        env["GOAMD64"] = b["goamd64"]
    if b["goarm64"]:
        env["GOARM64"] = b["goarm64"]
    for k, v in b.items():
        if k.startswith(ENV_PREFIX):
            env[k[len(ENV_PREFIX):]] = v
    if env.get("CGO_ENABLED") == "1" and not find_tool(env.get("CC", "cc")).found and \
            not find_tool("gcc").found:
        skip = skip or f"cgo=1 needs a C compiler: {HOW_TO_GET['cc']}"
    if b["strip"] != "none" and not find_tool("strip").found:
        skip = skip or f"strip not found: {HOW_TO_GET['strip']}"
    if b["upx"] != "none" and not find_tool("upx").found:
        skip = skip or f"upx not found: {HOW_TO_GET['upx']}"
    runnable = ""
    # A GOAMD64/GOARM64 level for another architecture is ignored by `go build` (the binary
    # would be an ordinary host one): skip such cells without building them.
    if b["goamd64"] and host_arch() != "amd64":
        skip = skip or f"GOAMD64 applies to amd64; this host is {host_arch()}"
    elif b["goamd64"]:
        ok, why = goamd64_supported(b["goamd64"])
        runnable = "" if ok else why
    if b["goarm64"] and host_arch() != "arm64":
        skip = skip or f"GOARM64 applies to arm64; this host is {host_arch()}"
    return Plan(
        build_id=cell.build_id, app=cell.app, module_root=root, package=package,
        toolchain=cell.toolchain, go_args=tuple(args), go_env=tuple(sorted(env.items())),
        strip=b["strip"], upx=b["upx"], skip=skip, runnable=runnable,
    )


# ---------------------------------------------------------------------------------------------
# Keys

_TREE_CACHE: dict[Path, str] = {}
_TREE_LOCK = threading.Lock()


def tree_hash(root: Path) -> str:
    """Content hash of a module's source tree (every file but dot-folders), cached per process."""
    with _TREE_LOCK:
        if root in _TREE_CACHE:
            return _TREE_CACHE[root]
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "_")))
        for name in sorted(filenames):
            p = Path(dirpath) / name
            if not p.is_file():
                continue
            h.update(str(p.relative_to(root)).encode() + b"\0")
            with open(p, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
            h.update(b"\0")
    digest = h.hexdigest()
    with _TREE_LOCK:
        _TREE_CACHE[root] = digest
    return digest


def _hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def go_key(plan: Plan, tc: Toolchain) -> str:
    env = dict(plan.go_env)
    cc = ""
    if env.get("CGO_ENABLED") == "1":
        cc = find_tool(env.get("CC", "cc")).version or ""
    # Without -trimpath the binary embeds the module's path: two copies of one tree in two
    # places are two binaries.
    where = "" if "-trimpath" in plan.go_args else str(plan.module_root)
    return _hash({
        "format": FORMAT, "go": tc.version, "goroot": str(tc.goroot), "arch": host_arch(),
        "src": tree_hash(plan.module_root), "pkg": plan.package, "args": plan.go_args,
        "env": plan.go_env, "cc": cc, "app": plan.app, "where": where,
    })


def final_key(gokey: str, plan: Plan) -> str:
    if plan.strip == "none" and plan.upx == "none":
        return gokey
    return _hash({
        "go": gokey, "strip": plan.strip, "upx": plan.upx,
        "strip_v": find_tool("strip").version if plan.strip != "none" else "",
        "upx_v": find_tool("upx").version if plan.upx != "none" else "",
    })


def entry_dir(key: str) -> Path:
    return cache_dir() / "builds" / key[:2] / key


# ---------------------------------------------------------------------------------------------
# Building


def _excerpt(text: str, limit: int = 400) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    keep = [ln for ln in lines if not ln.startswith("#")] or lines
    out = " | ".join(keep[:6])
    return out[:limit] + ("…" if len(out) > limit else "")


def _commit(tmp: Path, final: Path, meta: dict[str, Any]) -> None:
    """Write meta.json last, then move the folder into place atomically."""
    (tmp / "meta.json.part").write_text(json.dumps(meta, indent=1, default=str))
    os.replace(tmp / "meta.json.part", tmp / "meta.json")
    final.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(tmp, final)
    except OSError:
        # Another process finished the same entry first: its result is as good as ours.
        shutil.rmtree(tmp, ignore_errors=True)


def _load_meta(d: Path) -> dict[str, Any] | None:
    try:
        meta: dict[str, Any] = json.loads((d / "meta.json").read_text())
        return meta
    except (OSError, ValueError):
        return None


def _tmpdir(final: Path) -> Path:
    tmp = final.parent / f".tmp-{final.name}-{os.getpid()}-{threading.get_ident()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    return tmp


def _entry(key: str, make: Callable[[Path], dict[str, Any]]) -> dict[str, Any]:
    """The cache entry `key`: read if complete and good; else built by `make(tmpdir)` under a
    lock (checked again inside it). A success is committed with its meta.json last and read
    back; a failure is returned and never stored, so the next run tries again."""
    final = entry_dir(key)
    meta = _load_meta(final)
    if meta is not None and meta.get("status") == "ok":
        return {**meta, "cached": True}
    with file_lock(final.parent / f"{key}.lock"):
        meta = _load_meta(final)
        if meta is not None and meta.get("status") == "ok":
            return {**meta, "cached": True}
        if meta is not None:  # a failure cached by an older version: not trusted
            shutil.rmtree(final, ignore_errors=True)
        tmp = _tmpdir(final)
        meta = make(tmp)
        if meta.get("status") != "ok":
            shutil.rmtree(tmp, ignore_errors=True)
            return {**meta, "cached": False}
        _commit(tmp, final, meta)
        return {**(_load_meta(final) or meta), "cached": False}


def _go_build(plan: Plan, tc: Toolchain, key: str) -> dict[str, Any]:
    def make(tmp: Path) -> dict[str, Any]:
        out = tmp / plan.app
        argv = [str(tc.go), "build", "-o", str(out), *plan.go_args, plan.package]
        env = go_env(tc.goroot, dict(plan.go_env))
        t0 = time.monotonic()
        proc = subprocess.run(argv, cwd=plan.module_root, env=env, capture_output=True,
                              text=True, stdin=subprocess.DEVNULL, check=False)
        build_s = time.monotonic() - t0
        meta = {"key": key, "argv": argv, "env": dict(plan.go_env), "go_version": tc.version,
                "build_s": build_s, "binary": plan.app}
        if proc.returncode != 0 or not out.is_file():
            meta.update(status="failed", reason="go build failed: " +
                        _excerpt(proc.stderr or proc.stdout))
        else:
            meta.update(status="ok", buildinfo=_buildinfo(tc, out))
        return meta

    return _entry(key, make)


def _buildinfo(tc: Toolchain, binary: Path) -> dict[str, str]:
    p = subprocess.run([str(tc.go), "version", "-m", str(binary)], capture_output=True,
                       text=True, env=go_env(tc.goroot), check=False)
    info: dict[str, str] = {}
    for line in p.stdout.splitlines():
        parts = line.strip().split("\t")
        if len(parts) >= 2 and parts[0] == "build" and "=" in parts[1]:
            k, v = parts[1].split("=", 1)
            info[k] = v
        elif len(parts) >= 2 and parts[0] == "path":
            info["path"] = parts[1]
    return info


def _tool_path(name: str) -> str:
    return find_tool(name).path or name


def _post(plan: Plan, gometa: dict[str, Any], gokey: str, key: str) -> dict[str, Any]:
    def make(tmp: Path) -> dict[str, Any]:
        src = entry_dir(gokey) / plan.app
        out = tmp / plan.app
        meta = {k: v for k, v in gometa.items() if k not in ("cached", "key")}
        meta["key"] = key
        t0 = time.monotonic()
        reason = ""
        cur = src
        if plan.strip != "none":
            p = subprocess.run([_tool_path("strip"), *STRIP_ARGS[plan.strip], "-o", str(out),
                                str(cur)],
                               capture_output=True, text=True, check=False)
            if p.returncode != 0:
                reason = "strip failed: " + _excerpt(p.stderr)
            cur = out
        if not reason and plan.upx != "none":
            packed = tmp / (plan.app + ".upx")
            p = subprocess.run([_tool_path("upx"), "-q", "--no-progress", *UPX_ARGS[plan.upx], "-o",
                                str(packed), str(cur)], capture_output=True, text=True,
                               check=False)
            if p.returncode != 0 or not packed.is_file():
                text = p.stderr + p.stdout
                m = re.search(r"(CantPackException|NotCompressibleException|[A-Za-z]+Exception)"
                              r"[^\n]*", text)
                reason = "upx refused: " + (m.group(0).strip() if m else _excerpt(text))
            else:
                os.replace(packed, out)
        meta["build_s"] = float(gometa.get("build_s", 0.0)) + (time.monotonic() - t0)
        meta["post"] = {"strip": plan.strip, "upx": plan.upx}
        if reason:
            meta.update(status="failed", reason=reason)
            out.unlink(missing_ok=True)
        else:
            meta["status"] = "ok"
        return meta

    return _entry(key, make)


def build_one(plan: Plan) -> BuildResult:
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
                       buildinfo=dict(meta.get("buildinfo", {})), pre_pack_linkage=pre, **common)


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
