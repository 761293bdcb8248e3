"""A profile of the start, from hundreds of starts: one cell's program started `runs` times
under Linux perf (`perf record -e cpu-clock`: the kernel's software clock, so it works on VMs
without a hardware PMU), every sample of the process and all its threads, user and kernel
stacks through Go's frame pointers, from its exec to its exit (or to ready: the samples after
the port accepts or the line is printed are left out).

Symbols come from the binary itself where perf cannot name a frame of it (`-s -w` and stripped
binaries keep `.gopclntab`: the gsbprof Go helper reads it, with file and line); ld.so, libc
and the kernel are named by perf from their own symbols; a frame nothing names is
`[unknown in FILE]`, kept, never dropped. Profiled starts are runs of their own: the timed runs
never carry a sampler.

The samples are written as they are (profile_samples.csv, one row per sample; its stacks in
profile_stacks.csv); which phase and package a sample belongs to, and every per-start figure,
are the analysis's (analysis/profile.py).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gostartbench.build.calib import go_helper
from gostartbench.matrix import DEFAULT_TOOLCHAIN
from gostartbench.measure.spec import RunSpec
from gostartbench.results.schema import EXEC_FUNCTIONS

HZ_CAP = 20_000  # samples per second asked for at the most (a sample every 50 µs)
EVENT = "cpu-clock"
HELPER_DIR = Path(__file__).with_name("gsbprof")
UNKNOWN = "[unknown in {}]"
_HEAD = re.compile(r"^\s*(.*?)\s+(\d+)/(\d+)\s+(\d+)\.(\d+):\s+(\d+)\s*$")



@dataclass(frozen=True)
class Frame:
    """One frame: its function, source file and line where known, and the file it runs from."""

    function: str
    file: str
    line: int
    dso: str


@dataclass(frozen=True)
class Sample:
    """One sample of one start: the start's number, whether it is the main thread, when it was
    taken (ns since the start's spawn), the time it stands for, and its stack (leaf first)."""

    start: int
    main_thread: bool
    t_ns: int
    period_ns: int
    stack: tuple[Frame, ...]


@dataclass(frozen=True)
class Start:
    """One profiled start: its pid, how it ended, and how long it ran (spawn to exit/ready)."""

    pid: int
    how: str
    ok: bool
    wall_ns: int


def sampler_problem() -> str:
    """Why the sampler cannot run here, with the fix ("" when it can)."""
    perf = shutil.which("perf")
    if perf is None:
        return ("perf is not installed: profiles need Debian's linux-perf (`gostartbench doctor "
                "--install`, or apt-get install linux-perf)")
    try:
        paranoid = int(Path("/proc/sys/kernel/perf_event_paranoid").read_text())
    except (OSError, ValueError):
        paranoid = 2
    if os.geteuid() != 0 and paranoid > 1:
        return (f"kernel.perf_event_paranoid is {paranoid}: profiling this user's processes "
                "needs ≤ 1 (as root: sysctl kernel.perf_event_paranoid=1), or run as root")
    with tempfile.TemporaryDirectory(prefix="gsb-perf-") as d:
        p = subprocess.run([perf, "record", "-q", "-e", EVENT, "-g", "-o",
                            str(Path(d) / "probe.data"), "--", sys.executable, "-c", "0"],
                           capture_output=True, text=True, check=False, timeout=60)
    if p.returncode != 0:
        return f"perf record fails here: {(p.stderr.strip() or 'no output')[-200:]}"
    return ""


def sample_hz(asked: int = 0) -> int:
    """The sampling rate: the one asked for (0: HZ_CAP), at most what the kernel allows
    (kernel.perf_event_max_sample_rate)."""
    try:
        most = int(Path("/proc/sys/kernel/perf_event_max_sample_rate").read_text())
    except (OSError, ValueError):
        most = HZ_CAP
    return max(1, min(asked or HZ_CAP, most))


def helper() -> Path:
    """The gsbprof helper, built once (its module needs a Go as new as its go.mod names:
    DEFAULT_TOOLCHAIN; its pclntab reader reads every older Go's binaries)."""
    return go_helper("gsbprof", (HELPER_DIR / "main.go").read_text(), DEFAULT_TOOLCHAIN,
                     (HELPER_DIR / "go.mod").read_text(), (HELPER_DIR / "go.sum").read_text())


def record(spec: RunSpec, binary: Path, runs: int, hz: int, work: Path, evict: bool = False
           ) -> tuple[list[Start], list[Sample]]:
    """`runs` starts of the program under perf; every start and every sample of it."""
    work.mkdir(parents=True, exist_ok=True)
    data, spec_file, out = work / "perf.data", work / "driver.json", work / "starts.json"
    spec_file.write_text(json.dumps({
        "argv": list(spec.argv), "env": dict(spec.env), "runs": runs, "binary": str(binary),
        "timeout_s": spec.timeout_s, "evict": evict, "exit": spec.expect.exit,
        "ready_tcp": spec.ready.tcp if spec.ready else None,
        "ready_stdout": spec.ready.stdout if spec.ready else None}))
    perf = shutil.which("perf") or "perf"
    argv = [perf, "record", "-q", "-e", EVENT, "-F", str(hz), "-g", "-k", "CLOCK_MONOTONIC",
            "-o", str(data), "--", sys.executable, "-m", "gostartbench.measure.profile_driver",
            str(spec_file), str(out)]
    p = subprocess.run(argv, capture_output=True, text=True, check=False,
                       timeout=runs * (spec.timeout_s + 1) + 120)
    if p.returncode != 0 or not out.exists():
        raise RuntimeError(f"perf record failed: {(p.stderr.strip() or 'no output')[-300:]}")
    raw = json.loads(out.read_text())
    starts = [Start(int(s["pid"]), str(s["how"]), bool(s["ok"]), int(s["end_ns"] - s["t0_ns"]))
              for s in raw]
    # only the started programs' samples are read back (the driver's own are most of the file)
    script = subprocess.run([perf, "script", "-i", str(data), "-F",
                             "comm,pid,tid,time,period,ip,sym,dso", "--ns",
                             "--pid", ",".join(str(s.pid) for s in starts)],
                            capture_output=True, text=True, check=False, timeout=1800)
    if script.returncode != 0:
        raise RuntimeError(f"perf script failed: {script.stderr.strip()[-300:]}")
    data.unlink(missing_ok=True)
    return starts, samples_of(script.stdout, raw, binary)


def parse_script(text: str
                 ) -> Iterable[tuple[str, int, int, int, int, list[tuple[int, str, str]]]]:
    """(command, pid, tid, time ns, period ns, frames leaf first as (address, symbol, file)) of
    every sample in `perf script -F comm,pid,tid,time,period,ip,sym,dso --ns` output."""
    head: tuple[str, int, int, int, int] | None = None
    frames: list[tuple[int, str, str]] = []
    for line in text.splitlines():
        if line.startswith("\t"):  # a frame: "\tADDR SYMBOL (FILE)" (most lines: no regex)
            if head is None:
                continue
            body = line.strip()
            addr, _, rest = body.partition(" ")
            cut = rest.rfind(" (")
            if cut < 0 or not rest.endswith(")"):
                continue
            try:
                frames.append((int(addr, 16), rest[:cut], rest[cut + 2:-1]))
            except ValueError:
                continue
            continue
        m = _HEAD.match(line)
        if m:
            if head is not None:
                yield (*head, frames)
            comm, pid, tid, sec, frac, period = m.groups()
            head = (comm, int(pid), int(tid), int(sec) * 10**9 + int(frac.ljust(9, "0")[:9]),
                    int(period))
            frames = []
    if head is not None:
        yield (*head, frames)


def samples_of(text: str, starts: Sequence[dict[str, Any]], binary: Path) -> list[Sample]:
    """The samples of the started programs, each with its stack named: the driver's own are
    left out, and so are a child's before its exec (it is the spawner then: its command is
    not yet the program's and it is not in the kernel's execve) and those after a start was
    ready."""
    by_pid = {int(s["pid"]): (i, int(s["t0_ns"]), int(s["end_ns"]), s["how"])
              for i, s in enumerate(starts)}
    real = os.path.realpath(binary)
    comm = Path(binary).name[:15]  # the kernel's command name is 15 bytes at most
    ours: dict[str, bool] = {}  # a frame's file → whether it is the binary (realpath once)

    def is_binary(dso: str) -> bool:
        if dso not in ours:
            ours[dso] = os.path.realpath(dso) == real
        return ours[dso]

    rows = []
    need: set[int] = set()
    for cmd, pid, tid, t, period, frames in parse_script(text):
        if pid not in by_pid:
            continue
        if cmd != comm and not any(sym.split("+0x")[0] in EXEC_FUNCTIONS
                                   for _, sym, _ in frames):
            continue
        i, t0, end, how = by_pid[pid]
        if how == "ready" and t > end:
            continue
        rows.append((i, pid == tid, t - t0, period, frames))
        need.update(a for a, _, dso in frames if is_binary(dso))
    names = _symbolize(binary, sorted(need))
    cache: dict[tuple[int, str, str], Frame] = {}

    def frame(a: int, sym: str, dso: str) -> Frame:
        key = (a, sym, dso)
        if key not in cache:
            named = names.get(a) if is_binary(dso) else None
            if named is not None:
                cache[key] = Frame(named[0], named[1], named[2], dso)
            else:
                name = sym.split("+0x")[0]
                cache[key] = Frame(name if name and name != "[unknown]" else
                                   UNKNOWN.format(Path(dso).name or dso), "", 0, dso)
        return cache[key]

    return [Sample(i, main, dt, period, tuple(frame(*f) for f in frames))
            for i, main, dt, period, frames in rows]


def _symbolize(binary: Path, addrs: Sequence[int]) -> dict[int, tuple[str, str, int]]:
    """File-relative addresses in the binary → (function, file, line) by its .gopclntab."""
    if not addrs:
        return {}
    p = subprocess.run([str(helper()), "sym", str(binary)], input="".join(
        f"{a:x}\n" for a in addrs), capture_output=True, text=True, check=False, timeout=600)
    if p.returncode != 0:
        return {}
    out = {}
    for a, line in zip(addrs, p.stdout.splitlines(), strict=False):
        parts = line.split("\t")
        if len(parts) == 3:
            out[a] = (parts[0], parts[1], int(parts[2]))
    return out


def write_pprof(path: Path, profile: dict[str, Any]) -> None:
    """A profile (gsbprof's JSON input: sample types, frames, samples with labels) as pprof's
    gzipped profile.proto, by github.com/google/pprof/profile in the helper."""
    p = subprocess.run([str(helper()), "write", str(path)], input=json.dumps(profile),
                       capture_output=True, text=True, check=False, timeout=600)
    if p.returncode != 0:
        raise RuntimeError(f"gsbprof write: {p.stderr.strip()[-300:]}")
