"""The build steps: `go build` (no shell), then `strip` and `upx` as post-steps, each into a
cache entry of its own (strip/UPX variants of one build share its `go build` output)."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any

from gostartbench.build.cache import entry_at, entry_dir
from gostartbench.build.modules import DEPS_FILE, package_graph, write_deps
from gostartbench.build.plan import Plan
from gostartbench.host.tools import Toolchain, find_tool, go_env

STRIP_ARGS = {"unneeded": ["--strip-unneeded"], "debug": ["-g"], "all": ["-s"]}
UPX_ARGS = {"fast": ["-1"], "best": ["--best"], "lzma": ["--lzma"]}


def _excerpt(text: str, limit: int = 400) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    keep = [ln for ln in lines if not ln.startswith("#")] or lines
    out = " | ".join(keep[:6])
    return out[:limit] + ("…" if len(out) > limit else "")


def go_build(plan: Plan, tc: Toolchain, key: str) -> dict[str, Any]:
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
            # The package graph, with the build's own flags and environment: which module each
            # linked package comes from (package init is rolled up by dependency from it).
            try:
                write_deps(tmp / DEPS_FILE, package_graph(plan.module_root, plan.package, tc,
                                                          dict(plan.go_env), plan.go_args))
            except RuntimeError as exc:  # the binary is good; only the attribution is missing
                meta["deps_error"] = str(exc)
        return meta

    return entry_at(key, make)


def _buildinfo(tc: Toolchain, binary: Path) -> dict[str, str]:
    p = subprocess.run([str(tc.go), "version", "-m", str(binary)], capture_output=True,
                       text=True, env=go_env(tc.goroot), check=False)
    info: dict[str, str] = {}
    first = p.stdout.split("\n", 1)[0]
    if ": go" in first:  # "path: go1.27.3": the toolchain that really built it
        info["go"] = first.rsplit(": ", 1)[1].strip()
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


def post_build(plan: Plan, gometa: dict[str, Any], gokey: str, key: str) -> dict[str, Any]:
    def make(tmp: Path) -> dict[str, Any]:
        src = entry_dir(gokey) / plan.app
        out = tmp / plan.app
        meta = {k: v for k, v in gometa.items() if k not in ("cached", "key")}
        meta["key"] = key
        t0 = time.monotonic()
        reason = ""
        cur = src
        # The steps this build ran (a cached `go build` ran none).
        steps_s = {} if gometa.get("cached") else {"go build": gometa.get("build_s", 0.0)}
        if plan.strip != "none":
            p = subprocess.run([_tool_path("strip"), *STRIP_ARGS[plan.strip], "-o", str(out),
                                str(cur)],
                               capture_output=True, text=True, check=False)
            if p.returncode != 0:
                reason = "strip failed: " + _excerpt(p.stderr)
            cur = out
            steps_s["strip"] = time.monotonic() - t0
        if not reason and plan.upx != "none":
            packed = tmp / (plan.app + ".upx")
            t_upx = time.monotonic()
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
            steps_s[f"upx {plan.upx}"] = time.monotonic() - t_upx
        meta["build_s"] = float(gometa.get("build_s", 0.0)) + (time.monotonic() - t0)
        meta["post"] = {"strip": plan.strip, "upx": plan.upx}
        meta["steps_s"] = {k: round(float(v), 3) for k, v in steps_s.items()}
        if reason:
            meta.update(status="failed", reason=reason)
            out.unlink(missing_ok=True)
        else:
            meta["status"] = "ok"
        return meta

    return entry_at(key, make)
