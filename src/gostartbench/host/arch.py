"""What the CPU is and whether it is real: arm64 CPU names and features, GOARM64 levels, and
user-mode emulation (qemu-user through binfmt_misc), under which timings mean nothing.

Why the auxiliary vector: on arm64 the kernel hands every process its CPU features as AT_HWCAP
and AT_HWCAP2; under qemu-user /proc/self/auxv is qemu's, describing the emulated CPU, while
/proc/cpuinfo is the host kernel's (an x86-64 CPU's lines): that mismatch is how emulation
shows from inside.
"""

from __future__ import annotations

import platform
import re
import struct
from pathlib import Path

AT_HWCAP, AT_HWCAP2 = 16, 26
# arch/arm64/include/uapi/asm/hwcap.h (AT_HWCAP bits)
HWCAP_BITS = ("fp", "asimd", "evtstrm", "aes", "pmull", "sha1", "sha2", "crc32", "atomics",
              "fphp", "asimdhp", "cpuid", "asimdrdm", "jscvt", "fcma", "lrcpc", "dcpop",
              "sha3", "sm3", "sm4", "asimddp", "sha512", "sve", "asimdfhm", "dit", "uscat",
              "ilrcpc", "flagm", "ssbs", "sb", "paca", "pacg")
# CPU implementer → name, and (implementer, part) → core, for the common server and board cores
IMPLEMENTERS = {0x41: "Arm", 0x42: "Broadcom", 0x43: "Cavium", 0x46: "Fujitsu", 0x48: "HiSilicon",
                0x4E: "NVIDIA", 0x50: "Ampere (APM)", 0x51: "Qualcomm", 0x61: "Apple",
                0xC0: "Ampere"}
PARTS = {(0x41, 0xD03): "Cortex-A53", (0x41, 0xD07): "Cortex-A57", (0x41, 0xD08): "Cortex-A72",
         (0x41, 0xD0B): "Cortex-A76", (0x41, 0xD0C): "Neoverse-N1", (0x41, 0xD40): "Neoverse-V1",
         (0x41, 0xD49): "Neoverse-N2", (0x41, 0xD4F): "Neoverse-V2", (0x41, 0xD8E): "Neoverse-N3",
         (0x41, 0xD84): "Neoverse-V3", (0xC0, 0xAC3): "AmpereOne", (0x48, 0xD01): "Kunpeng-920"}
EMULATED_WARNING = "emulated: timings are not comparable"


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def auxv(path: str = "/proc/self/auxv") -> dict[int, int]:
    """This process's auxiliary vector (type → value), empty where unreadable."""
    try:
        data = Path(path).read_bytes()
    except OSError:
        return {}
    out = {}
    for i in range(0, len(data) - 15, 16):
        key, val = struct.unpack_from("=QQ", data, i)
        if key == 0:
            break
        out[key] = val
    return out


def hwcaps(vec: dict[int, int] | None = None) -> set[str]:
    """arm64 CPU features from AT_HWCAP (what the kernel, or qemu, says this CPU has)."""
    v = (vec if vec is not None else auxv()).get(AT_HWCAP, 0)
    return {name for i, name in enumerate(HWCAP_BITS) if v >> i & 1}


def arm_cpu_model(cpuinfo: str) -> str | None:
    """'Arm Neoverse-N1 (0x41/0xd0c)' from an arm64 /proc/cpuinfo, None if it is not one."""
    imp = re.search(r"^CPU implementer\s*:\s*(0x[0-9a-fA-F]+)", cpuinfo, re.M)
    part = re.search(r"^CPU part\s*:\s*(0x[0-9a-fA-F]+)", cpuinfo, re.M)
    if not imp or not part:
        return None
    i, p = int(imp.group(1), 16), int(part.group(1), 16)
    name = PARTS.get((i, p)) or f"part {p:#x}"
    return f"{IMPLEMENTERS.get(i, f'implementer {i:#x}')} {name} ({i:#x}/{p:#x})"


def emulation(machine: str | None = None, cpuinfo: str | None = None) -> str:
    """Why this process runs under user-mode emulation ('' when it does not): the program is
    aarch64 (or another non-x86 architecture) while the kernel's /proc/cpuinfo describes an
    x86 CPU — what qemu-user through binfmt_misc looks like from inside."""
    machine = machine or platform.machine()
    text = cpuinfo if cpuinfo is not None else _cpuinfo()
    x86_kernel = bool(re.search(r"^(vendor_id|flags)\s*:", text, re.M)) or \
        any(v in text for v in ("GenuineIntel", "AuthenticAMD"))
    if machine not in ("x86_64", "i686", "i386") and x86_kernel:
        model = next((ln.split(":", 1)[1].strip() for ln in text.splitlines()
                      if ln.startswith("model name")), "an x86 CPU")
        interp = binfmt_interpreter(machine)
        return (f"{machine} code under user-mode emulation on {model}"
                + (f" ({interp} via binfmt_misc)" if interp else ""))
    return ""


def binfmt_interpreter(machine: str) -> str:
    """The binfmt_misc interpreter registered for `machine`'s ELF files ('' if none seen)."""
    name = {"aarch64": "qemu-aarch64", "arm64": "qemu-aarch64"}.get(machine, f"qemu-{machine}")
    try:
        text = Path("/proc/sys/fs/binfmt_misc", name).read_text()
    except OSError:
        return ""
    m = re.search(r"^interpreter (\S+)", text, re.M)
    return m.group(1) if m and text.startswith("enabled") else ""


def goarm64_supported(level: str, caps: set[str] | None = None) -> tuple[bool, str]:
    """Whether this CPU runs GOARM64=level code: from v8.1 Go emits LSE atomics (and its
    runtime refuses to start without them); `,crypto` needs the AES, PMULL and SHA units.
    Go uses no later instruction set feature (1.27), so higher levels need no more."""
    caps = hwcaps() if caps is None else caps
    base, *opts = level.split(",")
    major, minor = (int(x) for x in base.lstrip("v").split("."))
    need = set()
    if (major, minor) >= (8, 1) or "lse" in opts:
        need.add("atomics")
    if "crypto" in opts:
        need |= {"aes", "pmull", "sha1", "sha2"}
    missing = sorted(need - caps)
    if missing:
        return False, f"this CPU lacks {', '.join(missing)} needed by GOARM64={level}"
    return True, ""
