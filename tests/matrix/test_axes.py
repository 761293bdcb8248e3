"""Beyond the five knobs: each extra axis changes what it should in the built binary; several
Go versions in one matrix; a program outside the repository with vendored dependencies."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from gostartbench import build, matrix
from gostartbench.build import elfinfo
from gostartbench.host.tools import goamd64_supported, host_arch
from tests.conftest import GOAPPS, REPO, WriteMatrix, require


def _build(write_matrix: WriteMatrix, body: str
           ) -> tuple[matrix.Matrix, dict[str, build.BuildResult]]:
    m = matrix.load(write_matrix(body))
    return m, build.build_cells(m, m.cells)


def _one(m: matrix.Matrix, res: dict[str, build.BuildResult], **axes: str
         ) -> build.BuildResult:
    for c in m.cells:
        if all(c.axes.get(k) == v for k, v in axes.items()):
            return res[c.build_id]
    raise AssertionError(axes)


def test_musl_static_is_static_without_interpreter(write_matrix: WriteMatrix) -> None:
    require("musl-gcc")
    m, res = _build(write_matrix, f"""
    version: 1
    apps: {{netcli: {{path: {GOAPPS}/netcli}}}}
    axes: {{cgo: [1], libc: [glibc, musl-static]}}
    """)
    glibc = _one(m, res, libc="glibc")
    musl = _one(m, res, libc="musl-static")
    assert musl.status == "ok", musl.reason
    assert glibc.facts is not None and glibc.facts.linkage == "dynamic"
    assert musl.facts is not None and musl.facts.linkage == "static"
    assert musl.facts.interpreter == "" and musl.buildinfo.get("CGO_ENABLED") == "1"
    assert "-linkmode=external" in musl.buildinfo.get("-ldflags", "")
    out = subprocess.run([str(musl.binary)], capture_output=True, text=True, check=True).stdout
    assert '"timeout_s":5' in out


def test_trimpath_removes_local_paths(write_matrix: WriteMatrix) -> None:
    m, res = _build(write_matrix, f"""
    version: 1
    apps: {{hello: {{path: {GOAPPS}/hello}}}}
    axes: {{trimpath: [false, true]}}
    """)
    plain = _one(m, res, trimpath="false")
    trim = _one(m, res, trimpath="true")
    needle = str(REPO / "goapps").encode()
    assert needle in plain.binary.read_bytes()  # type: ignore[union-attr]
    assert needle not in trim.binary.read_bytes()  # type: ignore[union-attr]
    assert trim.buildinfo.get("-trimpath") == "true"


def test_goamd64_recorded_and_unrunnable_levels_skipped(write_matrix: WriteMatrix
                                                        ) -> None:
    if host_arch() != "amd64":
        pytest.skip("GOAMD64 is an amd64 setting")
    m, res = _build(write_matrix, f"""
    version: 1
    apps: {{hello: {{path: {GOAPPS}/hello}}}}
    axes: {{goamd64: [v1, v3, v4]}}
    """)
    v3 = _one(m, res, goamd64="v3")
    assert v3.buildinfo.get("GOAMD64") == "v3"
    for level in ("v3", "v4"):
        r = _one(m, res, goamd64=level)
        ok, why = goamd64_supported(level)
        if ok:
            assert r.status == "ok"
        else:  # built (its size is known) but marked skipped: this CPU cannot run it
            assert r.status == "skipped" and why in r.reason and r.facts is not None


def test_tags_gcflags_flags_and_build_env(write_matrix: WriteMatrix) -> None:
    m, res = _build(write_matrix, f"""
    version: 1
    apps: {{netcli: {{path: {GOAPPS}/netcli}}}}
    axes:
      cgo: [1]
      tags: ["", "netgo,osusergo"]
      gcflags: ["", "all=-l"]
      env.GOEXPERIMENT: [""]
    exclude: [{{tags: "netgo,osusergo", gcflags: "all=-l"}}]
    """)
    dyn = _one(m, res, tags="", gcflags="")
    netgo = _one(m, res, tags="netgo,osusergo")
    nol = _one(m, res, gcflags="all=-l")
    assert dyn.facts.linkage == "dynamic"  # type: ignore[union-attr]
    assert netgo.facts.linkage == "static"  # type: ignore[union-attr]
    assert netgo.buildinfo.get("-tags") == "netgo,osusergo"
    assert nol.buildinfo.get("-gcflags") == "all=-l"
    assert nol.facts.sha256 != dyn.facts.sha256  # type: ignore[union-attr]


def test_run_axis_cells_share_one_binary(write_matrix: WriteMatrix) -> None:
    m, res = _build(write_matrix, f"""
    version: 1
    apps: {{hello: {{path: {GOAPPS}/hello}}}}
    run: {{env.GOGC: ["100", "off"], cache: [warm, cold]}}
    """)
    assert len(m.cells) == 4 and len(res) == 1
    assert {c.run_env["GOGC"] for c in m.cells} == {"100", "off"}


def test_two_toolchains_build_and_run(write_matrix: WriteMatrix, tmp_path: Path) -> None:
    p = write_matrix(f"""
    version: 1
    toolchains: ["1.21.13", "1.27.3"]
    apps: {{hello: {{path: {GOAPPS}/hello, expect: {{stdout: "Hello, Go!"}}}}}}
    run: {{env.GOGC: ["100", "off"]}}
    measure: {{runs: 5, warmup: 1, inittrace: false, phases: false}}
    """)
    r = subprocess.run([sys.executable, "-m", "gostartbench", "run", "-m", str(p), "--out",
                        str(tmp_path / "r")], capture_output=True, text=True, timeout=900,
                       check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    cells = pd.read_csv(tmp_path / "r" / "cells.csv", dtype=str)
    assert set(cells["go_version"]) == {"go1.21.13", "go1.27.3"}
    assert cells["toolchain"].nunique() == 2
    s = pd.read_csv(tmp_path / "r" / "summary.csv", dtype={"toolchain": str})
    assert set(s["toolchain"]) == {"1.21.13", "1.27.3"} and len(s) == 4
    e = pd.read_csv(tmp_path / "r" / "effects.csv")
    assert "runenv.GOGC" in set(e["axis"])


def test_app_outside_repo_with_vendor(tmp_path: Path, write_matrix: WriteMatrix
                                      ) -> None:
    # A module of its own, with a vendored dependency that exists nowhere else.
    mod = tmp_path / "myapp"
    (mod / "cmd" / "tool").mkdir(parents=True)
    dep = mod / "vendor" / "example.com" / "greet"
    dep.mkdir(parents=True)
    (mod / "go.mod").write_text(textwrap.dedent("""\
        module example.com/myapp

        go 1.21

        require example.com/greet v1.0.0
        """))
    (mod / "vendor" / "modules.txt").write_text(
        "# example.com/greet v1.0.0\n## explicit\nexample.com/greet\n")
    (dep / "greet.go").write_text('package greet\n\nfunc Hello() string { return "vendored hi" }\n')
    (mod / "cmd" / "tool" / "main.go").write_text(textwrap.dedent("""\
        package main

        import (
            "fmt"

            "example.com/greet"
        )

        func main() { fmt.Println(greet.Hello()) }
        """))
    _, res = _build(write_matrix, f"""
    version: 1
    apps: {{tool: {{path: {mod}/cmd/tool, expect: {{stdout: "vendored hi"}}}}}}
    """)
    r = next(iter(res.values()))
    assert r.status == "ok", r.reason
    assert "-mod=vendor" in r.argv
    out = subprocess.run([str(r.binary)], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "vendored hi"
    assert os.path.isabs(str(r.binary))
    assert r.binary is not None and elfinfo.read_facts(r.binary).linkage == "static"


def test_glibc_static_and_linkmode(write_matrix: WriteMatrix) -> None:
    require("cc")
    m, res = _build(write_matrix, f"""
    version: 1
    apps: {{hello: {{path: {GOAPPS}/hello}}}}
    axes: {{cgo: [1], libc: [glibc, glibc-static], linkmode: [default, external]}}
    exclude: [{{libc: glibc-static, linkmode: external}}]
    """)
    static = _one(m, res, libc="glibc-static")
    ext = _one(m, res, libc="glibc", linkmode="external")
    default = _one(m, res, libc="glibc", linkmode="default")
    assert static.status == "ok", static.reason
    assert static.facts is not None and static.facts.linkage == "static"
    assert static.facts.interpreter == ""
    assert "-linkmode=external" in static.buildinfo.get("-ldflags", "")
    # hello has no C code: the internal linker keeps it static; the external one (gcc) links
    # libc dynamically
    assert default.facts is not None and default.facts.linkage == "static"
    assert ext.facts is not None and ext.facts.linkage == "dynamic"
    for r in (static, ext, default):
        out = subprocess.run([str(r.binary)], capture_output=True, text=True, check=True)
        assert out.stdout.strip() == "Hello, Go!"


def test_other_arch_level_is_skipped_unbuilt(write_matrix: WriteMatrix) -> None:
    other = "goarm64" if host_arch() == "amd64" else "goamd64"
    value = "v8.0" if other == "goarm64" else "v1"
    _, res = _build(write_matrix, f"""
    version: 1
    apps: {{hello: {{path: {GOAPPS}/hello}}}}
    axes: {{{other}: ["{value}"]}}
    """)
    r = next(iter(res.values()))
    assert r.status == "skipped" and r.binary is None
    assert f"{other.upper()} applies to" in r.reason
