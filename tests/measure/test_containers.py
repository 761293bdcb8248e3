"""Container cells with a real engine (podman) and real local images: a static program runs in
`scratch` and the local musl image, timed inside the image and through the engine; a
glibc-dynamic cgo binary fails there with the missing loader named; nothing is left running
after a run or an interrupt; an engine that cannot run is a skip with its reason (a failure
under CI=true)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from gostartbench.cli import main
from gostartbench.matrix import load
from gostartbench.measure import container
from tests.conftest import WriteMatrix, require, skip_or_fail

MATRIX = """\
version: 1
apps:
  hello: {path: @GOAPPS@/hello, expect: {stdout: "Hello, Go!"}}
  netcli: {path: @GOAPPS@/netcli, expect: {exit: 0, stdout_contains: '"timeout_s":5'}}
axes:
  cgo: [0, 1]
run:
  container: [none, scratch, gostartbench/musl]
  launch: [direct, engine]
  cache: [warm, cold]
exclude:
  - {app: hello, cgo: 1}
measure: {runs: RUNS, warmup: 1, inittrace: false, phases: false, calibration: "off"}
"""


@pytest.fixture(scope="module", autouse=True)
def no_images_left() -> Iterator[None]:
    """The cells' images these tests built are removed when they are done (the local base
    images stay, as after `gostartbench clean`: remade only when missing); an image another
    run is using, and every container, is left alone."""
    yield
    eng, _ = container.find_engine("podman")
    if eng is not None:
        container.remove_images(eng, force=False)


@pytest.fixture
def engine() -> container.Engine:
    """podman, able to run containers here (skip with why; fail under CI=true)."""
    require("podman")
    eng, why = container.find_engine("podman")
    problem = container.usable(eng, why)
    if eng is None or problem:
        skip_or_fail("a container engine", f"containers cannot run here: {problem}")
    return eng


def _left(eng: container.Engine, run_dir: Path) -> list[str]:
    p = subprocess.run([eng.path, "ps", "-a", "-q", "--filter",
                        f"label={container.RUN_LABEL}={container.run_id(run_dir)}"],
                       capture_output=True, text=True, check=True)
    return p.stdout.split()


def test_programs_run_inside_local_images_and_through_the_engine(
        engine: container.Engine, write_matrix: WriteMatrix, tmp_path: Path) -> None:
    m = write_matrix(MATRIX.replace("RUNS", "4"))
    out = tmp_path / "run"
    code = main(["run", "-m", str(m), "--out", str(out), "--no-report"])
    assert code == 1  # the dynamic binaries in images without glibc's loader fail
    cells = pd.read_csv(out / "cells.csv", dtype=str, keep_default_na=False).set_index("cell")
    assert set(cells["container"]) == {"none", "scratch", "gostartbench/musl"}
    # host cells are direct only: `launch: engine` and `container: none` make no cell
    assert not ((cells["container"] == "none") & (cells["launch"] == "engine")).any()
    static = cells[(cells["cgo"] == "0") | (cells["container"] == "none")]
    assert (static["status"] == "ok").all(), static[static["status"] != "ok"]["reason"]
    dyn = cells[(cells["cgo"] == "1") & (cells["container"] != "none")]
    assert len(dyn) == 8 and (dyn["status"] == "failed").all()
    for cell, r in dyn.iterrows():
        if r["launch"] == "direct":  # the spawn helper inside the image names the loader
            assert "/lib64/ld-linux-x86-64.so.2" in r["reason"] and \
                r["container"] in r["reason"], (cell, r["reason"])
        else:  # the engine's own answer
            assert "No such file or directory" in r["reason"], (cell, r["reason"])
    samples = pd.read_csv(out / "samples.csv")
    timed = samples[(samples["round"] >= 0) & samples["ok"]]
    for cell in static.index:
        assert (timed["cell"] == cell).sum() == 4, cell
    run = json.loads((out / "run.json").read_text())
    assert run["containers"]["engine"] == "podman"
    assert set(run["containers"]["images"]) == {"scratch", "gostartbench/musl"}
    assert _left(engine, out) == []
    # the image of a cell is cached by content: a second build of the plan makes none
    img = container.cell_image(engine, "scratch", Path(str(cells.iloc[0]["binary"])),
                               str(cells.iloc[0]["sha256"]))
    assert container.image_exists(engine, img.tag) and img.host_binary.is_file()


def test_an_interrupted_run_leaves_no_container(engine: container.Engine,
                                                write_matrix: WriteMatrix,
                                                tmp_path: Path) -> None:
    """SIGINT while the timing runs inside containers: exit 130, and no container of the run
    is left, running or stopped."""
    m = write_matrix(MATRIX.replace("RUNS", "1500"))
    out = tmp_path / "run"
    log = (tmp_path / "log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "gostartbench", "run", "-m", str(m), "--out",
                             str(out), "-k", "hello", "--no-report"],
                            stdout=log, stderr=subprocess.STDOUT,
                            # a suite started as a background job inherits SIGINT ignored
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 300
        seen: list[str] = []
        while time.monotonic() < deadline and proc.poll() is None:
            samples = out / "samples.csv"
            if samples.exists() and "in-scratch_launch-direct" in samples.read_text():
                seen = _left(engine, out)
                if seen:
                    break
            time.sleep(0.5)
        assert seen, "no container of the run seen: " + (tmp_path / "log").read_text()[-800:]
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    assert proc.returncode == 130, (tmp_path / "log").read_text()[-2000:]
    assert _left(engine, out) == []
    assert json.loads((out / "run.json").read_text())["status"] == "interrupted"
    # `gostartbench clean` removes the cells' images (the local bases stay without --all)
    assert main(["clean"]) == 0
    left = subprocess.run([engine.path, "images", "-q", "--filter",
                           f"label={container.LABEL}=cell"], capture_output=True, text=True,
                          check=True).stdout.split()
    assert left == []
    assert container.image_exists(engine, container.LOCAL_MUSL)


def test_without_an_engine_container_cells_are_skipped_with_why(
        write_matrix: WriteMatrix, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No engine found: container cells skipped with one line of why (host cells measured);
    under CI=true the same cells fail, so CI never passes by skipping."""
    # engine: docker — podman would be installed by the run where it may (root), like upx
    m = write_matrix(MATRIX.replace("RUNS", "2").replace("cgo: [0, 1]", "cgo: [0]")
                     .replace("measure: {", "measure: {engine: docker, "))
    empty = tmp_path / "no-tools"
    empty.mkdir()
    monkeypatch.setenv("GOSTARTBENCH_TOOLS_PATH", str(empty))  # no engine on this path
    for ci, status in (("false", "skipped"), ("true", "failed")):
        monkeypatch.setenv("CI", ci)
        out = tmp_path / f"run-{ci}"
        main(["run", "-m", str(m), "--out", str(out), "-k", "hello", "--no-report",
              "--plan-only"])
        cells = pd.read_csv(out / "cells.csv", dtype=str, keep_default_na=False)
        boxed = cells[cells["container"] != "none"]
        assert len(boxed) and (boxed["status"] == status).all()
        assert all("containers cannot run here: docker not installed" in r
                   for r in boxed["reason"])
        assert (cells.loc[cells["container"] == "none", "status"] == "ok").all()


@pytest.mark.parametrize("body,key", [
    ('run: {container: [none, scratch], container_cpus: [none, "half"]}', "container_cpus"),
    ('run: {container: [none, "two words"]}', "container"),
    ("run: {launch: [direct, pod]}", "launch"),
    ("measure: {engine: containerd}", "engine"),
])
def test_container_keys_are_validated(body: str, key: str, write_matrix: WriteMatrix,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    m = write_matrix(f"version: 1\napps: {{hello: {{path: @GOAPPS@/hello}}}}\n{body}\n")
    assert main(["validate", "-m", str(m)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and key in err and "matrix.yaml:" in err, err


def test_host_cells_have_no_engine_launch_or_cpu_limit(write_matrix: WriteMatrix) -> None:
    m = write_matrix("""version: 1
apps: {hello: {path: @GOAPPS@/hello}}
run: {container: [none, scratch], launch: [direct, engine], container_cpus: [none, "0.5"]}
""")
    cells = load(m).cells
    combos = {(c.run_values["container"], c.run_values["launch"],
               c.run_values["container_cpus"]) for c in cells}
    assert combos == {("none", "direct", "none"), *{("scratch", launch, cpus)
                      for launch in ("direct", "engine") for cpus in ("none", "0.5")}}


def test_a_cpu_limit_reaches_the_container(engine: container.Engine, write_matrix: WriteMatrix,
                                           tmp_path: Path) -> None:
    """container_cpus: the engine's --cpus on both launches; GOMAXPROCS follows it in Go 1.25+
    (the program inside reads its cgroup): a CPU-limited start still runs and is timed."""
    m = write_matrix("""version: 1
apps:
  hello: {path: @GOAPPS@/hello, expect: {stdout: "Hello, Go!"}}
run:
  container: [scratch]
  launch: [direct, engine]
  container_cpus: [none, "0.5"]
measure: {runs: 3, warmup: 1, inittrace: false, phases: false, calibration: "off"}
""")
    out = tmp_path / "run"
    assert main(["run", "-m", str(m), "--out", str(out), "--no-report"]) == 0
    plan = json.loads((out / "plan.json").read_text())
    limited = [u for u in plan["units"] if "cpus-0.5" in u["cell"]]
    assert len(limited) == 2
    for u in limited:
        argv = u["inside"]["engine_run"] if u.get("inside") else u["argv"]
        assert "--cpus" in argv and argv[argv.index("--cpus") + 1] == "0.5", u["cell"]
    assert _left(engine, out) == []


def test_an_image_that_cannot_be_pulled_fails_its_own_cells(
        engine: container.Engine, write_matrix: WriteMatrix, tmp_path: Path) -> None:
    """A registry that does not answer (a port on loopback nobody listens on): the image's
    cells fail with one line naming it and the engine's answer; the host cell is measured."""
    m = write_matrix("""version: 1
apps:
  hello: {path: @GOAPPS@/hello, expect: {stdout: "Hello, Go!"}}
run:
  container: [none, "localhost:1/gostartbench/nope:1"]
measure: {runs: 3, warmup: 1, inittrace: false, phases: false, calibration: "off"}
""")
    out = tmp_path / "run"
    assert main(["run", "-m", str(m), "--out", str(out), "--no-report"]) == 1
    cells = pd.read_csv(out / "cells.csv", dtype=str).set_index("container")
    assert cells.loc["none", "status"] == "ok"
    why = cells.loc["localhost:1/gostartbench/nope:1", "reason"]
    assert why.startswith("image localhost:1/gostartbench/nope:1: podman pull:"), why
    assert "\n" not in why


def test_the_start_inside_an_image_is_traced_there(engine: container.Engine,
                                                    write_matrix: WriteMatrix,
                                                    tmp_path: Path) -> None:
    """The tracer runs inside the cell's container (its clock starts there): a direct cell gets
    its phases, CPU-limited or not; an engine cell is named as not traced, with why."""
    m = write_matrix("""version: 1
apps:
  hello: {path: @GOAPPS@/hello, expect: {stdout: "Hello, Go!"}}
run:
  container: [gostartbench/musl]
  launch: [direct, engine]
  container_cpus: [none, "0.5"]
measure: {runs: 4, warmup: 1, inittrace: false, phases: true, phase_runs: 3,
          calibration: "off"}
""")
    out = tmp_path / "run"
    assert main(["run", "-m", str(m), "--out", str(out), "--no-report"]) == 0
    ph = pd.read_csv(out / "phases.csv")
    direct = {c for c in ph["cell"] if "launch-direct" in c}
    assert len(direct) == 2, sorted(set(ph["cell"]))
    for cell in direct:
        got = set(ph[(ph["cell"] == cell) & ph["stage"].isna()]["phase"])
        assert {"exec", "bootstrap", "package_init", "main"} <= got, (cell, got)
    without = json.loads((out / "run.json").read_text())["phases"]["cells_without_marks"]
    assert {c for c in without if "launch-engine" in c} == \
        {c for c in pd.read_csv(out / "cells.csv")["cell"] if "launch-engine" in c}
    assert _left(engine, out) == []
