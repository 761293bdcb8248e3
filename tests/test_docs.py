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


# The stages, in the order data flows; each may import earlier stages and the base layers.
STAGES = ["matrix", "build", "measure", "run", "analysis", "report", "commands"]
# The base layers, each importing only those before it and no stage: errors, then the
# statistics, the results contract, host facts and the progress line.
BASE = ["errors", "stats", "results", "host", "progress"]
# The entry points above everything.
TOP = {"cli", "__main__", "__init__"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and \
                node.module.startswith("gostartbench"):
            parts = node.module.split(".")
            if len(parts) > 1:
                out.add(parts[1])
            else:  # `from gostartbench import build`: the modules, not `__version__`
                out.update(a.name for a in node.names if not a.name.startswith("__"))
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("gostartbench."):
                    out.add(a.name.split(".")[1])
    return out


def _unit(path: Path) -> str:
    """The package (or top-level module) a source file belongs to."""
    rel = path.relative_to(SRC)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def test_every_package_imports_only_earlier_layers() -> None:
    order = {name: i for i, name in enumerate([*BASE, *STAGES])}
    bad, unknown = [], set()
    for f in SRC.rglob("*.py"):
        unit = _unit(f)
        if unit in TOP:
            continue
        if unit not in order:
            unknown.add(unit)
            continue
        for imp in _imports(f) - {unit}:
            if imp not in order or order[imp] > order[unit] or \
                    (unit in BASE and imp in STAGES):
                bad.append(f"{f.relative_to(SRC)} imports {imp}")
    assert not unknown, f"packages in no layer (add them to BASE or STAGES): {unknown}"
    assert not bad, bad


def test_no_private_name_is_imported_across_modules() -> None:
    bad = []
    for root in (SRC, REPO / "tests", REPO / "benchmarks"):
        for f in root.rglob("*.py"):
            for node in ast.walk(ast.parse(f.read_text())):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                        "gostartbench"):
                    bad += [f"{f.relative_to(REPO)}: {node.module}.{a.name}"
                            for a in node.names
                            if a.name.startswith("_") and not a.name.startswith("__")]
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


def test_the_arm64_check_names_tests_that_exist() -> None:
    # The arm64 check runs a list of test paths inside an emulated root; one that moved would
    # fail there only, after the whole suite.
    tree = ast.parse((REPO / ".ci" / "arm64_check.py").read_text())
    paths = [ast.literal_eval(node.value) for node in tree.body
             if isinstance(node, ast.Assign)
             and any(isinstance(t, ast.Name) and t.id == "FAST_TESTS" for t in node.targets)]
    assert paths and paths[0], "FAST_TESTS not found in .ci/arm64_check.py"
    missing = [p for p in paths[0] if not (REPO / p).exists()]
    assert not missing, missing


def _doc_files() -> list[Path]:
    return [REPO / "README.md", REPO / "goapps" / "README.md", *sorted(DOCS.glob("*.md"))]


def _anchor(title: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    t = re.sub(r"[^\w\- ]", "", title.strip().lower())
    return t.replace(" ", "-")


@pytest.mark.parametrize("doc", _doc_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_resolves(doc: Path) -> None:
    """Markdown links and images to files of the repo exist, and their #anchors name a
    heading of the file they point to."""
    text = re.sub(r"```.*?```", "", doc.read_text(), flags=re.S)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"^[a-z]+:", target):
            continue  # a URL
        path, _, anchor = target.partition("#")
        dest = (doc.parent / path).resolve() if path else doc
        assert dest.exists(), f"{doc.name}: link to {target} does not resolve"
        if anchor and dest.suffix == ".md":
            heads = {_anchor(h) for h in re.findall(r"^#+ (.+)$", dest.read_text(), re.M)}
            assert anchor in heads, f"{doc.name}: {target}: no heading #{anchor} in {dest.name}"


def _nox_sessions() -> set[str]:
    tree = ast.parse((REPO / "noxfile.py").read_text())
    return {f.name for f in tree.body if isinstance(f, ast.FunctionDef)
            and any("session" in ast.unparse(d) for d in f.decorator_list)}


def _subcommands() -> set[str]:
    from gostartbench.cli import COMMANDS

    return set(COMMANDS)


@pytest.mark.parametrize("doc", _doc_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_command_shown_is_real(doc: Path) -> None:
    """In code blocks, `gostartbench X` is a real subcommand and `nox -s X` a real session."""
    fences = re.findall(r"^```(\w*)\n(.*?)^```", doc.read_text(), flags=re.S | re.M)
    blocks = [body for lang, body in fences if lang in ("sh", "bash", "console", "")]
    subs, sessions = _subcommands(), _nox_sessions()
    seen = 0
    for block in blocks:
        for m in re.finditer(r"(?:^|[\s;(&|])gostartbench\s+([a-z][\w-]*)", block):
            assert m.group(1) in subs, f"{doc.name}: `gostartbench {m.group(1)}` is no command"
            seen += 1
        for m in re.finditer(r"nox\s+-s\s+([\w-]+)", block):
            assert m.group(1) in sessions, f"{doc.name}: `nox -s {m.group(1)}` is no session"
            seen += 1
    if doc.name == "README.md" and doc.parent == REPO:
        assert seen >= 3  # the two commands and the gate


def test_readme_is_a_landing_page() -> None:
    """The README stays short: the commands, a result, your own program, a map of the docs."""
    text = (REPO / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    assert "spec" not in text.lower().split("## ")[0] and "## Where this improves" not in text
    first_screen = "\n".join(text.splitlines()[:60])
    for must in ("nox -s bench", "nox -s tests", "results/example", "docs/"):
        assert must in text, must
    assert "nox -s bench" in first_screen and "nox -s tests" in first_screen
