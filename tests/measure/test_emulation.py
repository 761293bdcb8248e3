"""Host facts that differ on arm64, and emulation told apart from a real CPU: the detection on
the /proc texts each case shows, the auxiliary vector of this very process, GOARM64 levels
against CPU features, and the warning a run under emulation carries. (The whole pipeline on an
emulated arm64 root: .ci/arm64_check.py, which CI runs.)"""

from __future__ import annotations

import os
import platform

from gostartbench.host import hostinfo
from gostartbench.host.arch import (
    AT_HWCAP,
    EMULATED_WARNING,
    arm_cpu_model,
    auxv,
    emulation,
    goarm64_supported,
    hwcaps,
)

X86_CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model name\t: AMD EPYC 7B13
flags\t\t: fpu vme de pse tsc msr pae sse sse2 avx2
"""
ARM_CPUINFO = """processor\t: 0
BogoMIPS\t: 50.00
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x3
CPU part\t: 0xd0c
CPU revision\t: 1
"""
AT_PAGESZ = 6


def test_aarch64_code_beside_an_x86_kernel_is_emulation() -> None:
    why = emulation("aarch64", X86_CPUINFO)
    assert "aarch64 code under user-mode emulation on AMD EPYC 7B13" in why
    assert emulation("x86_64", X86_CPUINFO) == ""  # a real x86-64 host
    assert emulation("aarch64", ARM_CPUINFO) == ""  # a real arm64 host


def test_this_process_is_told_right() -> None:
    # On the x86-64 CI host: not emulated. Inside the arm64 root under qemu-user (the arm64
    # check runs this file there): emulated, and the run's facts say so.
    real_x86 = platform.machine() == "x86_64"
    assert (emulation() == "") == real_x86 or platform.machine() == "aarch64"
    facts = hostinfo.host_facts()
    assert bool(facts["emulated"]) == bool(emulation())
    if platform.machine() == "aarch64":
        assert facts["cpu_features"] is not None


def test_arm64_cores_are_named_from_implementer_and_part() -> None:
    assert arm_cpu_model(ARM_CPUINFO) == "Arm Neoverse-N1 (0x41/0xd0c)"
    assert arm_cpu_model(X86_CPUINFO) is None


def test_the_auxiliary_vector_of_this_process_is_read() -> None:
    vec = auxv()
    assert vec[AT_PAGESZ] == os.sysconf("SC_PAGE_SIZE")
    assert AT_HWCAP in vec
    if platform.machine() == "aarch64":
        assert {"fp", "asimd"} <= hwcaps(vec)


def test_goarm64_levels_need_the_features_go_uses() -> None:
    v80 = {"fp", "asimd"}
    assert goarm64_supported("v8.0", v80) == (True, "")
    ok, why = goarm64_supported("v8.1", v80)
    assert not ok and "atomics" in why and "GOARM64=v8.1" in why
    assert goarm64_supported("v9.0", v80 | {"atomics"})[0]
    ok, why = goarm64_supported("v8.0,crypto", v80 | {"aes"})
    assert not ok and "pmull" in why and "sha2" in why


def test_an_emulated_host_warns_that_timings_are_not_comparable() -> None:
    facts = {"emulated": emulation("aarch64", X86_CPUINFO), "loadavg": [0.0], "cores": 2}
    warns = hostinfo.host_warnings(facts, (0,))
    assert warns and warns[0].startswith(EMULATED_WARNING)
    assert hostinfo.host_warnings({**facts, "emulated": None}, (0,)) == []
