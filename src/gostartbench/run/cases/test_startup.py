"""One pytest-benchmark case per matrix cell: the startup time of its binary.

`gostartbench run` points pytest at this file; the repo's `bench/` imports it, so
`pytest bench/` runs the same case. Fixtures and hooks: gostartbench.run.plugin."""

from __future__ import annotations

from typing import Any

from gostartbench.run import bench


def test_startup(benchmark: Any, gsb_cell: str, gsb_state: bench.BenchState) -> None:
    """Skip, fail with the cell's reason, or hand the cell's measured rounds over."""
    bench.run_case(benchmark, gsb_cell, gsb_state)
