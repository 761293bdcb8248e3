"""The second phase instrument: eBPF uprobes (bpftrace), in the kernel, no ptrace stop.

One bpftrace process is attached, for a batch of binaries, to the same phase marks the ptrace
tracer stops at (the ELF entry, runtime.schedinit, runtime.main, main.main: uprobes at their
link-time addresses, each reached once; not the stage functions, some of which run again and
again — doInit1 per package, newm per thread — and would pile the uprobes' own cost into the
phases), and to the kernel's own events: `execve` entered (t0),
the exec done (`sched_process_exec`) and the main thread's exit (`sched_process_exit`). The
programs are then started the usual way (the spawn helper), interleaved; bpftrace prints one
line per event with CLOCK_MONOTONIC nanoseconds, and each run's marks become phases by the
tracer's own rules (measure/trace.py), each uprobe's own cost subtracted as the tracer subtracts
a stop's (`probe_costs`: a uprobe's trap, its BPF program and the single step out of line cost
a few µs on one host and tens on another — on a Firecracker VM on an Intel Xeon, 20–70 µs a
mark: docs/validation.md). Each mark's first hit in a process counts.

What differs from the tracer by design: t0 is `execve` entered, not just before fork (the
spawn helper's vfork is not seen), and there is no `reaped` (wait4 is the parent's): the exec
and teardown phases are left out of the comparison. UPX-packed binaries are not probed (their
code is not in the file).
"""

from __future__ import annotations

import dataclasses
import os
import random
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from elftools.elf.elffile import ELFFile

from gostartbench.measure.trace import MARKS, Costs, Target, phases, span_costs, stages

TRACEFS = Path("/sys/kernel/tracing")
ATTACHED = "GSB-ATTACHED"  # printed by the script's BEGIN probe
DRAINED = "GSB-DRAINED"  # printed by its END probe: every event line is out
# Detaching a uprobe waits for an RCU tasks-trace grace period in the kernel (close() of its
# perf event): seconds to minutes on an idle VM (31–137 s seen on the dev VM). A session whose
# probes no later run can hit (a private copy of a binary) is killed once drained, and the
# kernel finishes the detach on its own.
DRAINED_WAIT_S = 30.0
DETACH_TIMEOUT_S = 300.0  # then it is killed: longer than any detach seen
ATTACH_TIMEOUT_S = 60.0  # bpftrace compiles its program first: seconds, more on a busy host
_EVENT = re.compile(r"^([XEBQ]) (\d+) (\S+) (\d+)(?: (.*))?$")
# The phases both instruments time from the same events (exec and teardown are defined
# differently: see the module's doc).
COMPARED = ("pre_entry", "runtime_entry", "bootstrap", "package_init", "main")


def bpftrace_path() -> str | None:
    """The bpftrace binary, if installed."""
    return shutil.which("bpftrace")


def uprobe_refused() -> str:
    """Why uprobes cannot be used here ('' when they can): no bpftrace, not root, no tracefs
    (mounted here when root and absent), a kernel without uprobe events."""
    if bpftrace_path() is None:
        return "bpftrace not installed (apt-get install bpftrace)"
    if os.geteuid() != 0:
        return "eBPF uprobes need root (or CAP_BPF and CAP_PERFMON)"
    if not (TRACEFS / "uprobe_events").exists():
        subprocess.run(["mount", "-t", "tracefs", "nodev", str(TRACEFS)], capture_output=True,
                       check=False)
    if not (TRACEFS / "uprobe_events").exists():
        return f"no uprobe events in {TRACEFS} (tracefs not mounted, or a kernel without them)"
    return ""


def probe_refused(binary: Path) -> str:
    """Why a binary cannot be probed ('' when it can): bpftrace resolves a uprobe's address
    through the file's .symtab (0.17 refuses an address it cannot name, and fails to attach
    one given with --unsafe), so builds with -s -w, stripped or packed are not probed."""
    try:
        with open(binary, "rb") as fh:
            elf = ELFFile(fh)
            if elf.get_section_by_name(".symtab") is None:
                return "no .symtab (-s -w, strip or UPX): bpftrace cannot place its uprobes"
    except OSError as exc:
        return str(exc)
    return ""


def script(targets: Mapping[Path, Target]) -> str:
    """The bpftrace program: the kernel's exec and exit events, and a uprobe per mark per
    binary (its link-time address; bpftrace maps it to the file), each printing the binary's
    index in `targets` (a path printed by bpftrace is cut at BPFTRACE_STRLEN)."""
    lines = [
        # bpftrace fires BEGIN once every probe is attached ("Attaching N probes" comes before
        # the attaching): a run started before that line would be missed.
        f'BEGIN {{ printf("{ATTACHED}\\n"); }}',
        f'END {{ printf("{DRAINED}\\n"); }}',  # after its last event line, before detaching
        'tracepoint:syscalls:sys_enter_execve { printf("X %d - %lld\\n", pid, nsecs); }',
        'tracepoint:sched:sched_process_exec { printf("E %d - %lld\\n", pid, nsecs); }',
        'tracepoint:sched:sched_process_exit /pid == tid/ { printf("Q %d - %lld\\n", pid, '
        "nsecs); }",
    ]
    for i, (binary, t) in enumerate(targets.items()):
        # The phase marks only: each is reached once. A stage function called again and again
        # (doInit1 per package, newm per thread) would fire its uprobe every time, and the
        # uprobes' own cost (µs each) would pile up inside the phases compared.
        for label, addr in sorted(t.addresses.items()):
            lines.append(f'uprobe:{binary}:{addr:#x} {{ printf("B %d {label}@{i} %lld\\n", '
                         "pid, nsecs); }")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class ProbedRun:
    """One probed run: the binary, and its marks (ns since execve was entered)."""

    binary: str
    marks: Mapping[str, int]


def parse(text: str, binaries: Sequence[Path]) -> list[ProbedRun]:
    """bpftrace's lines → one ProbedRun per process that reached a mark of one of `binaries`
    (the index printed with each mark names it), its t0 that process's last execve."""
    t0: dict[int, int] = {}
    marks: dict[int, dict[str, int]] = {}
    exe: dict[int, str] = {}
    for line in text.splitlines():
        m = _EVENT.match(line.strip())
        if not m:
            continue
        kind, pid, label, ns = m.group(1), int(m.group(2)), m.group(3), int(m.group(4))
        if kind == "X":  # an execve entered: a new program in this process (t0)
            t0[pid] = ns
            marks[pid] = {}
            exe.pop(pid, None)
            continue
        if pid not in t0:
            continue
        if kind == "B":
            label, _, idx = label.partition("@")
            exe.setdefault(pid, str(binaries[int(idx)]))
        name = {"E": "exec", "Q": "exit"}.get(kind, label)
        marks[pid].setdefault(name, ns - t0[pid])
    return [ProbedRun(exe[p], marks[p]) for p in exe if "exec" in marks[p]]


def probe_runs(targets: Mapping[Path, Target], run_all: Callable[[], None],
               private: bool = False) -> list[ProbedRun]:
    """Attach bpftrace to `targets`' marks, call `run_all` (which starts the programs), detach
    (SIGTERM: a background bpftrace ignores SIGINT) and return the runs it saw. Raises
    RuntimeError when bpftrace does not attach. `private`: no later run will start these
    binaries (throwaway copies), so bpftrace is not waited for once its output is complete;
    otherwise it is, until every uprobe is gone (a later run must not hit one)."""
    exe = bpftrace_path()
    if exe is None:
        raise RuntimeError("bpftrace not installed")
    work = Path(tempfile.mkdtemp(prefix="gsb-uprobe-"))
    try:
        (work / "probe.bt").write_text(script(targets))
        out = open(work / "out.txt", "w")  # noqa: SIM115 -- closed below, after bpftrace
        err = open(work / "err.txt", "w")  # noqa: SIM115
        p = subprocess.Popen([exe, "-B", "line", str(work / "probe.bt")], stdout=out,
                             stderr=err, stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            if not _wait_for(p, work / "out.txt", ATTACHED, ATTACH_TIMEOUT_S):
                errs = [ln for ln in (work / "err.txt").read_text().splitlines()
                        if "RLIMIT_MEMLOCK" not in ln]
                raise RuntimeError("bpftrace did not attach: "
                                   + (" | ".join(errs)[-300:] or "no output"))
            run_all()
            time.sleep(0.2)
        finally:
            p.send_signal(signal.SIGTERM)
            if private:
                _wait_for(p, work / "out.txt", DRAINED, DRAINED_WAIT_S)
                p.kill()  # the kernel finishes detaching on its own
            try:
                p.wait(timeout=DETACH_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            out.close()
            err.close()
        return parse((work / "out.txt").read_text(), list(targets))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _wait_for(p: subprocess.Popen[bytes], out: Path, line: str, timeout_s: float) -> bool:
    """Whether bpftrace printed `line` (False once it exited or `timeout_s` passed)."""
    deadline = time.monotonic() + timeout_s
    while line not in out.read_text():
        if p.poll() is not None or time.monotonic() > deadline:
            return line in out.read_text()
        time.sleep(0.02)
    return True


def run_phases(run: ProbedRun, ready: bool = False, costs: Costs = 0.0
               ) -> list[tuple[str, int, int]]:
    """(phase, start_ns, duration_ns) of a probed run, by the tracer's rules, each probe's own
    cost (`probe_costs`) subtracted as the tracer subtracts a stop's; only the phases both
    instruments define alike (COMPARED)."""
    return [p for p in phases(run.marks, ready, costs) if p[0] in COMPARED]


def probe_costs(binary: Path, target: Target, run_one: Callable[[Path], object],
                runs: int = 60, blocks: int = 3, seed: int = 0) -> dict[str, Any]:
    """Each uprobe's own cost on this host (ns), as the tracer's `mark_costs`: `runs` runs of
    `binary` probed at every phase mark, and at every mark but one, in `blocks` shuffled
    sessions each (a session probes one set); each mark's cost by `span_costs`. Each session
    probes its own copy of `binary` (`run_one(copy)` starts it once), so a session's uprobes,
    still detaching in the kernel, are never hit by the next one. The exec and exit events are
    tracepoints in the kernel (no trap in the program): cost 0."""
    labels = [label for label, _ in MARKS if label in target.addresses]
    variants = ["all", *labels]
    got: dict[str, list[Mapping[str, int]]] = {v: [] for v in variants}
    rng = random.Random(seed)
    per = max(1, runs // blocks)
    copies = Path(tempfile.mkdtemp(prefix="gsb-probe-copies-"))
    try:
        for b in range(blocks):
            order = list(variants)
            rng.shuffle(order)
            for v in order:
                copy = copies / f"{b}-{v}" / binary.name
                copy.parent.mkdir()
                shutil.copy2(binary, copy)
                addrs = dict(target.addresses) if v == "all" else \
                    {k: a for k, a in target.addresses.items() if k != v}

                def batch(copy: Path = copy) -> None:
                    for _ in range(per):
                        run_one(copy)

                seen = probe_runs({copy: dataclasses.replace(target, addresses=addrs)}, batch,
                                  private=True)
                got[v] += [r.marks for r in seen]
    finally:
        shutil.rmtree(copies, ignore_errors=True)
    costs = span_costs(got["all"], {v: got[v] for v in labels})
    return {"probe_ns_by_mark": {k: round(v) for k, v in costs.items()}, "runs": per * blocks,
            "measured": "leave one out: the span around each mark with and without its uprobe "
                        "(a static no-op; each session its own copy)"}


def run_stages(run: ProbedRun) -> list[tuple[str, str, int, int]]:
    """(stage, phase, start_ns, duration_ns) of a probed run (no stop cost)."""
    return [(st.name, st.phase, a, d) for st, a, d in stages(run.marks, 0.0)]


__all__ = ["COMPARED", "ProbedRun", "parse", "probe_costs",
           "probe_refused", "probe_runs", "run_phases", "run_stages", "script", "uprobe_refused"]
