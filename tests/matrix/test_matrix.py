"""matrix.yaml: expansion (pure, ordered, stable ids) and validation (one line, exit 2)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gostartbench import matrix
from gostartbench.cli import main
from gostartbench.errors import InputError
from tests.conftest import WriteMatrix

BASE = """
version: 1
toolchains: ["1.27.3"]
apps:
  hello:
    path: @GOAPPS@/hello
    expect: {exit: 0, stdout: "Hello, Go!"}
  netcli:
    path: @GOAPPS@/netcli
axes:
  buildmode: [exe, pie]
  ldflags: ["", "-s -w"]
  cgo: [0, 1]
  strip: [none, unneeded]
  upx: [none, best]
run:
  cache: [warm, cold]
exclude:
  - {buildmode: pie, upx: [fast, best, lzma]}
baseline: {buildmode: exe, ldflags: "", cgo: 0, strip: none, upx: none, cache: warm}
"""


def test_expansion_counts_order_and_ids(write_matrix: WriteMatrix) -> None:
    m = matrix.load(write_matrix(BASE))
    # 2 apps × (32 combos − 8 pie+upx) × 2 caches... exclude removes pie+best (2×2×2×2 = 8 per
    # app and cache... computed directly:
    per_app = 2 * 2 * 2 * 2 * 2 * 2 - 1 * 2 * 2 * 2 * 1 * 2  # 64 − 16
    assert len(m.cells) == 2 * per_app
    ids = [c.id for c in m.cells]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[A-Za-z0-9._+=-]+", i) for i in ids)
    assert ids[0] == "hello_go1.27.3_exe_ld-none_cgo0_strip-none_upx-none_warm"
    # stable: the same file gives the same ids in the same order
    assert [c.id for c in matrix.load(write_matrix(BASE)).cells] == ids
    # run axes share a binary
    warm = next(c for c in m.cells if c.id.endswith("_warm"))
    cold = next(c for c in m.cells if c.id == warm.id[:-5] + "_cold")
    assert warm.build_id == cold.build_id and warm.id != cold.id


def test_baseline_of_and_select(write_matrix: WriteMatrix) -> None:
    m = matrix.load(write_matrix(BASE))
    c = next(x for x in m.cells if x.app == "netcli" and x.axes["buildmode"] == "pie"
             and x.axes["cache"] == "warm")
    b = m.baseline_of(c)
    assert b is not None and b.app == "netcli" and b.axes["buildmode"] == "exe"
    sel = matrix.select(m.cells, "hello and pie and not cold")
    assert sel and all("hello" in x.id and "pie" in x.id and "cold" not in x.id for x in sel)
    with pytest.raises(InputError):
        matrix.select(m.cells, "hello and (pie")


def test_include_adds_cells_with_defaults(write_matrix: WriteMatrix) -> None:
    m = matrix.load(write_matrix(BASE + """
include:
  - {app: hello, buildmode: pie, upx: best, cache: warm}
  - {app: hello, trimpath: true}
"""))
    ids = [c.id for c in m.cells]
    assert any("pie" in i and "upx-best" in i for i in ids)
    trim = [c for c in m.cells if c.build_values["trimpath"] == "true"]
    assert len(trim) == 1 and trim[0].app == "hello"


def test_exclude_rule_matching_nothing_warns(write_matrix: WriteMatrix) -> None:
    text = BASE.replace("exclude:\n", "exclude:\n  - {app: hello, strip: all}\n")
    m = matrix.load(write_matrix(text))
    assert any("exclude[0]" in w and "matches no cell" in w for w in m.warnings)


def test_ldflags_with_quotes_is_one_value(write_matrix: WriteMatrix) -> None:
    m = matrix.load(write_matrix(BASE.replace('ldflags: ["", "-s -w"]',
                                              """ldflags: ["-X 'main.v=a b'"]""")
                                 .replace('ldflags: "",', "")))
    assert m.cells[0].build_values["ldflags"] == "-X 'main.v=a b'"


# --- validation: one line, file:line, key, exit 2 -------------------------------------------

CASES = [
    # (description, edit (old, new) or a whole text, expected key, expected line, message part)
    ("yaml syntax", ("  buildmode: [exe, pie]", "  buildmode: [exe, pie"), None, None,
     "YAML syntax error"),
    ("unknown top key", ("baseline:", "baselin:"), "baselin", 20, "did you mean 'baseline'"),
    ("unknown axis", ("  strip: [none, unneeded]", "  stirp: [none, unneeded]"), "axes.stirp",
     14, "did you mean 'strip'"),
    ("unknown axis value", ("upx: [none, best]", "upx: [none, bset]"), "axes.upx[1]", 15,
     "did you mean 'best'"),
    ("empty axis", ("cgo: [0, 1]", "cgo: []"), "axes.cgo", 13, "at least one value"),
    ("wrong type", ("runs: 5", "runs: many"), "measure.runs", None, "positive integer"),
    ("zero runs", ("runs: 5", "runs: 0"), "measure.runs", None, "positive integer"),
    ("negative timeout", ("runs: 5", "timeout_s: -1"), "measure.timeout_s", None, "positive"),
    ("bad timer", ("runs: 5", "timer: stopwatch"), "measure.timer", None, "allowed: spawn"),
    ("duplicate app", ("  netcli:\n", "  hello:\n"), "apps.hello", None, "duplicate key"),
    ("missing app path", ("path: @GOAPPS@/netcli", "path: @GOAPPS@/nope"),
     "apps.netcli.path", 9, "does not exist"),
    ("not a main package", ("path: @GOAPPS@/netcli", "path: @FIXTURES@"),
     "apps.netcli.path", 9, "no .go files"),
    ("baseline matches nothing", ("baseline: {buildmode: exe,", "baseline: {buildmode: exe, "
                                  "trimpath: true,"), "baseline", 20, "matches no cell"),
    ("rule names unknown axis", ("{buildmode: pie, upx:", "{buildmod: pie, upx:"),
     "exclude[0].buildmod", 19, "did you mean 'buildmode'"),
    ("rule value not in matrix", ("{buildmode: pie, upx:", "{buildmode: pi, upx:"),
     "exclude[0].buildmode", 19, "did you mean 'pie'"),
    ("unknown toolchain", ('toolchains: ["1.27.3"]', 'toolchains: ["1.27.9"]'), "toolchains[0]",
     3, "available"),
    ("no cell", ("exclude:\n", "exclude:\n  - {cache: [warm, cold]}\n"), "exclude", None,
     "expands to no cell"),
    ("bad version", ("version: 1", "version: 2"), "version", 2, "allowed: 1"),
    ("include unknown axis", ("exclude:\n", "include:\n  - {buildmod: pie}\nexclude:\n"),
     "include[0].buildmod", 19, "did you mean 'buildmode'"),
    ("not package main", ("path: @GOAPPS@/netcli", "path: @FIXTURES@/notmain"),
     "apps.netcli.path", 9, "not a main package"),
    ("bad env name", ("  cache: [warm, cold]", "  cache: [warm, cold]\n  env.1X: [a]"),
     "run.env.1X", None, "environment variable"),
    ("bad ready", ("    path: @GOAPPS@/netcli", "    path: @GOAPPS@/netcli\n    ready: {tcp: 0}"),
     "apps.netcli.ready.tcp", None, "port"),
]


@pytest.mark.parametrize(("desc", "edit", "key", "line", "msg"), CASES,
                         ids=[c[0] for c in CASES])
def test_validation_errors(desc: str, edit: tuple[str, str], key: str | None, line: int | None,
                           msg: str, write_matrix: WriteMatrix,
                           capsys: pytest.CaptureFixture[str]) -> None:
    text = BASE + "measure:\n  runs: 5\n"
    assert edit[0] in text, desc
    p = write_matrix(text.replace(edit[0], edit[1], 1))
    code = main(["validate", "-m", str(p)])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.count("\n") == 0, err  # one line
    assert "Traceback" not in err
    assert str(p) in err
    if key:
        assert f": {key}: " in err, err
    if line:
        assert f"{p}:{line}:" in err, err
    assert msg in err, err


def test_validate_ok_and_list_json(write_matrix: WriteMatrix,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    p = write_matrix(BASE)
    assert main(["validate", "-m", str(p)]) == 0
    assert "96 cells" in capsys.readouterr().out
    assert main(["list", "-m", str(p), "--json", "-k", "hello and warm"]) == 0
    cells = json.loads(capsys.readouterr().out)
    assert cells and all(c["axes"]["cache"] == "warm" for c in cells)


def test_cli_as_module_no_traceback_on_missing_file(tmp_path: Path) -> None:
    p = subprocess.run([sys.executable, "-m", "gostartbench", "validate", "-m",
                        str(tmp_path / "none.yaml")], capture_output=True, text=True,
                       check=False)
    assert p.returncode == 2
    assert "cannot read matrix file" in p.stderr and "Traceback" not in p.stderr


def test_usage_error_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--runs", "x"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "invalid int value" in err


def test_app_names_cannot_escape(write_matrix: WriteMatrix,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    p = write_matrix(BASE.replace("  netcli:\n", "  ../../etc:\n"))
    assert main(["validate", "-m", str(p)]) == 2
    assert "must be letters" in capsys.readouterr().err


def _timed_validate(p: Path, *extra: str) -> tuple[subprocess.CompletedProcess[str], float]:
    import time

    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "gostartbench", "validate", "-m", str(p), *extra],
                       capture_output=True, text=True, check=False, timeout=120)
    return r, time.monotonic() - t0


def test_huge_matrix_is_refused_before_expanding(write_matrix: WriteMatrix) -> None:
    """Eight run axes of 30 values (~6.6 × 10^11 cells): refused in one line naming the axes
    that multiply, exit 2 (the subprocess timeout guards against a hang)."""
    axes = "\n".join(f"  env.V{i}: [{', '.join(str(v) for v in range(30))}]" for i in range(8))
    p = write_matrix(BASE.split("run:")[0].split("axes:")[0] + "run:\n" + axes + "\n")
    r, _ = _timed_validate(p)
    assert r.returncode == 2, r.stdout + r.stderr
    err = r.stderr.strip()
    assert err.count("\n") == 0 and "Traceback" not in err
    assert "over the limit of 10,000" in err and "(env.V0 30 × env.V1 30" in err
    assert "--max-cells" in err
    small = write_matrix(BASE, name="small.yaml")
    r2, _ = _timed_validate(small, "--max-cells", "50")
    assert r2.returncode == 2 and "limit of 50" in r2.stderr


def test_yaml_alias_bomb_is_refused(write_matrix: WriteMatrix) -> None:
    levels = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for i in range(1, 8):  # 10^8 values once expanded
        refs = ", ".join([f"*a{i - 1}"] * 10)
        levels.append(f"a{i}: &a{i} [{refs}]")
    body = "version: 1\nx-bomb:\n" + "\n".join("  " + ln for ln in levels) + "\n"
    p = write_matrix(body)
    r, _ = _timed_validate(p)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "expands to more than" in r.stderr and "Traceback" not in r.stderr


def test_unavailable_cpu_is_refused_at_validation(write_matrix: WriteMatrix) -> None:
    import os

    bad = max(os.sched_getaffinity(0)) + 1000
    p = write_matrix(BASE + f"measure: {{cpus: [{bad}]}}\n")
    r, _ = _timed_validate(p)
    assert r.returncode == 2
    assert f"measure.cpus: CPU {bad} not available" in r.stderr
