"""Where the start goes: traced runs of real binaries split into phases. Each figure is the
median of interleaved traced runs; tolerances are the issue's (a known init() busy-wait lands
in package init within max(40 µs, 5%)) or coarse (which phase holds a knob's cost)."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from gostartbench import build, matrix
from gostartbench.build.calib import calib_programs
from gostartbench.matrix import Ready
from gostartbench.measure.spec import RunSpec
from gostartbench.measure.trace import Target, phases, stop_cost, target_for, trace_run
from tests.conftest import GOAPPS, WriteMatrix, require

RUNS = 21
MARKED = ("entry", "schedinit", "rtmain", "mainmain")


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("trace")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, build.BuildResult]:
    for tool in ("strip", "upx", "cc"):
        require(tool)
    p = tmp_path_factory.mktemp("m") / "matrix.yaml"
    p.write_text(f"""
version: 1
apps:
  hello: {{path: {GOAPPS}/hello}}
  netcli: {{path: {GOAPPS}/netcli}}
  httpd: {{path: {GOAPPS}/httpd}}
axes:
  buildmode: [exe, pie]
  ldflags: ["", "-s -w"]
  cgo: [0, 1]
  strip: [none, unneeded]
  upx: [none, best]
exclude:
  - {{buildmode: pie, upx: best}}
  - {{app: httpd, buildmode: pie}}
  - {{app: httpd, upx: best}}
  - {{app: [hello, httpd], cgo: 1}}
  - {{app: netcli, upx: best}}
  - {{app: netcli, strip: unneeded}}
  - {{app: netcli, ldflags: "-s -w"}}
""")
    m = matrix.load(p)
    res = build.build_cells(m, m.cells)
    out = {}
    for c in m.cells:
        b = c.build_values
        key = f"{c.app}:{b['buildmode']}:{'sw' if b['ldflags'] else '-'}:cgo{b['cgo']}:" \
              f"{b['strip']}:{b['upx']}"
        out[key] = res[c.build_id]
    return out


def _target(r: build.BuildResult) -> Target:
    assert r.binary is not None and r.program is not None, r.reason
    t = target_for(r.binary, r.program, "1.27.3")
    assert isinstance(t, Target), t
    return t


def _median_phases(specs: dict[str, tuple[RunSpec, Target]], work: Path, runs: int = RUNS,
                   stop_ns: float = 0.0) -> dict[str, dict[str, float]]:
    """Interleaved traced runs; per key, per phase, the median duration (ms)."""
    got: dict[str, dict[str, list[float]]] = {k: {} for k in specs}
    for _ in range(runs):
        for k, (spec, target) in specs.items():
            tr = trace_run(spec, target, work)
            for ph, _, dur in phases(tr.marks, spec.ready is not None, stop_ns):
                got[k].setdefault(ph, []).append(dur / 1e6)
    return {k: {ph: statistics.median(v) for ph, v in d.items()} for k, d in got.items()}


def _spec(r: build.BuildResult, **kw: object) -> RunSpec:
    assert r.binary is not None
    return RunSpec(argv=(str(r.binary),), env=dict(os.environ), **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def stop_ns(work: Path) -> float:
    noop = calib_programs()["noop"]
    t = target_for(noop, noop, "1.27.3")
    assert isinstance(t, Target)
    return float(stop_cost(noop, t, work, runs=15)["stop_ns"])


@pytest.mark.slow
def test_init_busy_wait_lands_in_package_init(work: Path, stop_ns: float) -> None:
    """0.5 and 2 ms busy-waits in init() land in package init: it is the phase whose median
    per-round difference (the three delays traced back to back in each round, so the
    machine's bursts hit all three alike) is largest, and that difference is the injected
    delay within a coarse ±30%. The accuracy target itself, max(40 µs, 5%), is a benchmark
    (benchmarks/phases_accuracy.py): this host is too noisy for timed asserts."""
    delay = calib_programs()["delay"]
    t = target_for(delay, delay, "1.27.3")
    assert isinstance(t, Target)
    specs = {us: RunSpec(argv=(str(delay),), env={**os.environ, "GSB_DELAY_US": str(us)})
             for us in (0, 500, 2000)}
    diffs: dict[int, dict[str, list[float]]] = {500: {}, 2000: {}}
    for _ in range(31):
        got = {us: {p: d / 1e6 for p, _, d in phases(trace_run(spec, t, work).marks, False,
                                                     stop_ns)} for us, spec in specs.items()}
        for us in diffs:
            for ph, d in got[us].items():
                diffs[us].setdefault(ph, []).append(d - got[0].get(ph, 0.0))
    for us, by_phase in diffs.items():
        med = {ph: statistics.median(v) for ph, v in by_phase.items()}
        assert max(med, key=lambda ph: med[ph]) == "package_init", (us, med)
        assert 0.7 * us / 1000 <= med["package_init"] <= 1.3 * us / 1000, (us, med)


@pytest.mark.slow
def test_pie_cgo_and_upx_cost_lands_before_the_entry(built: dict[str, build.BuildResult],
                                                     work: Path, stop_ns: float) -> None:
    keys = {"exe": "hello:exe:-:cgo0:none:none", "pie": "hello:pie:-:cgo0:none:none",
            "upx": "hello:exe:-:cgo0:none:best", "net0": "netcli:exe:-:cgo0:none:none",
            "net1": "netcli:exe:-:cgo1:none:none"}
    specs = {k: (_spec(built[v]), _target(built[v])) for k, v in keys.items()}
    med = _median_phases(specs, work, stop_ns=stop_ns)
    # a static exe: the kernel jumps straight to the entry
    assert med["exe"]["pre_entry"] < 0.15, med["exe"]
    for knob, base in (("pie", "exe"), ("upx", "exe")):
        delta = {ph: med[knob][ph] - med[base][ph] for ph in med[base]}
        assert max(delta, key=lambda ph: delta[ph]) == "pre_entry", (knob, delta)
        assert delta["pre_entry"] > 0.1, (knob, delta)
    assert med["upx"]["pre_entry"] > 1.0  # the unpacker, every start
    # cgo=1 makes netcli dynamic: ld.so and libc appear before the entry (its static build
    # has none); the rest of its cost (cgo's init, the resolver's packages) lands in the
    # runtime's phases and package init, about as much again on this host.
    net = {ph: med["net1"][ph] - med["net0"][ph] for ph in med["net0"]}
    assert med["net0"]["pre_entry"] < 0.15 and net["pre_entry"] > 0.2, net


def test_every_variant_gets_its_phases(built: dict[str, build.BuildResult], work: Path) -> None:
    """-s -w (symbols from .gopclntab), strip, UPX (symbols of the pre-pack binary), PIE (the
    load bias from AT_ENTRY): every mark is reached."""
    for key in ("hello:exe:sw:cgo0:none:none", "hello:exe:-:cgo0:unneeded:none",
                "hello:exe:sw:cgo0:unneeded:best", "hello:pie:sw:cgo0:unneeded:none",
                "hello:exe:-:cgo0:none:best"):
        r = built[key]
        t = _target(r)
        tr = trace_run(_spec(r), t, work)
        assert tr.status == "exited" and tr.code == 0, (key, tr)
        assert all(m in tr.marks for m in (*MARKED, "exec", "exit", "reaped")), (key, tr)
        got = [ph for ph, _, _ in phases(tr.marks, False, 0.0)]
        assert got == ["exec", "pre_entry", "runtime_entry", "bootstrap", "package_init",
                       "main", "teardown"], key
    assert "gopclntab" in _target(built["hello:exe:sw:cgo0:none:none"]).symbols_from
    assert "pre-pack" in _target(built["hello:exe:-:cgo0:none:best"]).symbols_from


def test_int3_where_debug_registers_are_not_used(built: dict[str, build.BuildResult],
                                                 work: Path) -> None:
    r = built["hello:pie:-:cgo0:none:none"]
    tr = trace_run(_spec(r), _target(r), work, mode="int3")
    assert tr.method == "int3" and all(m in tr.marks for m in MARKED), tr


def test_ready_server_ends_at_ready(built: dict[str, build.BuildResult], work: Path) -> None:
    r = built["httpd:exe:-:cgo0:none:none"]
    tr = trace_run(_spec(r, ready=Ready(stdout="ready"), timeout_s=10.0), _target(r), work)
    assert tr.status == "ready" and "ready" in tr.marks, tr
    ph = phases(tr.marks, True, 0.0)
    assert ph[-1][0] == "main" and "teardown" not in [p for p, _, _ in ph]
    assert ph[-1][1] + ph[-1][2] == tr.marks["ready"]
    assert not [p for p in Path("/proc").iterdir() if p.name.isdigit()
                and _exe(p) == str(r.binary)]


def _exe(proc: Path) -> str:
    try:
        return os.readlink(proc / "exe")
    except OSError:
        return ""


SECCOMP_NO_PTRACE = r"""
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <errno.h>
/* Runs a command with ptrace(2) refused (EPERM) by a seccomp filter, as some containers do. */
int main(int argc, char **argv) {
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_ptrace, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {sizeof f / sizeof f[0], f};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog))
        return perror("seccomp"), 2;
    execvp(argv[1], argv + 1);
    return perror("exec"), 2;
}
"""


def test_refused_ptrace_skips_phases_and_the_run_completes(write_matrix: WriteMatrix,
                                                           tmp_path: Path) -> None:
    require("cc")
    src = tmp_path / "noptrace.c"
    src.write_text(SECCOMP_NO_PTRACE)
    exe = tmp_path / "noptrace"
    subprocess.run(["cc", "-O2", "-o", str(exe), str(src)], check=True)
    p = write_matrix(f"""
    version: 1
    apps: {{hello: {{path: {GOAPPS}/hello, expect: {{stdout: "Hello, Go!"}}}}}}
    measure: {{runs: 3, warmup: 0, phase_runs: 3, inittrace: false, calibration: off}}
    """)
    r = subprocess.run([str(exe), sys.executable, "-m", "gostartbench", "run", "-m", str(p),
                        "--out", str(tmp_path / "r"), "--no-report"], capture_output=True,
                       text=True, timeout=300, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    run = json.loads((tmp_path / "r" / "run.json").read_text())
    assert run["status"] == "complete"
    assert "ptrace refused" in run["phases"]["skipped"]
    assert not (tmp_path / "r" / "phases.csv").exists()
