"""The results contract's own rules (pure): every file's columns are unique and documented
with a unit field; profile_stacks.csv's frames read back as written; samples.csv's
after_cell stays text, and a run from before it has no such column."""

from __future__ import annotations

from pathlib import Path

from gostartbench.measure.profile import Frame
from gostartbench.results import read_samples
from gostartbench.results.schema import FILES, SAMPLES_COLUMNS, frames_of, frames_text


def test_every_files_columns_are_unique_and_described() -> None:
    for name, cols in FILES.items():
        names = [c.name for c in cols]
        assert len(names) == len(set(names)), name
        assert all(c.doc for c in cols), name


def test_a_stack_reads_back_as_written() -> None:
    stack = (Frame("main.serve", "/src/main.go", 21, "/bin/app"),
             Frame("runtime.main", "/go/src/runtime/proc.go", 283, "/bin/app"),
             Frame("[unknown in ld.so]", "", 0, "/lib/ld.so"))
    back = frames_of(frames_text(stack))
    assert back == [(f.function, f.file, f.line, f.dso) for f in stack]
    assert frames_of("") == []


def test_after_cell_is_text_and_absent_before_it(tmp_path: Path) -> None:
    (tmp_path / "samples.csv").write_text(",".join(SAMPLES_COLUMNS) + "\n" + ",".join(
        {"cell": "a", "round": "0", "ok": "true", "wall_ns": "1000", "after_cell": "0",
         "timer": "spawn"}.get(c, "") for c in SAMPLES_COLUMNS) + "\n")
    s = read_samples(tmp_path)
    assert s["after_cell"].iloc[0] == "0"  # a cell named "0" is a name, not a number
    old = [c for c in SAMPLES_COLUMNS if c != "after_cell"]
    (tmp_path / "samples.csv").write_text(",".join(old) + "\n" + ",".join(
        {"cell": "a", "round": "0", "ok": "true", "wall_ns": "1000"}.get(c, "")
        for c in old) + "\n")
    assert "after_cell" not in read_samples(tmp_path)
