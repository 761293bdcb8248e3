"""Interruption and resume: Ctrl-C/SIGTERM keep every finished sample and say so; `--resume`
completes the run consistently; `kill -9` at any moment leaves every file readable; one run
per folder."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from gostartbench.results import RunLock, read_csv_rows
from tests.conftest import GOAPPS

RUNS = 1500  # seconds of timing: a signal after 40 samples lands mid-timing on a fast host


def matrix(tmp: Path) -> Path:
    p = tmp / "matrix.yaml"
    p.write_text(f"""
version: 1
apps:
  hello: {{path: {GOAPPS}/hello, expect: {{stdout: "Hello, Go!"}}}}
axes:
  ldflags: ["", "-s -w"]
measure: {{runs: {RUNS}, warmup: 2, inittrace: false, phases: false}}
""")
    return p


def _default_sigint() -> None:
    # A test suite started as a background job inherits SIGINT ignored (the shell does that),
    # and Python then never turns it into KeyboardInterrupt: the run under test gets a Ctrl-C
    # as a user's terminal would deliver it.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "gostartbench", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=_default_sigint)


def wait_for_samples(path: Path, n: int, proc: subprocess.Popen[str], limit: float = 300) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        if path.exists() and path.read_text().count("\n") > n:
            return
        if proc.poll() is not None:
            raise AssertionError("the run ended before it could be interrupted: "
                                 + (proc.stdout.read() if proc.stdout else ""))
        time.sleep(0.02)
    raise AssertionError("no samples appeared")


def check_consistent(run_dir: Path) -> None:
    run = json.loads((run_dir / "run.json").read_text())
    assert run["status"] == "complete", run["status"]
    s = pd.read_csv(run_dir / "samples.csv")
    ok = s[s["ok"] & (s["round"] >= 0)]
    for _cell, g in ok.groupby("cell"):
        assert sorted(g["round"]) == list(range(RUNS))  # every round once, none twice
    assert ok["cell"].nunique() == 2
    summ = pd.read_csv(run_dir / "summary.csv")
    assert set(summ["n"]) == {RUNS}


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupt_then_resume(tmp_path: Path, sig: signal.Signals) -> None:
    d = tmp_path / "r"
    p = start("run", "-m", str(matrix(tmp_path)), "--out", str(d), "--no-report")
    wait_for_samples(d / "samples.csv", 40, p)
    p.send_signal(sig)
    out, _ = p.communicate(timeout=120)
    assert p.returncode == 130, out
    assert "--resume" in out
    run = json.loads((d / "run.json").read_text())
    assert run["status"] == "interrupted"
    before = len(read_csv_rows(d / "samples.csv"))
    assert 0 < before < 2 * RUNS
    r = subprocess.run([sys.executable, "-m", "gostartbench", "run", "--resume", str(d)],
                       capture_output=True, text=True, timeout=600, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    check_consistent(d)
    assert json.loads((d / "run.json").read_text())["resumed"]


def test_kill_9_at_random_points_never_corrupts(tmp_path: Path) -> None:
    rng = random.Random(int(os.environ.get("GSB_KILL_SEED", "1")))
    for i in range(3):
        d = tmp_path / f"r{i}"
        p = start("run", "-m", str(matrix(tmp_path)), "--out", str(d), "--no-report")
        time.sleep(rng.uniform(0.2, 4.0))
        p.kill()
        p.communicate(timeout=60)
        # Every file that exists reads back whole.
        if (d / "run.json").exists():
            json.loads((d / "run.json").read_text())
        for f in ("cells.csv", "samples.csv"):
            if (d / f).exists():
                rows = read_csv_rows(d / f)
                raw = (d / f).read_text().splitlines()
                assert len(rows) == len(raw) - 1, f"{f}: a row was torn"
        for tmp in d.glob(".*.tmp*"):
            tmp.unlink()  # a rename that never happened: invisible to readers by name
        if (d / "run.json").exists():
            r = subprocess.run([sys.executable, "-m", "gostartbench", "run", "--resume", str(d),
                                "--no-report"], capture_output=True, text=True, timeout=600,
                               check=False)
            assert r.returncode == 0, r.stdout + r.stderr
            subprocess.run([sys.executable, "-m", "gostartbench", "report", str(d)],
                           check=True, capture_output=True)
            check_consistent(d)


def test_two_runs_into_one_folder(tmp_path: Path) -> None:
    """A folder that holds a run is refused as --out; one in use (its lock held, as a running
    `gostartbench run` holds it) is refused for --resume. Deterministic: the lock is held here,
    not raced against a real run's end."""
    d = tmp_path / "r"
    m = matrix(tmp_path)
    p = start("run", "-m", str(m), "--out", str(d), "--no-report", "--runs", "5")
    p.communicate(timeout=300)
    second = subprocess.run([sys.executable, "-m", "gostartbench", "run", "-m", str(m), "--out",
                             str(d)], capture_output=True, text=True, timeout=60, check=False)
    lock = RunLock(d)
    try:
        third = subprocess.run([sys.executable, "-m", "gostartbench", "run", "--resume", str(d)],
                               capture_output=True, text=True, timeout=60, check=False)
    finally:
        lock.release()
    assert second.returncode == 2 and "already holds a run" in second.stderr
    assert third.returncode == 2 and "in use by another run" in third.stderr
    assert second.stderr.strip().count("\n") == 0 and third.stderr.strip().count("\n") == 0
