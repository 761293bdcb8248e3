"""The process `perf record` starts for a profiled cell: N starts of one program, one after
another, each to its exit or to ready; it writes what each start was (pid, when it began and
ended on CLOCK_MONOTONIC, how it ended) as JSON. Its own samples are not the program's (its
pid is left out by measure/profile.py); every child's are, from its exec on.

    python -m gostartbench.measure.profile_driver SPEC.json OUT.json
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from typing import Any


def _evict(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def _tcp_ready(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.05)
        return s.connect_ex(("127.0.0.1", port)) == 0


def one(spec: dict[str, Any]) -> dict[str, Any]:
    """One start, to its exit (or to ready: then its process group is killed)."""
    if spec.get("evict"):
        _evict(spec["binary"])
    tcp, line = spec.get("ready_tcp"), spec.get("ready_stdout")
    t0 = time.monotonic_ns()
    p = subprocess.Popen(spec["argv"], env=spec["env"], cwd=spec.get("cwd") or None,
                         stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE if line else subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = t0 + int(spec["timeout_s"] * 1e9)
    end, how = 0, "exited"
    if tcp or line:
        buf = b""
        while time.monotonic_ns() < deadline and p.poll() is None:
            if tcp and _tcp_ready(int(tcp)):
                end = time.monotonic_ns()
                break
            if line and p.stdout is not None:
                r, _, _ = select.select([p.stdout], [], [], 0.005)
                if r:
                    buf += os.read(p.stdout.fileno(), 65536)
                    if line.encode() in buf:
                        end = time.monotonic_ns()
                        break
        how = "ready" if end else ("exited" if p.poll() is not None else "timeout")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGKILL)
        p.wait()
    else:
        try:
            p.wait(timeout=max(deadline - time.monotonic_ns(), 0) / 1e9)
        except subprocess.TimeoutExpired:
            how = "timeout"
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        end = time.monotonic_ns()
    if p.stdout is not None:
        p.stdout.close()
    ok = how == "ready" if (tcp or line) else (how == "exited" and (
        spec.get("exit") is None or p.returncode == spec["exit"]))
    return {"pid": p.pid, "t0_ns": t0, "end_ns": end, "how": how, "exit_code": p.returncode,
            "ok": ok}


def main(argv: list[str]) -> int:
    with open(argv[0]) as fh:
        spec = json.load(fh)
    starts = [one(spec) for _ in range(int(spec["runs"]))]
    with open(argv[1], "w") as fh:
        json.dump(starts, fh)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
