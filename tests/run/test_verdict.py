"""One verdict, truthfully told: the run's status, cells.csv and the exit code follow what pytest
saw of every case; every timer checks what it times; pytest's selection is the schedule; the
cases ship in the package. Real binaries, real hyperfine, real pytest."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from gostartbench.host.tools import TOOLS_PATH_ENV
from gostartbench.matrix import Expect
from gostartbench.measure import RunSpec, parse_hyperfine_json, run_hyperfine
from tests.conftest import FIXTURES, GOAPPS, REPO, WriteMatrix, require

HELLO = f'{{path: {GOAPPS}/hello, expect: {{exit: 0, stdout: "Hello, Go!"}}}}'
WRONG = f'{{path: {FIXTURES}/wrongout, expect: {{exit: 0, stdout: "Hello, Go!"}}}}'


def gsb(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
        timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gostartbench", *args], capture_output=True,
                          text=True, env=env or dict(os.environ), cwd=cwd, timeout=timeout,
                          check=False)


def run_json(d: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads((d / "run.json").read_text())
    return data


def cells(d: Path) -> pd.DataFrame:
    return pd.read_csv(d / "cells.csv", keep_default_na=False)


def test_hyperfine_hidden_fails_the_run(write_matrix: WriteMatrix,
                                        tmp_path: Path) -> None:
    """No hyperfine under timer: hyperfine: every case errors in setup; the run says failed,
    every cell failed with the reason, exit 1 — never `complete`."""
    tools = tmp_path / "bin"  # a search path with the C compiler and strip, not hyperfine
    tools.mkdir()
    for name in ("cc", "gcc", "strip"):
        (tools / name).symlink_to(f"/usr/bin/{name}")
    p = write_matrix(f"""
    version: 1
    apps: {{hello: {HELLO}}}
    measure: {{runs: 3, warmup: 0, timer: hyperfine, inittrace: false, phases: false,
               calibration: floor}}
    """)
    env = {**os.environ, TOOLS_PATH_ENV: str(tools)}
    r = gsb("run", "-m", str(p), "--out", str(tmp_path / "r"), env=env)
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    run = run_json(tmp_path / "r")
    assert run["status"] == "failed", run
    assert "hyperfine" in str(run["failure"])
    c = cells(tmp_path / "r")
    assert (c["status"] == "failed").all() and c["reason"].str.contains("hyperfine").all()


def test_wrong_output_fails_under_hyperfine(write_matrix: WriteMatrix,
                                            tmp_path: Path) -> None:
    """hyperfine sees only exit codes: the untimed verification run checks stdout."""
    require("hyperfine")
    p = write_matrix(f"""
    version: 1
    apps: {{hello: {HELLO}, wrong: {WRONG}}}
    measure: {{runs: 4, warmup: 1, timer: hyperfine, inittrace: false, phases: false,
               calibration: off}}
    """)
    r = gsb("run", "-m", str(p), "--out", str(tmp_path / "r"), "--no-report")
    assert r.returncode == 1, r.stdout + r.stderr
    assert run_json(tmp_path / "r")["status"] == "cells_failed"
    c = cells(tmp_path / "r").set_index("app")
    assert c.loc["wrong", "status"] == "failed"
    assert "verification run" in c.loc["wrong", "reason"] and "Goodbye" in c.loc["wrong", "reason"]
    assert c.loc["hello", "status"] == "ok"
    s = pd.read_csv(tmp_path / "r" / "samples.csv")
    assert set(s[s["cell"].str.startswith("wrong")]["round"]) == {-1}  # never timed
    hf = s[s["timer"] == "hyperfine"]
    assert len(hf) == 4 and hf["ok"].all() and (hf["exit_code"] == 0).all()
    # hyperfine 2.x reports per-run user, system and peak RSS: recorded, not dropped
    assert hf["maxrss_bytes"].notna().all() and hf["user_ns"].notna().all()


def test_hyperfine_run_failure_is_recorded_per_run(write_matrix: WriteMatrix,
                                                   tmp_path: Path) -> None:
    """A program that passes the verification run and then exits 3 fails its cell under
    hyperfine too, its failed run recorded in samples.csv (ok=false, reason)."""
    require("hyperfine")
    counter = tmp_path / "count"
    p = write_matrix(f"""
    version: 1
    apps:
      flaky:
        path: {FIXTURES}/flaky
        env: {{FLAKY_FILE: "{counter}", FLAKY_FAIL_FROM: "3"}}
    measure: {{runs: 4, warmup: 0, timer: hyperfine, inittrace: false, phases: false,
               calibration: off}}
    """)
    r = gsb("run", "-m", str(p), "--out", str(tmp_path / "r"), "--no-report")
    assert r.returncode == 1, r.stdout + r.stderr
    assert run_json(tmp_path / "r")["status"] == "cells_failed"
    c = cells(tmp_path / "r")
    assert c["status"].tolist() == ["failed"]
    assert "hyperfine: exit code 3, expected 0" in c["reason"].iloc[0]
    s = pd.read_csv(tmp_path / "r" / "samples.csv", keep_default_na=False)
    hf = s[s["timer"] == "hyperfine"]
    assert (~hf["ok"]).any() and hf[~hf["ok"]]["reason"].str.contains("exit code 3").all()


def test_ready_server_under_both_leaves_nothing_behind(write_matrix: WriteMatrix,
                                                       tmp_path: Path) -> None:
    """A ready-mode server under timer: both is timed to ready by the spawn helper and not
    handed to hyperfine (which would wait for it to exit); no process outlives the run."""
    require("hyperfine")
    p = write_matrix(f"""
    version: 1
    apps: {{httpd: {{path: {GOAPPS}/httpd, ready: {{stdout: ready}}}}}}
    measure: {{runs: 5, warmup: 1, timer: both, inittrace: false, phases: false, calibration: off}}
    """)
    r = gsb("run", "-m", str(p), "--out", str(tmp_path / "r"), "--no-report", timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    run = run_json(tmp_path / "r")
    assert run["status"] == "complete"
    assert any("not timed by hyperfine" in w for w in run["warnings"])  # type: ignore[attr-defined]
    s = pd.read_csv(tmp_path / "r" / "samples.csv")
    assert set(s["timer"]) == {"spawn"} and len(s) == 5
    binary = cells(tmp_path / "r")["binary"].iloc[0]
    assert not _processes_running(binary)


def _processes_running(binary: str) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if os.readlink(proc / "exe") == binary:
                    pids.append(int(proc.name))
            except OSError:
                continue
    return pids


def test_hyperfine_timeout_kills_its_whole_group(tmp_path: Path) -> None:
    """hyperfine and everything it starts run in their own process group, killed whole."""
    require("hyperfine")
    from gostartbench import build, matrix

    m = tmp_path / "m.yaml"
    m.write_text(f"version: 1\napps: {{hang: {{path: {FIXTURES}/hang}}}}\n")
    mx = matrix.load(m)
    res = next(iter(build.build_cells(mx, mx.cells).values()))
    assert res.binary is not None, res.reason
    spec = RunSpec(argv=(str(res.binary),), env=dict(os.environ), timeout_s=0.5,
                   expect=Expect())
    with pytest.raises(RuntimeError, match="timed out"):
        run_hyperfine(spec, 1, 0, tmp_path, grace_s=1.0)
    time.sleep(0.2)
    assert not _processes_running(str(res.binary))
    assert not [p for p in Path("/proc").iterdir() if p.name.isdigit()
                and _cmdline(p) == ["sleep", "299.123"]]


def _cmdline(proc: Path) -> list[str]:
    try:
        return (proc / "cmdline").read_bytes().decode().rstrip("\0").split("\0")
    except OSError:
        return []


@pytest.mark.parametrize("name,schema", [("hyperfine-1.15-exit3.json", 1),
                                         ("hyperfine-2.0-exit3.json", 2)])
def test_hyperfine_json_both_schemas(name: str, schema: int) -> None:
    """Real exports of hyperfine 1.15 (times, exit_codes) and 2.0 (measurements)."""
    got_schema, runs = parse_hyperfine_json(json.loads((FIXTURES / name).read_text()))
    assert got_schema == schema and len(runs) == 3
    assert all(r.exit_code == 3 and r.wall_ns > 0 for r in runs)
    if schema == 2:
        assert all(r.maxrss_bytes and r.maxrss_bytes > 0 and r.user_ns is not None
                   for r in runs)
    else:
        assert all(r.maxrss_bytes is None for r in runs)


def _two_app_plan(write_matrix: WriteMatrix, tmp_path: Path) -> Path:
    p = write_matrix(f"""
    version: 1
    apps: {{hello: {HELLO}, other: {HELLO}}}
    measure: {{runs: 4, warmup: 1, inittrace: false, phases: false, calibration: off}}
    """)
    r = gsb("run", "-m", str(p), "--out", str(tmp_path / "r"), "--plan-only")
    assert r.returncode == 0, r.stdout + r.stderr
    assert not (tmp_path / "r" / "samples.csv").exists()
    return tmp_path / "r"


def test_pytest_k_times_only_the_selected_cells(write_matrix: WriteMatrix,
                                                tmp_path: Path) -> None:
    """`pytest bench/ -k hello` with a run plan: only hello's cell is timed (rows of
    samples.csv), and pytest-benchmark gets the spawn helper's clock by its public API."""
    d = _two_app_plan(write_matrix, tmp_path)
    env = {**os.environ, "GOSTARTBENCH_RUN_DIR": str(d)}
    pr = subprocess.run([sys.executable, "-m", "pytest", str(REPO / "bench"), "-k", "hello",
                         "-q", "-p", "no:cacheprovider", f"--benchmark-json={tmp_path}/b.json"],
                        capture_output=True, text=True, env=env, cwd=REPO, timeout=300,
                        check=False)
    assert pr.returncode == 0, pr.stdout + pr.stderr
    s = pd.read_csv(d / "samples.csv")
    assert set(s["cell"]) == {"hello_go1.27.3"} and len(s) == 4
    b = json.loads((tmp_path / "b.json").read_text())["benchmarks"]
    assert [x["param"] for x in b] == ["hello_go1.27.3"]
    assert b[0]["options"]["timer"].endswith("gsb_spawn_helper_posix_spawn_to_wait4_monotonic")
    assert b[0]["extra_info"]["rounds_from_disk"] == 0


def test_bench_without_a_plan_says_how_to_get_one() -> None:
    env = {k: v for k, v in os.environ.items() if k != "GOSTARTBENCH_RUN_DIR"}
    pr = subprocess.run([sys.executable, "-m", "pytest", str(REPO / "bench"), "-q", "-rs",
                         "-p", "no:cacheprovider"], capture_output=True, text=True, env=env,
                        cwd=REPO, timeout=120, check=False)
    assert pr.returncode == 0, pr.stdout + pr.stderr
    assert "no run plan" in pr.stdout and "1 skipped" in pr.stdout


def test_collection_error_fails_the_run(write_matrix: WriteMatrix,
                                        tmp_path: Path) -> None:
    """A pytest collection error (here: a broken test file passed through to pytest) gives
    status failed, a one-line reason and exit 1 — not `interrupted`, not `complete`."""
    broken = tmp_path / "test_broken.py"
    broken.write_text("import no_such_module_anywhere\n")
    p = write_matrix(f"""
    version: 1
    apps: {{hello: {HELLO}}}
    measure: {{runs: 3, warmup: 0, inittrace: false, phases: false, calibration: off}}
    """)
    r = gsb("run", "-m", str(p), "--out", str(tmp_path / "r"), "--no-report", "--",
            str(broken))
    assert r.returncode == 1, r.stdout + r.stderr
    run = run_json(tmp_path / "r")
    assert run["status"] == "failed"
    assert "collection error" in str(run["failure"]) and "\n" not in str(run["failure"])


def test_pytest_usage_error_fails_the_run(write_matrix: WriteMatrix,
                                          tmp_path: Path) -> None:
    p = write_matrix(f"""
    version: 1
    apps: {{hello: {HELLO}}}
    measure: {{runs: 3, warmup: 0, inittrace: false, phases: false, calibration: off}}
    """)
    r = gsb("run", "-m", str(p), "--out", str(tmp_path / "r"), "--no-report", "--",
            "--no-such-pytest-option")
    assert r.returncode == 1, r.stdout + r.stderr
    assert run_json(tmp_path / "r")["status"] == "failed"


def test_installed_cli_runs_outside_the_checkout(write_matrix: WriteMatrix,
                                                 tmp_path: Path) -> None:
    """`pip install` of the package (no checkout on the path), run from an unrelated folder:
    the cases come from the installed package."""
    site = tmp_path / "site"
    # Built from a copy: setuptools leaves a build/ folder beside the source it builds.
    src = tmp_path / "src-copy"
    shutil.copytree(REPO / "src", src / "src", symlinks=False,
                    ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                          "--target", str(site), str(src)],
                         capture_output=True, text=True, timeout=300, check=False)
    assert pip.returncode == 0, pip.stderr
    p = write_matrix(f"""
    version: 1
    apps: {{hello: {HELLO}}}
    measure: {{runs: 3, warmup: 0, inittrace: false, phases: false, calibration: off}}
    """)
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    r = gsb("run", "-m", str(p), "--out", "r", "--no-report", env=env, cwd=work)
    assert r.returncode == 0, r.stdout + r.stderr
    # pytest ran the installed package's case
    cases = str(run_json(work / "r")["cases"])
    assert cases.startswith(str(site / "gostartbench" / "run" / "cases")), cases
    assert len(pd.read_csv(work / "r" / "samples.csv")) == 3
