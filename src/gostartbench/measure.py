"""Measuring one run of a program: executors (the built-in spawn timer, hyperfine, a fake for
tests), page-cache conditions, and the expect/ready checks.

Like hyperfine, measurement is separate from statistics and export: an executor turns a
RunSpec into a RunResult, nothing more.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import re
import select
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from gostartbench.matrix import Expect, Ready
from gostartbench.tools import HOW_TO_GET, cache_dir, file_lock, find_tool

HELPER_SOURCE = Path(__file__).with_name("gsb_spawn.c")


@dataclass(frozen=True)
class RunSpec:
    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)  # the whole environment of the run
    timeout_s: float = 10.0
    ready: Ready | None = None
    cpus: tuple[int, ...] | None = None
    expect: Expect = field(default_factory=Expect)


@dataclass(frozen=True)
class RunResult:
    status: str  # exited | signaled | timeout | spawnerr | ready | noready
    exit_code: int
    signal: int
    wall_ns: int
    user_ns: int | None
    sys_ns: int | None
    maxrss_bytes: int | None
    minflt: int | None
    majflt: int | None
    stdout: str = ""
    stderr: str = ""
    ok: bool = True
    reason: str = ""


# A run with its page-cache instructions: evict this file before, read it back after.
RunItem = tuple[RunSpec, Path | None, Path | None]


class Executor(Protocol):
    name: str

    def run(self, spec: RunSpec, evict: Path | None = None,
            read_back: Path | None = None) -> RunResult: ...

    def run_many(self, items: Iterator[RunItem]) -> Iterator[RunResult]: ...


# ---------------------------------------------------------------------------------------------
# The spawn helper


def helper_path() -> Path:
    """The compiled gsb-spawn, built once per source version and C compiler into the cache."""
    src = HELPER_SOURCE.read_bytes()
    cc = find_tool("cc")
    if not cc.found:
        cc = find_tool("gcc")
    if not cc.found or cc.path is None:
        raise RuntimeError("the spawn timer needs a C compiler once, to build its helper: "
                           "apt-get install gcc")
    key = hashlib.sha256(src + (cc.version or "").encode()).hexdigest()[:16]
    out = cache_dir() / "helper" / key / "gsb-spawn"
    if out.is_file():
        return out
    with file_lock(out.parent.with_suffix(".lock")):
        if out.is_file():
            return out
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".gsb-spawn.{os.getpid()}")
        p = subprocess.run([cc.path, "-O2", "-o", str(tmp), str(HELPER_SOURCE)],
                           capture_output=True, text=True, check=False)
        if p.returncode != 0:
            raise RuntimeError(f"cannot compile the spawn helper: {p.stderr.strip()[:300]}")
        os.replace(tmp, out)
    return out


_LINE = re.compile(r"(\w+)=(-?\w+)")


def parse_helper_line(line: str) -> dict[str, str]:
    return dict(_LINE.findall(line))


def signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def check(spec: RunSpec, res: RunResult) -> tuple[bool, str]:
    """Whether a run did what the app's `expect` / `ready` says, and if not, why (one line)."""
    if res.status == "spawnerr":
        return False, f"cannot start the program (errno {res.exit_code})"
    if res.status == "timeout":
        return False, f"timed out after {spec.timeout_s:g}s (killed with its process group)"
    if spec.ready is not None:
        if res.status != "ready":
            what = f"line containing {spec.ready.stdout!r}" if spec.ready.stdout else \
                f"a connection on port {spec.ready.tcp}"
            how = _how_ended(res)
            return False, f"never ready: no {what} before it {how}" + _tail(res.stderr)
        return True, ""
    if res.status == "signaled":
        return False, f"crashed: killed by {signal_name(res.signal)}" + _tail(res.stderr)
    e = spec.expect
    if e.exit is not None and res.exit_code != e.exit:
        return False, f"exit code {res.exit_code}, expected {e.exit}" + _tail(res.stderr)
    if e.stdout is not None and res.stdout.rstrip() != e.stdout.rstrip():
        return False, (f"stdout {_short(res.stdout.rstrip())!r}, expected "
                       f"{_short(e.stdout.rstrip())!r}")
    if e.stdout_contains is not None and e.stdout_contains not in res.stdout:
        return False, (f"stdout {_short(res.stdout.rstrip())!r} lacks "
                       f"{_short(e.stdout_contains)!r}")
    return True, ""


def _how_ended(res: RunResult) -> str:
    if res.signal:
        return f"was killed by {signal_name(res.signal)}"
    if res.status == "timeout":
        return "timed out"
    return f"exited with code {res.exit_code}"


def _short(s: str, n: int = 80) -> str:
    return s if len(s) <= n else s[:n] + "…"


def _tail(stderr: str) -> str:
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
    return f" (stderr: {_short(' | '.join(lines[:3]), 160)})" if lines else ""


class SpawnExecutor:
    """The built-in timer: a persistent gsb-spawn server starts each program and times
    posix_spawn .. wait4 in C. One warm helper, fed batches, makes runs back-to-back spawns,
    like a C loop or hyperfine, with no Python and no helper exec in or beside the timed
    span."""

    name = "spawn"

    def __init__(self, workdir: Path | None = None, capture_limit: int = 1 << 16) -> None:
        self.helper = str(helper_path())
        # tmpfs when there is one: the program's stdout must not touch the measured disk.
        shm = Path("/dev/shm")  # noqa: S108 - a private mkdtemp inside it
        base = shm if shm.is_dir() else None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="gsb-", dir=base))
        self.capture_limit = capture_limit
        self.proc: subprocess.Popen[bytes] | None = None
        self._buf = b""
        self.cpus: tuple[int, ...] | None = None

    def _server(self, cpus: tuple[int, ...] | None) -> subprocess.Popen[bytes]:
        if self.proc is not None and self.proc.poll() is None and cpus == self.cpus:
            return self.proc
        self._stop()
        argv = [self.helper, "-S"]
        if cpus:
            argv += ["-c", ",".join(str(c) for c in cpus)]
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env={"PATH": "/usr/bin:/bin"})
        self.cpus = cpus
        return self.proc

    def _stop(self) -> None:
        self._buf = b""
        if self.proc is not None:
            with contextlib.suppress(OSError):
                if self.proc.stdin:
                    self.proc.stdin.close()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def request(self, spec: RunSpec, out: Path, err: Path, evict: Path | None = None,
                read_back: Path | None = None) -> bytes:
        fields = [f"t={max(1, int(spec.timeout_s * 1000))}", f"o={out}", f"e={err}"]
        if evict is not None:
            fields.append(f"X={evict}")
        if read_back is not None:
            fields.append(f"R={read_back}")
        if spec.ready is not None and spec.ready.stdout:
            fields.append(f"r={spec.ready.stdout}")
        elif spec.ready is not None and spec.ready.tcp:
            fields.append(f"p={spec.ready.tcp}")
        fields += [f"E={k}={v}" for k, v in spec.env.items()]
        fields += [f"A={a}" for a in spec.argv]
        for f in fields:
            if "\0" in f:
                raise ValueError(f"an argument or variable holds a NUL byte: {f!r}")
        return b"".join(f.encode() + b"\0" for f in fields) + b"\0"

    def run(self, spec: RunSpec, evict: Path | None = None,
            read_back: Path | None = None) -> RunResult:
        return next(self.run_many(iter([(spec, evict, read_back)])))

    batch = 16  # runs per batch: the helper runs them back to back while Python sleeps

    def run_many(self, items: Iterator[RunItem]) -> Iterator[RunResult]:
        """Run items in order, in batches the helper runs back to back (it flushes results
        when it runs out of requests, so Python does not compete with the measured programs
        for the CPUs). Results come batch by batch; `items` is pulled a batch ahead at most,
        so a caller can stop feeding a cell soon after one of its runs fails."""
        it = iter(items)
        while True:
            chunk: list[RunItem] = []
            for nxt in it:
                chunk.append(nxt)
                if len(chunk) >= self.batch or (len(chunk) > 1 and
                                                 chunk[-1][0].cpus != chunk[0][0].cpus):
                    break
            if not chunk:
                return
            if len(chunk) > 1 and chunk[-1][0].cpus != chunk[0][0].cpus:
                last = chunk.pop()
                it = itertools.chain([last], it)
            yield from self._batch(chunk)

    def _batch(self, chunk: list[RunItem]) -> list[RunResult]:
        slots = [(self.workdir / f"stdout{i}", self.workdir / f"stderr{i}")
                 for i in range(len(chunk))]
        reqs: list[bytes | None] = []
        for (spec, ev, back), (out, err) in zip(chunk, slots, strict=True):
            try:
                reqs.append(self.request(spec, out, err, ev, back))
            except ValueError:
                reqs.append(None)
        proc = self._server(chunk[0][0].cpus)
        try:
            assert proc.stdin is not None
            proc.stdin.write(b"".join(r for r in reqs if r is not None))
            proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # reported as each answer fails to come
        results: list[RunResult] = []
        for (spec, _, _), req, (out, err) in zip(chunk, reqs, slots, strict=True):
            if req is None:
                results.append(self._fail("spawnerr", "an argument or variable holds a "
                                          "NUL byte"))
            else:
                results.append(self._answer(spec, out, err))
        return results

    def _answer(self, spec: RunSpec, out: Path, err: Path) -> RunResult:
        proc = self.proc
        line = ""
        if proc is not None and proc.stdout is not None:
            # A batch answers when all its runs are done.
            line = self._readline(proc, (spec.timeout_s + 5) * self.batch + 30)
        if not line.startswith("status="):
            why = "no answer"
            if proc is not None and proc.poll() is not None and proc.stderr is not None:
                why = proc.stderr.read(4096).decode(errors="replace").strip() or "died"
            self._stop()
            return self._fail("spawnerr", f"spawn helper: {why}")
        d = parse_helper_line(line)
        status = d.get("status", "spawnerr")
        res = RunResult(
            status=status, exit_code=int(d.get("code", -1)), signal=int(d.get("sig", 0)),
            wall_ns=int(d.get("wall_ns", 0)), user_ns=int(d.get("user_ns", 0)),
            sys_ns=int(d.get("sys_ns", 0)), maxrss_bytes=int(d.get("maxrss_kb", 0)) * 1024,
            minflt=int(d.get("minflt", 0)), majflt=int(d.get("majflt", 0)),
            stdout=_read(out, self.capture_limit) if status != "spawnerr" else "",
            stderr=_read(err, self.capture_limit) if status != "spawnerr" else "",
        )
        ok, reason = check(spec, res)
        return RunResult(**{**res.__dict__, "ok": ok, "reason": reason})

    def _readline(self, proc: subprocess.Popen[bytes], timeout_s: float) -> str:
        """One answer line, read from the raw pipe with our own buffer (select() on a
        buffered reader would wait for lines it already holds)."""
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return ""
            try:
                ready, _, _ = select.select([fd], [], [], left)
                chunk = os.read(fd, 65536) if ready else b""
            except OSError:
                return ""
            if ready and not chunk:
                return ""  # the helper is gone
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return line.decode(errors="replace")

    @staticmethod
    def _fail(status: str, reason: str) -> RunResult:
        return RunResult(status, -1, 0, 0, None, None, None, None, None, ok=False, reason=reason)

    def close(self) -> None:
        self._stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


def _read(path: Path, limit: int) -> str:
    try:
        with open(path, "rb") as fh:
            return fh.read(limit).decode("utf-8", errors="replace")
    except OSError:
        return ""


# ---------------------------------------------------------------------------------------------
# hyperfine


@dataclass(frozen=True)
class HyperfineMeasurement:
    """One run as hyperfine reports it (user/sys/RSS only from schema 2, hyperfine ≥ 2)."""

    wall_ns: int
    exit_code: int | None  # None: hyperfine recorded none
    user_ns: int | None = None
    sys_ns: int | None = None
    maxrss_bytes: int | None = None


@dataclass(frozen=True)
class HyperfineRun:
    runs: list[HyperfineMeasurement]
    schema: int  # 1: hyperfine 1.x (`times`, `exit_codes`); 2: `measurements`
    version: str


def hyperfine_available() -> bool:
    """Whether the hyperfine timer can run here."""
    return find_tool("hyperfine").found


def parse_hyperfine_json(data: dict[str, Any]) -> tuple[int, list[HyperfineMeasurement]]:
    """The per-run figures of hyperfine's --export-json, of either schema: 2.x
    (`schema_version` 2, a `measurements` entry per run with wall, user, system,
    `memory_peak_resident` and `exit_code`) or 1.x (`times` and `exit_codes` lists)."""
    r = data["results"][0]
    if "measurements" in r:
        def val(m: dict[str, Any], k: str, scale: float) -> int | None:
            v = m.get(k)
            return round(float(v["value"]) * scale) if isinstance(v, dict) else None

        runs = [HyperfineMeasurement(
            wall_ns=val(m, "time_wall_clock", 1e9) or 0,
            exit_code=m.get("exit_code"), user_ns=val(m, "time_user", 1e9),
            sys_ns=val(m, "time_system", 1e9), maxrss_bytes=val(m, "memory_peak_resident", 1))
            for m in r["measurements"]]
        return int(data.get("schema_version", 2)), runs
    codes = list(r.get("exit_codes") or [])
    return 1, [HyperfineMeasurement(wall_ns=round(t * 1e9),
                                    exit_code=codes[i] if i < len(codes) else None)
               for i, t in enumerate(r["times"])]


def hyperfine_check(spec: RunSpec, m: HyperfineMeasurement) -> tuple[bool, str]:
    """Whether a hyperfine run ended as the app expects (hyperfine reports only the exit code:
    stdout is checked by the untimed verification run before timing)."""
    if m.exit_code is None:
        return False, "hyperfine recorded no exit code for this run"
    exp = spec.expect.exit
    if exp is not None and m.exit_code != exp:
        sig = m.exit_code - 128 if m.exit_code > 128 else 0
        how = f" (killed by {signal_name(sig)}?)" if sig else ""
        return False, f"exit code {m.exit_code}, expected {exp}{how}"
    return True, ""


HYPERFINE_GRACE_S = 30.0  # on top of runs × timeout_s: hyperfine's own start and export


def run_hyperfine(spec: RunSpec, runs: int, warmup: int, workdir: Path,
                  grace_s: float = HYPERFINE_GRACE_S) -> HyperfineRun:
    """hyperfine -N (no shell; hyperfine splits the command itself, so each argument is quoted
    for its tokenizer), per-run figures from --export-json. hyperfine and everything it starts
    run in a process group of their own, killed whole on timeout: nothing outlives the call."""
    exe = find_tool("hyperfine")
    if not exe.found or exe.path is None:
        raise RuntimeError(f"hyperfine not found: {HOW_TO_GET['hyperfine']}")
    out = workdir / "hyperfine.json"
    out.unlink(missing_ok=True)
    cmd = " ".join(shlex.quote(a) for a in spec.argv)
    argv = [exe.path, "-N", "-i", "--style", "none", "--runs", str(runs), "--warmup",
            str(warmup), "--export-json", str(out), "--", cmd]
    limit_s = (runs + warmup) * spec.timeout_s + grace_s
    proc = subprocess.Popen(argv, env=dict(spec.env), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        _, err = proc.communicate(timeout=limit_s)
    except subprocess.TimeoutExpired:
        _kill_group(proc.pid)
        proc.communicate()
        raise RuntimeError(f"hyperfine timed out after {limit_s:g}s "
                           "(killed with its process group)") from None
    finally:
        _kill_group(proc.pid)  # a program that left children behind: they go too
    text = err.decode(errors="replace")
    if proc.returncode != 0 or not out.exists():
        raise RuntimeError("hyperfine failed: " + (text.strip().splitlines() or ["?"])[-1])
    schema, measured = parse_hyperfine_json(json.loads(out.read_text()))
    return HyperfineRun(runs=measured, schema=schema, version=exe.version or "")


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


# ---------------------------------------------------------------------------------------------
# Page cache


def evict(path: Path) -> None:
    """Drop a file's pages from the page cache (no root needed: POSIX_FADV_DONTNEED)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fdatasync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def read_back(path: Path) -> None:
    """Read a file fully with read(), so every binary's pages come back the same way (a file
    written by the linker through mmap otherwise starts ~15% slower warm than a `cp` of it)."""
    with open(path, "rb", buffering=0) as fh:
        while fh.read(1 << 20):
            pass


def normalise_warm(paths: Sequence[Path]) -> None:
    for p in paths:
        evict(p)
    for p in paths:
        read_back(p)


def run_env(base: Mapping[str, str], extra: Mapping[str, str]) -> dict[str, str]:
    """A run's environment: the harness's, minus GODEBUG/GOGC-style knobs that would change
    what is measured, plus the cell's."""
    env = {k: v for k, v in base.items()
           if k not in ("GODEBUG", "GOGC", "GOMAXPROCS", "GOMEMLIMIT", "GOTRACEBACK")}
    env.update(extra)
    return env


# ---------------------------------------------------------------------------------------------
# GODEBUG=inittrace=1

_INIT = re.compile(
    r"^init (?P<package>\S+) @(?P<start>[\d.]+) ms, (?P<clock>[\d.]+) ms clock, "
    r"(?P<bytes>\d+) bytes, (?P<allocs>\d+) allocs", re.M)


def parse_inittrace(stderr: str) -> list[dict[str, object]]:
    """The Go runtime's per-package init lines:
    `init internal/godebug @2.0 ms, 0.17 ms clock, 312 bytes, 7 allocs`."""
    return [{"package": m["package"], "start_ms": float(m["start"]),
             "clock_ms": float(m["clock"]), "bytes": int(m["bytes"]),
             "allocs": int(m["allocs"])} for m in _INIT.finditer(stderr)]
