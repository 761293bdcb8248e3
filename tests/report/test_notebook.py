"""The analysis notebook runs against the committed example run (as `nox -s notebook` does)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import REPO


def test_notebook_executes_on_the_example_run(tmp_path: Path) -> None:
    pytest.importorskip("nbclient", reason="the notebook needs the [test] extra: nbclient")
    from gostartbench.report.notebook import main

    example = REPO / "results" / "example"
    before = {p: p.stat().st_mtime_ns for p in example.rglob("*") if p.is_file()}
    out = tmp_path / "nb.ipynb"
    assert main([str(example), "--out", str(out)]) == 0
    nb = json.loads(out.read_text())
    text = json.dumps([c.get("outputs", []) for c in nb["cells"]])
    assert "image/png" in text and "cells" in text
    assert "error" not in {o.get("output_type") for c in nb["cells"] for o in c.get("outputs", [])}
    # nothing in the committed run folder was rewritten
    assert before == {p: p.stat().st_mtime_ns for p in example.rglob("*") if p.is_file()}
