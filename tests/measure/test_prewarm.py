"""Prewarm run conditions with a real binary: each prewarm step runs in a process of its own
after the eviction and before the timed start, so a cold binary's pages are back before it
starts (no major faults), while a plain cold start reads them in itself; drop-caches evicts
host-wide where the user may (root) and fails its cells with the reason where not."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from gostartbench.cli import main
from tests.conftest import WriteMatrix

MATRIX = """\
version: 1
apps:
  big: {path: @GOAPPS@/big}
run:
  cache: [warm, cold, prewarm-read, prewarm-mmap]
measure: {runs: 6, warmup: 1, inittrace: false, phases: false, calibration: "off"EVICT}
"""


@pytest.mark.parametrize("evict", ["file", "drop-caches"])
def test_prewarm_brings_a_cold_binary_back_before_the_start(
        evict: str, write_matrix: WriteMatrix, tmp_path: Path) -> None:
    m = write_matrix(MATRIX.replace("EVICT", f", evict: {evict}"))
    out = tmp_path / "run"
    code = main(["run", "-m", str(m), "--out", str(out)])
    cells = pd.read_csv(out / "cells.csv", dtype=str).set_index("cache")
    if evict == "drop-caches" and os.geteuid() != 0:
        assert code == 1
        for cache in ("cold", "prewarm-read", "prewarm-mmap"):
            assert "drop-caches: cannot write /proc/sys/vm/drop_caches" in \
                cells.loc[cache, "reason"]
        return
    assert code == 0, cells["reason"].to_dict()
    plan = json.loads((out / "plan.json").read_text())
    by = {u["cache"]: u for u in plan["units"]}
    assert by["prewarm-read"]["prewarm"] == "read" and by["prewarm-mmap"]["prewarm"] == "mmap"
    assert by["cold"]["drop_caches"] is (evict == "drop-caches") and not by["warm"]["drop_caches"]
    s = pd.read_csv(out / "summary.csv").set_index("cache")
    assert s.loc["cold", "majflt_p50"] >= 1  # the program reads its own pages in
    for cache in ("prewarm-read", "prewarm-mmap", "warm"):
        assert s.loc[cache, "majflt_p50"] == 0, cache  # they were there before it started
    md = (out / "report.md").read_text()
    assert "### Prewarming" in md and "the article's" in md
