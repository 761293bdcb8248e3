"""Measuring real runs: the child's own RSS, cache conditions, failures, ready mode, inittrace.
Assertions are about what happened, never about how long it took within a tight bound."""

from __future__ import annotations

import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gostartbench import build, matrix
from gostartbench.build.elfinfo import read_facts
from gostartbench.host.arch import emulation
from gostartbench.host.tools import TOOLS_PATH_ENV
from gostartbench.matrix import Expect, Ready
from gostartbench.measure import (
    RunSpec,
    SpawnExecutor,
    evict,
    helper_path,
    normalise_warm,
    parse_inittrace,
)
from tests.conftest import FIXTURES, GOAPPS, WriteMatrix


def _binary(write_matrix: WriteMatrix, app: str, path: Path) -> Path:
    p = write_matrix(f"version: 1\napps: {{{app}: {{path: {path}}}}}\n", name=f"{app}.yaml")
    m = matrix.load(p)
    r = next(iter(build.build_cells(m, m.cells).values()))
    assert r.status == "ok" and r.binary is not None, r.reason
    return r.binary


@pytest.fixture
def executor() -> Iterator[SpawnExecutor]:
    ex = SpawnExecutor()
    yield ex
    ex.close()


def _env() -> dict[str, str]:
    return dict(os.environ)


def test_rss_is_the_childs_own(write_matrix: WriteMatrix,
                               executor: SpawnExecutor) -> None:
    hello = _binary(write_matrix, "hello", GOAPPS / "hello")
    ballast = bytearray(300 * 1024 * 1024)  # make the harness big: the RSS trap would show it
    ballast[::4096] = b"x" * len(ballast[::4096])
    res = executor.run(RunSpec(argv=(str(hello),), env=_env()))
    del ballast
    assert res.ok and res.stdout.strip() == "Hello, Go!"
    t = subprocess.run(["/usr/bin/time", "-f", "%M", str(hello)], capture_output=True,
                       text=True, check=True)
    ref = int(t.stderr.strip().splitlines()[-1]) * 1024
    assert res.maxrss_bytes is not None
    assert abs(res.maxrss_bytes - ref) <= max(0.10 * ref, 512 * 1024), (res.maxrss_bytes, ref)


@pytest.mark.skipif(bool(emulation()), reason="under qemu-user a vfork is a fork and ru_maxrss "
                    "is the emulator's (its code cache grows run by run): no kernel floor to test")
def test_the_helpers_own_memory_is_no_floor(write_matrix: WriteMatrix,
                                             executor: SpawnExecutor) -> None:
    """A child's ru_maxrss is at least its spawner's RSS (the kernel folds the old mm's peak in
    at exec). A batch with one 1.5 MB request makes the helper touch 1.5 MB of buffer: a no-op
    Go program timed after it, in the same batch and in the next, must read what it read
    before, above the floor the helper reports."""
    noop = _binary(write_matrix, "noop", GOAPPS / "noop")
    spec = RunSpec(argv=(str(noop),), env=_env())
    big = RunSpec(argv=("/bin/true",), env={f"V{i}": "x" * 100_000 for i in range(15)})
    before = [executor.run(spec) for _ in range(5)]
    same_batch = list(executor.run_many(iter([(spec, None, None), (big, None, None),
                                              *[(spec, None, None)] * 5])))
    after = [executor.run(spec) for _ in range(5)]
    assert same_batch[1].ok, same_batch[1].reason  # the big request did run
    rss_before = sorted(r.maxrss_bytes or 0 for r in before)
    for r in [*same_batch[2:], *after]:
        assert r.ok and r.maxrss_bytes is not None and r.rss_floor_bytes is not None
        assert r.rss_floor_bytes < r.maxrss_bytes, (r.rss_floor_bytes, r.maxrss_bytes)
        # a Go no-op reads one of a few page-granular values: at most its largest before
        assert r.maxrss_bytes <= rss_before[-1] + 256 * 1024, (r.maxrss_bytes, rss_before)


def test_the_helper_is_static_and_dynamic_where_it_must(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Static where the C library allows (its RSS is every reading's floor); where `cc -static`
    fails (no libc.a), a dynamic helper that still times runs and reports its floor."""
    assert read_facts(helper_path()).interpreter == "", "the default helper is not static"
    gcc = shutil.which("gcc") or shutil.which("cc")
    assert gcc is not None
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    cc = bin_dir / "cc"  # a C compiler whose static link fails, as without glibc's libc.a
    cc.write_text(f"#!{sys.executable}\nimport os, sys\nif '-static' in sys.argv:\n"
                  f"    sys.exit('cannot find -lc')\nos.execv({gcc!r}, [{gcc!r}, *sys.argv[1:]])\n")
    cc.chmod(0o755)
    monkeypatch.setenv(TOOLS_PATH_ENV, str(bin_dir))
    monkeypatch.setenv("GOSTARTBENCH_CACHE", str(tmp_path / "cache"))
    dynamic = helper_path()
    assert dynamic.is_relative_to(tmp_path) and read_facts(dynamic).interpreter != ""
    ex = SpawnExecutor()
    try:
        assert ex.helper == str(dynamic)
        res = ex.run(RunSpec(argv=("/bin/true",), env={}))
    finally:
        ex.close()
    # (that the floor lies under the child's peak is test_the_helpers_own_memory_is_no_floor's:
    # not so under qemu-user, whose vfork is a fork and whose RSS is the emulator's)
    assert res.ok and (res.rss_floor_bytes or 0) > 0 and (res.maxrss_bytes or 0) > 0


def test_cold_runs_fault_and_warm_ones_do_not(write_matrix: WriteMatrix,
                                              executor: SpawnExecutor) -> None:
    netcli = _binary(write_matrix, "netcli", GOAPPS / "netcli")
    spec = RunSpec(argv=(str(netcli),), env=_env())
    cold = []
    for _ in range(5):
        evict(netcli)
        cold.append(executor.run(spec).majflt)
    normalise_warm([netcli])
    executor.run(spec)
    warm = [executor.run(spec).majflt for _ in range(5)]
    assert statistics.median(x or 0 for x in cold) > 0, cold
    assert statistics.median(x or 0 for x in warm) == 0, warm


def test_hang_is_killed_with_its_group(write_matrix: WriteMatrix,
                                       executor: SpawnExecutor) -> None:
    hang = _binary(write_matrix, "hang", FIXTURES / "hang")
    res = executor.run(RunSpec(argv=(str(hang),), env=_env(), timeout_s=0.5))
    assert not res.ok and res.status == "timeout"
    assert "timed out after 0.5s" in res.reason
    time.sleep(0.2)
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert str(hang) not in ps
    assert "sleep 299.123" not in ps  # its child, in its process group, is gone too


def test_crash_and_signal_and_wrong_output(write_matrix: WriteMatrix,
                                           executor: SpawnExecutor) -> None:
    crash = _binary(write_matrix, "crash", FIXTURES / "crash")
    r = executor.run(RunSpec(argv=(str(crash),), env=_env()))
    assert not r.ok and "exit code 2, expected 0" in r.reason and "panic" in r.reason
    r = executor.run(RunSpec(argv=(str(crash), "-signal"), env=_env()))
    assert not r.ok and "SIGABRT" in r.reason
    wrong = _binary(write_matrix, "wrongout", FIXTURES / "wrongout")
    r = executor.run(RunSpec(argv=(str(wrong),), env=_env(), expect=Expect(stdout="Hello, Go!")))
    assert not r.ok and "Goodbye, Go!" in r.reason and "Hello, Go!" in r.reason


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_ready_modes_leave_no_process(write_matrix: WriteMatrix,
                                      executor: SpawnExecutor) -> None:
    httpd = _binary(write_matrix, "httpd", GOAPPS / "httpd")
    r = executor.run(RunSpec(argv=(str(httpd),), env=_env(), ready=Ready(stdout="ready")))
    assert r.ok and r.status == "ready" and r.wall_ns > 0
    port = _free_port()
    r = executor.run(RunSpec(argv=(str(httpd), "-addr", f"127.0.0.1:{port}"), env=_env(),
                             ready=Ready(tcp=port)))
    assert r.ok and r.status == "ready"
    kid = _binary(write_matrix, "spawnkid", FIXTURES / "spawnkid")
    r = executor.run(RunSpec(argv=(str(kid),), env=_env(), ready=Ready(stdout="ready")))
    assert r.ok
    time.sleep(0.2)
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert str(httpd) not in ps and str(kid) not in ps
    # the port is free again: the server is gone
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
    # never ready: exits first
    hello = _binary(write_matrix, "hello", GOAPPS / "hello")
    r = executor.run(RunSpec(argv=(str(hello),), env=_env(), ready=Ready(stdout="ready"),
                             timeout_s=2))
    assert not r.ok and "never ready" in r.reason


def test_inittrace_parsed_from_a_real_binary(write_matrix: WriteMatrix,
                                             executor: SpawnExecutor) -> None:
    heavy = _binary(write_matrix, "initheavy", GOAPPS / "initheavy")
    r = executor.run(RunSpec(argv=(str(heavy),), env={**_env(), "GODEBUG": "inittrace=1"}))
    rows = parse_inittrace(r.stderr)
    pkgs = {x["package"] for x in rows}
    assert {"runtime", "main", "regexp"} <= pkgs, pkgs
    main_row = next(x for x in rows if x["package"] == "main")
    assert main_row["clock_ms"] > 0 and main_row["allocs"] > 0  # type: ignore[operator]


def test_cpus_pins_the_measured_process(executor: SpawnExecutor) -> None:
    import os as _os

    cpu = sorted(_os.sched_getaffinity(0))[-1]
    r = executor.run(RunSpec(argv=("/bin/cat", "/proc/self/status"), env=_env(), cpus=(cpu,),
                             expect=Expect(exit=0)))
    assert r.ok, r.reason
    line = next(ln for ln in r.stdout.splitlines() if ln.startswith("Cpus_allowed_list"))
    assert line.split(":")[1].strip() == str(cpu)
