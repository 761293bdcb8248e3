"""GODEBUG=inittrace=1: the Go runtime's per-package init lines, parsed."""

from __future__ import annotations

import re

_INIT = re.compile(
    r"^init (?P<package>\S+) @(?P<start>[\d.]+) ms, (?P<clock>[\d.]+) ms clock, "
    r"(?P<bytes>\d+) bytes, (?P<allocs>\d+) allocs", re.M)


def parse_inittrace(stderr: str) -> list[dict[str, object]]:
    """The Go runtime's per-package init lines:
    `init internal/godebug @2.0 ms, 0.17 ms clock, 312 bytes, 7 allocs`."""
    return [{"package": m["package"], "start_ms": float(m["start"]),
             "clock_ms": float(m["clock"]), "bytes": int(m["bytes"]),
             "allocs": int(m["allocs"])} for m in _INIT.finditer(stderr)]
