"""The docs say what the code does: docs/matrix.md against the axis table and the key lists,
docs/results.md against the results schema; the stages import only earlier ones; nothing in
the repo points outside it."""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

import pytest

from gostartbench.matrix import apps as matrix_apps
from gostartbench.matrix import validate as matrix_validate
from gostartbench.matrix.axes import AXES
from gostartbench.results import schema

from .conftest import REPO

DOCS = REPO / "docs"
SRC = REPO / "src" / "gostartbench"


def _rows(md: str) -> dict[str, list[str]]:
    """Markdown table rows keyed by their first cell's `code` text."""
    out = {}
    for line in md.splitlines():
        m = re.match(r"^\| `([^`]+)` \|(.*)\|\s*$", line)
        if m:
            out[m.group(1)] = [c.strip() for c in m.group(2).split("|")]
    return out


def test_matrix_doc_matches_the_axis_table() -> None:
    rows = _rows((DOCS / "matrix.md").read_text())
    for axis in AXES:
        assert axis.name in rows, f"docs/matrix.md lacks axis {axis.name}"
        kind, values, default, token, example = rows[axis.name][:5]
        assert kind == axis.kind, axis.name
        want = ", ".join(f"`{v}`" for v in axis.values) if axis.values else "free text"
        assert values == want, axis.name
        assert default == f"`{axis.default}`" if axis.default else default == '`""`', axis.name
        assert token == (f"`{axis.token}`" if axis.token else "(value)"), axis.name
        assert example == f"`{axis.name}: {axis.example}`", axis.name


def test_matrix_doc_has_every_key() -> None:
    rows = _rows((DOCS / "matrix.md").read_text())
    keys = [*matrix_validate.TOP_KEYS, *matrix_apps.APP_KEYS, *matrix_validate.MEASURE_KEYS,
            *[f"expect.{k}" for k in matrix_apps.EXPECT_KEYS],
            *[f"ready.{k}" for k in matrix_apps.READY_KEYS]]
    missing = [k for k in keys if k not in rows]
    assert not missing, f"docs/matrix.md lacks {missing}"
    for k, choices in (("timer", matrix_validate.TIMERS), ("order", matrix_validate.ORDERS),
                       ("calibration", matrix_validate.CALIBRATIONS)):
        allowed = rows[k][2]
        assert allowed == ", ".join(f"`{c}`" for c in choices), k


@pytest.mark.parametrize("name,cols", [("run.json", schema.RUN_KEYS),
                                       *schema.FILES.items()])
def test_results_doc_has_every_column_with_its_unit(name: str,
                                                    cols: tuple[schema.Column, ...]) -> None:
    text = (DOCS / "results.md").read_text()
    section = text.split(f"## `{name}`", 1)
    assert len(section) == 2, f"docs/results.md has no section for {name}"
    rows = _rows(section[1].split("\n## ", 1)[0])
    for c in cols:
        assert c.name in rows, f"{name}: {c.name} undocumented"
        assert rows[c.name][0] == c.unit, f"{name}: {c.name}'s unit"
    assert set(rows) == {c.name for c in cols}, f"{name}: documented columns not in the schema"


STAGES = ["matrix", "build", "measure", "run", "results", "analysis", "report", "commands"]
# results/ is the contract both sides import; host/, errors, progress serve every stage.
SHARED = {"results", "host", "errors", "progress", "__init__"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and \
                node.module.startswith("gostartbench"):
            parts = node.module.split(".")
            if len(parts) > 1:
                out.add(parts[1])
            else:
                out.update(a.name for a in node.names)
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("gostartbench."):
                    out.add(a.name.split(".")[1])
    return out


def test_no_stage_imports_a_later_one() -> None:
    order = {s: i for i, s in enumerate(STAGES)}
    bad = []
    for stage in STAGES:
        for f in (SRC / stage).rglob("*.py"):
            for imp in _imports(f):
                if imp in order and imp not in SHARED and order[imp] > order[stage]:
                    bad.append(f"{f.relative_to(SRC)} imports {imp}")
    for f in (SRC / "results").rglob("*.py"):  # the contract imports no stage but matrix'
        bad += [f"{f.relative_to(SRC)} imports {i}" for i in _imports(f)
                if i in order and i not in SHARED]
    assert not bad, bad


NEEDLES = ("/".join(["..", "shared"]), "/".join(["shared", "SPEC"]))  # not literal: this file


def test_nothing_points_outside_the_repo() -> None:
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True,
                           check=True).stdout.split()
    hits = []
    for name in files:
        p = REPO / name
        if p.suffix in (".png", ".svg", ".csv", ".json", ".ipynb", ".txt") or not p.is_file():
            continue
        text = p.read_text(errors="replace")
        if any(n in text for n in NEEDLES):
            hits.append(name)
    assert not hits, hits
