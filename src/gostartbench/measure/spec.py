"""What a run is and how its outcome is judged: RunSpec in, RunResult out, the Executor
protocol every timer implements, and the expect/ready checks (one line of reason)."""

from __future__ import annotations

import errno
import signal
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from gostartbench.matrix import Expect, Ready


@dataclass(frozen=True)
class Inside:
    """Where the spawn timer itself runs when a program is timed inside a container image: the
    engine's `run` command up to the image (its options), the image, and the host folder whose
    files are the image's top layer (a file under it is at the same path below / in the
    container: page-cache eviction and read-back act on it from either side, one page cache).
    The executor adds its helper and work folder as bind mounts."""

    engine_run: tuple[str, ...]
    image: str
    root: str
    interp: str = ""  # the binary's PT_INTERP ("" static): what an image may lack
    base: str = ""  # the base image's name, as the matrix gives it

    def inner(self, host_path: Path) -> str:
        """A host path under `root` as the container sees it."""
        return "/" + str(host_path.relative_to(self.root)).lstrip("/")


@dataclass(frozen=True)
class RunSpec:
    """How to run a program once: argv (no shell), environment, timeout, expect or ready, CPUs."""

    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)  # the whole environment of the run
    timeout_s: float = 10.0
    ready: Ready | None = None
    cpus: tuple[int, ...] | None = None
    expect: Expect = field(default_factory=Expect)
    inside: Inside | None = None  # time the program inside a container image (argv there)
    prewarm: str = ""  # after the eviction, a process of its own: "read" | "mmap" the binary
    drop_caches: bool = False  # evict host-wide (`echo 3 > /proc/sys/vm/drop_caches`)
    after: tuple[str, ...] = ()  # an argv run once the run is stopped (untimed), e.g. `rm -f`


@dataclass(frozen=True)
class RunResult:
    """What one run did: how it ended, wall/user/sys time, peak RSS, faults, output, verdict."""

    status: str  # exited | signaled | timeout | spawnerr | ready | noready
    exit_code: int
    signal: int
    wall_ns: int
    user_ns: int | None
    sys_ns: int | None
    maxrss_bytes: int | None
    minflt: int | None
    majflt: int | None
    # the spawner's resident set at the spawn: natively, the child's maxrss reads no lower
    rss_floor_bytes: int | None = None
    stdout: str = ""
    stderr: str = ""
    ok: bool = True
    reason: str = ""


# A run with its page-cache instructions: evict this file before, read it back after.
RunItem = tuple[RunSpec, Path | None, Path | None]


class Executor(Protocol):
    """A timer: turns RunSpecs into RunResults (one, or many back to back)."""

    name: str

    def run(self, spec: RunSpec, evict: Path | None = None,
            read_back: Path | None = None) -> RunResult:
        """One run (evict the file before, read it back after, where given)."""
        ...

    def run_many(self, items: Iterator[RunItem]) -> Iterator[RunResult]:
        """Many runs in order, results as they come."""
        ...


def signal_name(sig: int) -> str:
    """SIGABRT for 6, and so on."""
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def check(spec: RunSpec, res: RunResult) -> tuple[bool, str]:
    """Whether a run did what the app's `expect` / `ready` says, and if not, why (one line)."""
    if res.status == "spawnerr" and spec.inside is not None and spec.inside.interp and \
            res.exit_code == errno.ENOENT:
        return False, (f"exec failed (ENOENT): the image {spec.inside.base} has no "
                       f"{spec.inside.interp}, the binary's dynamic loader")
    if res.status == "spawnerr" and res.exit_code == errno.EADDRINUSE and spec.ready is not None \
            and spec.ready.tcp:
        return False, (f"port {spec.ready.tcp} already accepted connections before the program "
                       "started (a previous run's server, or another program, holds it): its "
                       "ready time would be no time at all")
    if res.status == "spawnerr" and spec.drop_caches and res.exit_code in (
            errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOENT):
        return False, (f"drop-caches: cannot write /proc/sys/vm/drop_caches (errno "
                       f"{res.exit_code}: it needs root with CAP_SYS_ADMIN, on the host)")
    if res.status == "spawnerr":
        return False, f"cannot start the program (errno {res.exit_code})"
    if res.status == "timeout":
        return False, f"timed out after {spec.timeout_s:g}s (killed with its process group)"
    if spec.ready is not None:
        if res.status != "ready":
            what = f"line containing {spec.ready.stdout!r}" if spec.ready.stdout else \
                f"connection accepted on port {spec.ready.tcp}"
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


def run_env(base: Mapping[str, str], extra: Mapping[str, str]) -> dict[str, str]:
    """A run's environment: the harness's, minus GODEBUG/GOGC-style knobs that would change
    what is measured, plus the cell's."""
    env = {k: v for k, v in base.items()
           if k not in ("GODEBUG", "GOGC", "GOMAXPROCS", "GOMEMLIMIT", "GOTRACEBACK")}
    env.update(extra)
    return env
