"""How to build one cell's binary (pure but for tool lookups): the `go build` arguments and
environment from the cell's build axes, and why a cell is skipped unbuilt."""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path

from gostartbench.host.arch import goarm64_supported
from gostartbench.host.tools import HOW_TO_GET, find_tool, goamd64_supported, host_arch
from gostartbench.matrix import ENV_PREFIX, Cell


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
    """The folder of the go.mod at or above an app's folder, or None."""
    for d in [app_dir, *app_dir.parents]:
        if (d / "go.mod").is_file():
            return d
    return None


def plan_for(cell: Cell, app_dir: Path) -> Plan:
    """The build plan of a cell's binary (skip and runnable carry reasons, never raise)."""
    b = cell.build_values
    root = module_root(app_dir)
    skip = ""
    if not app_dir.is_dir():  # `gate`: an app the head adds is not in the base tree
        skip = f"{app_dir} does not exist in this tree ({b.get('rev') or 'no rev'})"
        root = app_dir
    elif root is None:
        skip = f"{app_dir} is not inside a Go module (no go.mod found above it)"
        root = app_dir
    rel = os.path.relpath(app_dir, root)
    package = "." if rel == "." else "./" + rel.replace(os.sep, "/")
    args, env, why = _go_args(b, root)
    skip = skip or why or _missing_tool(b, env)
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
    elif b["goarm64"]:
        ok, why = goarm64_supported(b["goarm64"])
        runnable = runnable or ("" if ok else why)
    return Plan(
        build_id=cell.build_id, app=cell.app, module_root=root, package=package,
        toolchain=cell.toolchain, go_args=tuple(args), go_env=tuple(sorted(env.items())),
        strip=b["strip"], upx=b["upx"], skip=skip, runnable=runnable,
    )


def _go_args(b: dict[str, str], root: Path) -> tuple[list[str], dict[str, str], str]:
    """`go build` arguments and environment for build-axis values; a skip reason or ''."""
    args: list[str] = ["-buildvcs=false"]  # the tree may be in git or not; keep binaries equal
    env: dict[str, str] = {"CGO_ENABLED": b["cgo"]}
    if (root / "vendor").is_dir():
        args.append("-mod=vendor")
    if b["buildmode"] != "exe":
        args.append(f"-buildmode={b['buildmode']}")
    if b["trimpath"] == "true" or b.get("rev"):
        # `gate`: the same code checked out in two folders must build to the same bytes (a
        # binary embeds its source paths; two layouts of one program start a few % apart)
        args.append("-trimpath")
    if b["tags"]:
        args.append(f"-tags={b['tags']}")
    if b["gcflags"]:
        args.append(f"-gcflags={b['gcflags']}")
    ld, skip = _ldflags(b, env)
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
    return args, env, skip


def _ldflags(b: dict[str, str], env: dict[str, str]) -> tuple[str, str]:
    """-ldflags (one argument: the Go command splits it with its own quoting rules, so quoted
    -X values reach the linker intact; no shell is involved), with linkmode and static libc
    folded in; sets CC for musl. Returns (ldflags, skip reason)."""
    ld = b["ldflags"].strip()
    extld: list[str] = []
    skip = ""
    linkmode = b["linkmode"]
    if b["libc"] in ("musl-static", "glibc-static"):
        if b["cgo"] != "1":
            skip = (f"libc={b['libc']} links C code but cgo=0 builds none; "
                    "exclude this combination")
        linkmode = "external"
        extld.append("-static-pie" if b["buildmode"] == "pie" else "-static")
        if b["libc"] == "musl-static":
            if not find_tool("musl-gcc").found:
                skip = skip or f"musl-gcc not found: {HOW_TO_GET['musl-gcc']}"
            env["CC"] = "musl-gcc"
    if linkmode != "default":
        ld = (ld + f" -linkmode={linkmode}").strip()
    if extld:
        ld = (ld + " '-extldflags=" + " ".join(extld) + "'").strip()
    return ld, skip


def _missing_tool(b: dict[str, str], env: dict[str, str]) -> str:
    """The reason a cell cannot be built here for want of a tool, or ''."""
    if env.get("CGO_ENABLED") == "1" and not find_tool(env.get("CC", "cc")).found and \
            not find_tool("gcc").found:
        return f"cgo=1 needs a C compiler: {HOW_TO_GET['cc']}"
    if b["strip"] != "none" and not find_tool("strip").found:
        return f"strip not found: {HOW_TO_GET['strip']}"
    if b["upx"] != "none" and not find_tool("upx").found:
        return f"upx not found: {HOW_TO_GET['upx']}"
    return ""
