"""The runtime's own stages (the tracer's int3 marks) and the second instrument (eBPF uprobes):
real builds, real traced and probed runs; the assertions are about order and presence, never
about how long a stage took."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from gostartbench import build, matrix, results
from gostartbench.analysis import analyse
from gostartbench.measure import uprobe
from gostartbench.measure.spec import RunSpec
from gostartbench.measure.trace import ptrace_refused, target_for, trace_run
from gostartbench.results.schema import STAGES
from tests.conftest import GOAPPS, TOOLCHAIN, gsb, skip_or_fail


def _need_uprobes() -> None:
    why = uprobe.uprobe_refused()
    if why:
        skip_or_fail("eBPF uprobes", why)


@pytest.fixture(scope="module")
def hello(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("stages")
    (d / "m.yaml").write_text(f"version: 1\ntoolchains: [\"{TOOLCHAIN}\"]\napps:\n"
                              f"  hello: {{path: {GOAPPS}/hello}}\n"
                              "axes: {buildmode: [exe, pie], ldflags: ['', '-s -w']}\n")
    m = matrix.load(d / "m.yaml")
    res = build.build_cells(m, m.cells)
    assert all(r.status == "ok" for r in res.values())
    return {k.split("_", 2)[2]: r.binary for k, r in res.items() if r.binary}


def test_the_tracer_marks_every_stage_in_order(hello: dict[str, Path], tmp_path: Path) -> None:
    why = ptrace_refused(tmp_path)
    if why:
        skip_or_fail("ptrace", why)
    for name, binary in hello.items():
        t = target_for(binary, binary, TOOLCHAIN)
        assert not isinstance(t, str), t
        assert not t.missing, (name, t.missing)  # Go 1.27 has every stage function
        tr = trace_run(RunSpec(argv=(str(binary),), env={}), t, tmp_path)
        assert tr.status == "exited", tr
        m = tr.marks
        order = ["exec", "entry", "schedinit", "mallocinit", "mcommoninit", "gcinit",
                 "procresize", "initsig", "rtmain", "newm", "doinit", "gcenable",
                 "gcenable_ret", "mainmain", "exit"]
        assert [k for k in order if k in m] == order, (name, m)
        assert sorted(order, key=lambda k: m[k]) == order, (name, m)


def test_the_uprobes_see_the_same_marks(hello: dict[str, Path]) -> None:
    _need_uprobes()
    exe = hello["exe_ld-none"]
    t = target_for(exe, exe, TOOLCHAIN)
    assert not isinstance(t, str), t
    probed = {exe: t}
    # The -s -w build has no .symtab: bpftrace cannot place its probes there (said, not hidden)
    no_symtab = next(b for k, b in hello.items() if "s-w" in k)
    assert "no .symtab" in uprobe.probe_refused(no_symtab)

    def five() -> None:
        for _ in range(5):
            subprocess.run([str(exe)], capture_output=True, check=True)

    runs = uprobe.probe_runs(probed, five)
    assert len(runs) == 5
    for r in runs:
        names = [p for p, _, _ in uprobe.run_phases(r)]
        assert names == list(uprobe.COMPARED), r.marks
        assert r.marks["exec"] < r.marks["entry"] < r.marks["schedinit"] < r.marks["rtmain"] \
            < r.marks["mainmain"] < r.marks["exit"]
        # the phase marks only: a stage function called per package or thread would fire its
        # uprobe every time and pile the uprobes' cost into the phases compared
        assert not uprobe.run_stages(r)


def test_a_run_has_stages_and_both_instruments(tmp_path: Path) -> None:
    """A real run: phases.csv holds stage rows under their phases; with uprobes, a second
    file holds the other instrument's phases and the report sets the two side by side."""
    m = tmp_path / "m.yaml"
    m.write_text(f"version: 1\ntoolchains: [\"{TOOLCHAIN}\"]\napps:\n"
                 f"  hello: {{path: {GOAPPS}/hello, expect: {{stdout: 'Hello, Go!'}}}}\n"
                 "axes: {buildmode: [exe, pie]}\n"
                 "measure: {runs: 5, warmup: 1, inittrace_runs: 2, phase_runs: 5, "
                 "calibration: off}\n")
    p = gsb("run", "-m", str(m), "--out", str(tmp_path / "r"))
    assert p.returncode == 0, p.stdout + p.stderr
    a = analyse(results.load(tmp_path / "r"))
    if a.stages.empty:
        skip_or_fail("traced runs", a.run["phases"].get("skipped", "no traced runs"))
    names = {s.name for s in STAGES}
    assert set(a.stages["stage"]) >= names - {"netpoll_init"}  # hello uses no netpoll
    assert set(a.stages["phase"]) == {"bootstrap", "package_init"}
    report = (tmp_path / "r" / "report.md").read_text()
    assert "## The runtime's own stages" in report and "runtime.procresize" in report
    second = a.run["phases"]["second_instrument"]
    if "skipped" in second:
        if os.environ.get("CI") == "true":
            pytest.fail(f"eBPF uprobes are required under CI=true: {second['skipped']}")
        return
    assert (tmp_path / "r" / results.PHASES_UPROBE_CSV).stat().st_size > 0
    ph = a.instruments[a.instruments["stage"] == ""]
    assert set(ph["phase"]) == set(uprobe.COMPARED)
    assert len(ph) == 2 * len(uprobe.COMPARED)  # exe and pie, every compared phase
    assert "## Two instruments" in report
