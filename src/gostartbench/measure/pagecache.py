"""Page-cache conditions: evict a binary (cold), or read every binary back the same way
(warm), without root."""

from __future__ import annotations

import os
from collections.abc import Collection, Sequence
from pathlib import Path

from gostartbench.matrix.axes import EVICTED


def evict(path: Path) -> None:
    """Drop a file's pages from the page cache (no root needed: POSIX_FADV_DONTNEED)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fdatasync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def read_back(path: Path) -> None:
    """Read a file fully with read(), so every binary's pages come back the same way (a file
    written by the linker through mmap otherwise starts ~15% slower warm than a `cp` of it)."""
    with open(path, "rb", buffering=0) as fh:
        while fh.read(1 << 20):
            pass


def cold_paths(cache: str, binary: Path, warm_binaries: Collection[Path]
               ) -> tuple[Path | None, Path | None]:
    """For one run of a cell: the binary to evict before it (cold and prewarmed cells), and the
    binary to read back in after it (the same, where warm cells share it: their next run must
    find it warm, placed as the warm normalisation places it)."""
    if cache not in EVICTED:
        return None, None
    return binary, (binary if binary in warm_binaries else None)


def normalise_warm(paths: Sequence[Path]) -> None:
    """Evict every binary, then read each back the same way (warm cells)."""
    for p in paths:
        evict(p)
    for p in paths:
        read_back(p)
