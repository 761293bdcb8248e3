"""The build stage on real binaries: real go, strip and upx; properties read from the ELF."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from gostartbench import build, matrix
from gostartbench.build import elfinfo
from gostartbench.cli import main
from tests.conftest import FIXTURES, GOAPPS, WriteMatrix, require

MATRIX = f"""
version: 1
apps:
  hello: {{path: {GOAPPS}/hello, expect: {{stdout: "Hello, Go!"}}}}
  netcli: {{path: {GOAPPS}/netcli}}
axes:
  buildmode: [exe, pie]
  ldflags: ["", "-s -w"]
  cgo: [0, 1]
  strip: [none, unneeded, debug, all]
  upx: [none, best]
exclude:
  - {{ldflags: "-s -w", strip: [unneeded, debug, all]}}
  - {{ldflags: "-s -w", upx: best}}
  - {{app: hello, cgo: 1}}
  - {{app: netcli, buildmode: pie}}
  - {{app: netcli, ldflags: "-s -w"}}
  - {{app: netcli, strip: [unneeded, debug, all]}}
  - {{app: netcli, upx: best}}
  - {{buildmode: pie, strip: [debug, all]}}
include:
  - {{app: hello, cgo: 1}}
"""


Built = tuple[matrix.Matrix, dict[str, build.BuildResult]]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory
          ) -> tuple[matrix.Matrix, dict[str, build.BuildResult]]:
    for tool in ("strip", "upx", "cc"):
        require(tool)
    p = tmp_path_factory.mktemp("m") / "matrix.yaml"
    p.write_text(MATRIX)
    m = matrix.load(p)
    return m, build.build_cells(m, m.cells)


def _get(built: tuple[matrix.Matrix, dict[str, build.BuildResult]], **axes: str
         ) -> build.BuildResult:
    m, res = built
    app = axes.pop("app", "hello")
    want = {"buildmode": "exe", "ldflags": "", "cgo": "0", "strip": "none", "upx": "none",
            **axes}
    for c in m.cells:
        if c.app == app and all(c.build_values[k] == v for k, v in want.items()):
            return res[c.build_id]
    raise AssertionError(f"no cell {app} {want}")


def _run(binary: Path | None) -> str:
    assert binary is not None
    return subprocess.run([str(binary)], capture_output=True, text=True, check=True).stdout


def test_exe_static_and_pie_dynamic(built: Built) -> None:
    exe = _get(built)
    pie = _get(built, buildmode="pie")
    assert exe.status == "ok" and exe.facts is not None
    assert exe.facts.elf_type == "EXEC" and exe.facts.linkage == "static"
    assert pie.facts is not None and pie.facts.elf_type == "DYN"
    assert pie.facts.interpreter.startswith("/lib")  # even with CGO_ENABLED=0
    assert _run(pie.binary).strip() == "Hello, Go!"


def test_ldflags_s_w_drops_symbols_and_dwarf(built: Built) -> None:
    r = _get(built, ldflags="-s -w")
    assert r.binary is not None
    names = elfinfo.section_names(r.binary)
    assert ".symtab" not in names and not any(n.startswith(".debug_") for n in names)
    full = elfinfo.section_names(_get(built).binary)  # type: ignore[arg-type]
    assert ".symtab" in full and any(n.startswith(".debug_") for n in full)


@pytest.mark.parametrize(("mode", "symtab", "debug"),
                         [("unneeded", False, False), ("debug", True, False),
                          ("all", False, False)])
def test_strip_variants(built: Built, mode: str, symtab: bool, debug: bool) -> None:
    r = _get(built, strip=mode)
    assert r.status == "ok" and r.facts is not None and r.binary is not None
    names = elfinfo.section_names(r.binary)
    assert (".symtab" in names) is symtab
    assert any(n.startswith(".debug_") for n in names) is debug
    assert r.facts.size_bytes < _get(built).facts.size_bytes  # type: ignore[union-attr]
    assert _run(r.binary).strip() == "Hello, Go!"


def test_upx_packs_smaller_and_runs(built: Built) -> None:
    r = _get(built, upx="best")
    base = _get(built)
    assert r.status == "ok" and r.binary is not None and r.facts is not None
    assert elfinfo.is_upx(r.binary) and r.facts.packed == "upx"
    assert r.facts.size_bytes < 0.8 * base.facts.size_bytes  # type: ignore[union-attr]
    assert _run(r.binary).strip() == "Hello, Go!"


def test_upx_refuses_internally_linked_pie(built: Built) -> None:
    r = _get(built, buildmode="pie", upx="best")
    assert r.status == "failed"
    assert "upx refused" in r.reason and "CantPackException" in r.reason


def test_netcli_cgo_decides_linkage(built: Built) -> None:
    c0 = _get(built, app="netcli", cgo="0")
    c1 = _get(built, app="netcli", cgo="1")
    assert c0.facts is not None and c0.facts.linkage == "static"
    assert c1.facts is not None and c1.facts.linkage == "dynamic"
    assert "libc.so.6" in c1.facts.needed


def test_identical_but_for_build_info(built: Built) -> None:
    m, res = built
    notes = build.mark_identical(res)
    h0 = next(c for c in m.cells if c.app == "hello" and c.build_values["cgo"] == "0"
              and c.build_values["buildmode"] == "exe" and c.build_values["ldflags"] == ""
              and c.build_values["strip"] == "none" and c.build_values["upx"] == "none")
    h1 = next(c for c in m.cells if c.app == "hello" and c.build_values["cgo"] == "1")
    f0, f1 = res[h0.build_id].facts, res[h1.build_id].facts
    assert f0 is not None and f1 is not None and f0.sha256 != f1.sha256
    assert "identical but for Go build info" in notes[h1.build_id]
    assert h0.build_id in notes[h1.build_id]


def test_second_build_rebuilds_nothing(built: Built) -> None:
    m, first = built
    again = build.build_cells(m, m.cells)
    assert all(r.cached for r in again.values() if r.status == "ok")
    assert not any(r.cached for r in again.values() if r.status == "failed")  # tried again
    assert {k: r.key for k, r in again.items()} == {k: r.key for k, r in first.items()}


def test_x_values_with_spaces_and_quotes(write_matrix: WriteMatrix) -> None:
    p = write_matrix(f"""
    version: 1
    apps: {{xvar: {{path: {FIXTURES}/xvar}}}}
    axes:
      ldflags: ["-X 'main.version=a b \\"c\\"'"]
    """)
    m = matrix.load(p)
    res = build.build_cells(m, m.cells)
    r = next(iter(res.values()))
    assert r.status == "ok", r.reason
    assert _run(r.binary).strip() == 'a b "c"'


def test_compile_error_is_recorded(write_matrix: WriteMatrix) -> None:
    p = write_matrix(f"""
    version: 1
    apps: {{broken: {{path: {FIXTURES}/compileerr}}, hello: {{path: {GOAPPS}/hello}}}}
    """)
    m = matrix.load(p)
    res = build.build_cells(m, m.cells)
    broken = next(r for k, r in res.items() if k.startswith("broken"))
    hello = next(r for k, r in res.items() if k.startswith("hello"))
    assert broken.status == "failed" and "undefinedFunction" in broken.reason
    assert hello.status == "ok"


def test_build_cli_writes_cells_csv(write_matrix: WriteMatrix, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    p = write_matrix(f"""
    version: 1
    apps: {{hello: {{path: {GOAPPS}/hello}}}}
    axes: {{ldflags: ["", "-s -w"]}}
    """)
    assert main(["build", "-m", str(p), "--out", str(tmp_path / "o")]) == 0
    text = (tmp_path / "o" / "cells.csv").read_text()
    header = text.splitlines()[0].split(",")
    for col in ("cell", "app", "toolchain", "ldflags", "status", "reason", "binary", "size_bytes",
                "text_bytes", "data_bytes", "debug_bytes", "linkage", "sha256", "build_s"):
        assert col in header
    assert "static" in capsys.readouterr().out


def test_missing_tool_skips_only_its_cells(write_matrix: WriteMatrix,
                                           tmp_path: Path) -> None:
    require("strip")
    # A PATH with everything but upx.
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("strip", "cc", "gcc", "as", "ld", "ld.bfd", "ld.gold", "objcopy"):
        w = shutil.which(tool)
        if w:
            (bindir / tool).symlink_to(w)
    p = write_matrix(f"""
    version: 1
    apps: {{hello: {{path: {GOAPPS}/hello}}}}
    axes: {{upx: [none, best]}}
    """)
    env = {**os.environ, "PATH": f"{bindir}:{Path(sys.executable).parent}"}
    out = subprocess.run([sys.executable, "-m", "gostartbench", "build", "-m", str(p), "--out",
                          str(tmp_path / "o")], env=env, capture_output=True, text=True,
                         check=False)
    assert out.returncode == 0, out.stderr
    rows = (tmp_path / "o" / "cells.csv").read_text()
    assert "skipped" in rows and "upx not found" in rows and "apt-get install" in rows
    assert ",ok," in rows


def test_two_processes_build_the_same_cell(write_matrix: WriteMatrix) -> None:
    # A fresh cache key (a build-environment value no other test uses), built by two
    # processes at once: both end with the same good binary.
    nonce = uuid.uuid4().hex[:8]
    p = write_matrix(f"""
    version: 1
    apps: {{hello: {{path: {GOAPPS}/hello}}}}
    axes: {{env.GSB_NONCE: ["{nonce}"], strip: [unneeded]}}
    """)
    code = ("import sys; from gostartbench import matrix, build;"
            "m = matrix.load(sys.argv[1]); r = build.build_cells(m, m.cells);"
            "x = next(iter(r.values())); print(x.status, x.binary, x.reason)")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(p)], stdout=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outs = [pr.communicate(timeout=600)[0].split() for pr in procs]
    assert [o[0] for o in outs] == ["ok", "ok"], outs
    assert outs[0][1] == outs[1][1]
    assert _run(Path(outs[0][1])).strip() == "Hello, Go!"


def test_failed_build_is_not_cached(write_matrix: WriteMatrix, tmp_path: Path) -> None:
    """A failure is never served from the cache: fixed outside the key (here: the source is
    repaired in place between two builds of one matrix), the next build succeeds."""
    src = tmp_path / "mod"
    shutil.copytree(FIXTURES / "compileerr", src / "app")
    (src / "go.mod").write_text("module example.com/fixme\n\ngo 1.21\n")
    p = write_matrix(f"version: 1\napps: {{fixme: {{path: {src}/app}}}}\n")
    m = matrix.load(p)
    first = next(iter(build.build_cells(m, m.cells).values()))
    assert first.status == "failed" and not first.cached
    assert not build.entry_dir(first.key).exists()  # nothing stored under the failure's key
    again = next(iter(build.build_cells(m, m.cells).values()))
    assert again.status == "failed" and not again.cached  # tried again, not replayed
    (src / "app" / "main.go").write_text('package main\n\nfunc main() { println("fixed") }\n')
    build.TREE_CACHE.clear()  # a new process would hash the tree anew
    fixed = next(iter(build.build_cells(m, m.cells).values()))
    assert fixed.status == "ok", fixed.reason


def test_module_location_is_in_the_key_without_trimpath(write_matrix: WriteMatrix,
                                                        tmp_path: Path) -> None:
    """Two identical copies of a module in two places: without -trimpath the binaries embed
    their paths, so they are two cache entries; with -trimpath, one; and with a -trimpath that
    a later `-trimpath=false` turns off (the gate adds -trimpath; a matrix's flags may undo
    it), two again — the last flag decides, as Go's does."""
    assert build.trims_paths(["-trimpath"]) and not build.trims_paths(
        ["-trimpath", "-trimpath=false"]) and build.trims_paths(["-trimpath=false", "-trimpath"])
    keys: dict[str, set[str]] = {"false": set(), "true": set(), "undone": set()}
    for where in ("one", "two"):
        shutil.copytree(GOAPPS / "hello", tmp_path / where / "hello")
        (tmp_path / where / "go.mod").write_text("module example.com/copy\n\ngo 1.21\n")
        p = write_matrix(f"""
        version: 1
        apps: {{hello: {{path: {tmp_path / where}/hello}}}}
        axes: {{trimpath: [false, true]}}
        """, name=f"{where}.yaml")
        m = matrix.load(p)
        for c in m.cells:
            plan = build.plan_for(c, m.app(c.app).path)
            tc = build.get_toolchain(c.toolchain)
            keys[c.build_values["trimpath"]].add(build.go_key(plan, tc))
            if c.build_values["trimpath"] == "true":
                undone = dataclasses.replace(plan, go_args=(*plan.go_args, "-trimpath=false"))
                keys["undone"].add(build.go_key(undone, tc))
    assert len(keys["false"]) == 2 and len(keys["true"]) == 1 and len(keys["undone"]) == 2
