"""The second timer: hyperfine -N, per-run figures from its JSON export (schema 1 and 2)."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gostartbench.host.tools import HOW_TO_GET, find_tool
from gostartbench.measure.spec import RunSpec, signal_name


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
    """One hyperfine invocation: its runs, the JSON schema it wrote, its version."""

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
