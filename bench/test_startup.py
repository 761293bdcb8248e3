"""One pytest-benchmark case per matrix cell: the startup time of its binary."""

from __future__ import annotations

from typing import Any

from gostartbench import bench


def test_startup(benchmark: Any, gsb_cell: str, gsb_state: bench.BenchState) -> None:
    bench.run_case(benchmark, gsb_cell, gsb_state)
