"""Facts about the host that change startup figures: recorded in run.json with every run, and
turned into warnings (as data) when they make the numbers less trustworthy."""

from __future__ import annotations

import os
import platform
import socket
from pathlib import Path
from typing import Any

from gostartbench.host.arch import EMULATED_WARNING, arm_cpu_model, emulation, hwcaps


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (an arm64 core named from its implementer and
    part numbers). Under user-mode emulation this is the *host's* CPU: see `emulated`."""
    text = _read("/proc/cpuinfo") or ""
    arm = arm_cpu_model(text)
    if arm:
        return arm
    for line in text.splitlines():
        if line.lower().startswith(("model name", "cpu model", "hardware")):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def governor() -> str | None:
    """cpu0's frequency governor, if the kernel exposes one."""
    return _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")


def turbo() -> str | None:
    """on/off when the kernel says whether turbo/boost is enabled."""
    no_turbo = _read("/sys/devices/system/cpu/intel_pstate/no_turbo")
    if no_turbo is not None:
        return "off" if no_turbo == "1" else "on"
    boost = _read("/sys/devices/system/cpu/cpufreq/boost")
    if boost is not None:
        return "on" if boost == "1" else "off"
    return None


def read_ahead_kb(path: Path) -> int | None:
    """read_ahead_kb of the block device holding `path` (or its parent device)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    major, minor = os.major(st.st_dev), os.minor(st.st_dev)
    base = Path(f"/sys/dev/block/{major}:{minor}")
    for p in (base / "queue" / "read_ahead_kb", base.parent / "queue" / "read_ahead_kb",
              base / ".." / "queue" / "read_ahead_kb"):
        v = _read(str(p))
        if v is not None and v.isdigit():
            return int(v)
    bdi = _read(f"/sys/class/bdi/{major}:{minor}/read_ahead_kb")
    return int(bdi) if bdi and bdi.isdigit() else None


def libc_version() -> str:
    """The C library and its version."""
    name, ver = platform.libc_ver()
    return f"{name} {ver}".strip() or "unknown"


def host_facts(binaries_dir: Path | None = None) -> dict[str, Any]:
    """Every host fact run.json records."""
    load1, load5, load15 = os.getloadavg()
    cores = os.cpu_count() or 1
    try:
        affinity = sorted(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        affinity = list(range(cores))
    mem = _read("/proc/meminfo") or ""
    mem_kb = next((int(ln.split()[1]) for ln in mem.splitlines()
                   if ln.startswith("MemTotal:")), 0)
    return {
        "hostname": socket.gethostname(),
        "arch": platform.machine(),
        "cpu_model": cpu_model(),
        "cores": cores,
        "affinity": affinity,
        "memory_bytes": mem_kb * 1024,
        "kernel": platform.release(),
        "os": (_read("/etc/os-release") or "").split("PRETTY_NAME=")[-1].split("\n")[0]
        .strip('"') or platform.platform(),
        "libc": libc_version(),
        "python": platform.python_version(),
        "governor": governor(),
        "turbo": turbo(),
        "aslr": _read("/proc/sys/kernel/randomize_va_space"),
        "loadavg": [round(load1, 2), round(load5, 2), round(load15, 2)],
        "read_ahead_kb": read_ahead_kb(binaries_dir) if binaries_dir else None,
        "virtualization": _read("/sys/class/dmi/id/product_name"),
        # user-mode emulation (qemu-user): why, or None; timings then mean nothing
        "emulated": emulation() or None,
        "cpu_features": sorted(hwcaps()) if platform.machine() in ("aarch64", "arm64")
        else None,
    }


def host_warnings(facts: dict[str, Any], cpus: tuple[int, ...] | None) -> list[str]:
    """Conditions that make startup figures noisier or biased, as data for run.json/report."""
    out = []
    if facts.get("emulated"):
        out.append(f"{EMULATED_WARNING} ({facts['emulated']}): the code paths ran, the "
                   "figures describe the emulator, not an arm64 CPU")
    load1 = facts.get("loadavg", [0])[0]
    if load1 > 0.5 * facts.get("cores", 1):
        out.append(f"machine loaded: 1-min load average {load1} on {facts.get('cores')} cores")
    if not cpus:
        out.append("unpinned: the measured process may move between CPUs (measure.cpus pins it)")
    gov = facts.get("governor")
    if gov and gov not in ("performance",):
        out.append(f"CPU frequency governor is {gov!r}, not 'performance': clock speed may vary")
    if facts.get("turbo") == "on":
        out.append("turbo/boost is on: clock speed depends on temperature and load")
    return out
