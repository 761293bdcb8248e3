"""Containers: the engine (podman, or docker where its daemon answers), the host settings it
needs, the images a cell runs in, and what a cell's two container times run.

Two times per container cell (the `launch` run axis):
- `direct`: the program's own start inside the image's root filesystem — its loader, its libc,
  its files on overlayfs, the container's namespaces and cgroup — timed by the same spawn
  helper as on the host, which runs *inside* a long-lived container of the image (a static
  binary, bind-mounted), so the engine's own start is not in the time;
- `engine`: the engine's `run --rm` of the image, spawned on the host, to exit or ready: what a
  pod's start pays beyond the image pull.

Every container and image this tool makes carries LABEL (and containers the run's id under
RUN_LABEL), so `cleanup` removes them by label after a run, a crash or an interrupt.
No image registry is needed: `scratch` and the local base images (LOCAL_IMAGES) are made here.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from gostartbench.host.tools import cache_dir, file_lock, find_tool
from gostartbench.measure.spec import Inside

LABEL = "io.gostartbench"  # on every image and container this tool makes
RUN_LABEL = "io.gostartbench.run"  # a container's run id (what `cleanup` matches)
NONE = "none"  # the `container` axis value of a cell run on the host
SCRATCH = "scratch"
# Base images made here from Debian's packages (no registry): named like any image.
LOCAL_DEBIAN = "gostartbench/debian:bookworm-minbase"  # debootstrap --variant=minbase
LOCAL_MUSL = "gostartbench/musl"  # Debian's musl loader + libc in an otherwise empty root
LOCAL_IMAGES = (LOCAL_DEBIAN, LOCAL_MUSL)
IN_IMAGE = "/gsb/app"  # where a cell's binary is in its image
ENGINES = ("auto", "podman", "docker")
CAP_SYS_RESOURCE = 24
TIMEOUT_S = 600  # building an image (a pull, or debootstrap, can take minutes)


class ContainerError(Exception):
    """An engine or image problem: one line, the engine's own words included."""


@dataclass(frozen=True)
class Engine:
    """A container engine that runs containers on this host, and the arguments every run
    needs here (ulimits this host allows)."""

    name: str  # podman | docker
    path: str
    version: str
    run_args: tuple[str, ...] = ()

    def cmd(self, *args: str) -> list[str]:
        """An argv for the engine."""
        return [self.path, *args]


def _run(argv: Sequence[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                          check=False)


def _tail(text: str) -> str:
    """The last meaningful line of an engine's answer."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:300] if lines else "no message"


def find_engine(want: str = "auto") -> tuple[Engine | None, str]:
    """The engine to use (`measure.engine`), or None and why. auto: podman where it runs,
    else docker where its daemon answers."""
    names = ("podman", "docker") if want == "auto" else (want,)
    why = []
    for name in names:
        tool = find_tool(name)
        if not tool.found or tool.path is None:
            why.append(f"{name} not installed")
            continue
        fmt = "{{.Version.Version}}" if name == "podman" else "{{.Server.Version}}"
        cmd = ["info", "--format", fmt] if name == "podman" else ["version", "--format", fmt]
        try:
            p = _run([tool.path, *cmd], timeout=30)
        except (OSError, subprocess.TimeoutExpired) as e:
            why.append(f"{name}: {e}")
            continue
        if p.returncode != 0:
            why.append(f"{name}: {_tail(p.stderr or p.stdout)}")
            continue
        args = ulimit_args() if name == "podman" else ()
        return Engine(name, tool.path, p.stdout.strip(), args), ""
    return None, "; ".join(why)


def _cap_eff() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    except (OSError, ValueError):
        pass
    return 0


def ulimit_args() -> tuple[str, ...]:
    """`--ulimit` arguments that crun can set here. A root without CAP_SYS_RESOURCE (some VMs
    and sandboxes) cannot raise a limit, and podman asks for more than the host has
    ("setrlimit RLIMIT_NOFILE: Operation not permitted"): ask for the largest power of two
    below the host's hard limits instead (podman itself caps nproc at 32768)."""
    if os.geteuid() == 0 and _cap_eff() >> CAP_SYS_RESOURCE & 1:
        return ()
    import resource

    def below(limit: int, cap: int) -> int:
        if limit == resource.RLIM_INFINITY or limit > cap:
            return cap
        return 1 << max(limit - 1, 1).bit_length() - 1

    nofile = below(resource.getrlimit(resource.RLIMIT_NOFILE)[1], 1 << 20)
    nproc = below(resource.getrlimit(resource.RLIMIT_NPROC)[1], 32768)
    return ("--ulimit", f"nofile={nofile}:{nofile}", "--ulimit", f"nproc={nproc}:{nproc}")


def cgroup_problem() -> tuple[str, list[list[str]]]:
    """crun refuses a hybrid cgroup layout whose cgroup2 mount holds a controller ("cgroups
    in hybrid mode not supported"): the problem in one line and the commands (root) that move
    those controllers to v1 hierarchies of their own; ("", []) when there is none."""
    root, unified = Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/unified")
    try:
        if (root / "cgroup.controllers").exists():  # pure cgroup v2
            return "", []
        ctl = (unified / "cgroup.controllers").read_text().split()
    except OSError:
        return "", []
    if not ctl:
        return "", []
    cmds: list[list[str]] = []
    for c in ctl:
        cmds += [["mkdir", "-p", f"/sys/fs/cgroup/{c}"],
                 ["mount", "-t", "cgroup", "-o", c, "cgroup", f"/sys/fs/cgroup/{c}"]]
    text = " && ".join(" ".join(c) for c in cmds)
    return (f"cgroups in hybrid mode with {', '.join(ctl)} on the cgroup2 mount: crun refuses "
            f"to run containers; as root: {text} (`gostartbench doctor --install` does it)"), \
        cmds


def usable(engine: Engine | None, why: str) -> str:
    """Why containers cannot run here ("" when they can): no engine, or a host problem."""
    if engine is None:
        return why or "no container engine"
    prob, _ = cgroup_problem()
    return prob if engine.name == "podman" else ""


def image_exists(engine: Engine, ref: str) -> bool:
    """True when the engine has an image by this name or id."""
    return _run(engine.cmd("image", "inspect", "--format", "{{.Id}}", ref)).returncode == 0


def _import_root(engine: Engine, root: Path, ref: str) -> None:
    """A root filesystem folder as an image named `ref` (tar of the folder, `import`)."""
    with tempfile.TemporaryDirectory(prefix="gsb-img-") as tmp:
        tar = Path(tmp) / "root.tar"
        p = _run(["tar", "-C", str(root), "--numeric-owner", "-cf", str(tar), "."],
                 timeout=TIMEOUT_S)
        if p.returncode != 0:
            raise ContainerError(f"{ref}: tar of {root}: {_tail(p.stderr)}")
        p = _run(engine.cmd("import", "--change", f"LABEL {LABEL}=base", str(tar), ref),
                 timeout=TIMEOUT_S)
        if p.returncode != 0:
            raise ContainerError(f"{ref}: {engine.name} import: {_tail(p.stderr)}")


def _musl_root(root: Path) -> None:
    """Debian's musl loader (which is musl's libc) at the paths musl and Alpine use."""
    arch = {"x86_64": "x86_64", "aarch64": "aarch64"}.get(os.uname().machine, os.uname().machine)
    loader = Path(f"/lib/ld-musl-{arch}.so.1")
    if not loader.exists():
        raise ContainerError(f"{LOCAL_MUSL}: {loader} not found (apt-get install musl)")
    (root / "lib").mkdir(parents=True)
    shutil.copy2(loader.resolve(), root / "lib" / loader.name)
    (root / "lib" / f"libc.musl-{arch}.so.1").symlink_to(loader.name)


def _debian_root(root: Path) -> None:
    """A minimal Debian root by debootstrap from the host's configured Debian mirror."""
    tool = find_tool("debootstrap")
    if not tool.found or tool.path is None:
        raise ContainerError(f"{LOCAL_DEBIAN}: debootstrap not installed "
                             "(apt-get install debootstrap)")
    suite = "bookworm"
    with contextlib.suppress(OSError):
        suite = dict(ln.split("=", 1) for ln in Path("/etc/os-release").read_text().splitlines()
                     if "=" in ln).get("VERSION_CODENAME", suite).strip('"') or suite
    p = _run([tool.path, "--variant=minbase", suite, str(root), *_mirror(suite)],
             timeout=1800)
    if p.returncode != 0:
        raise ContainerError(f"{LOCAL_DEBIAN}: debootstrap: {_tail(p.stderr or p.stdout)}")


def _mirror(suite: str) -> list[str]:
    """The mirror URI of the host's apt sources that serves `suite` with `main` (deb822
    `.sources` stanzas or one-line `.list` entries); none: debootstrap's own default."""
    d = Path("/etc/apt/sources.list.d")
    files = [Path("/etc/apt/sources.list"), *sorted(d.glob("*.list")), *sorted(d.glob("*.sources"))]
    for f in files:
        try:
            text = f.read_text()
        except OSError:
            continue
        if f.suffix == ".sources":
            for stanza in re.split(r"\n\s*\n", text):
                kv: dict[str, str] = {m.group(1): m.group(2) for m in
                                      re.finditer(r"^(\w[\w-]*):\s*(.*)$", stanza, re.M)}
                if "deb" in kv.get("Types", "").split() and suite in kv.get(
                        "Suites", "").split() and "main" in kv.get("Components", "").split():
                    return kv.get("URIs", "").split()[:1]
            continue
        for line in text.splitlines():
            m = re.match(r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)\s+(.*)$", line.strip())
            if m and m.group(2) == suite and "main" in m.group(3).split():
                return [m.group(1)]
    return []


def ensure_base(engine: Engine, ref: str) -> str:
    """The base image for `FROM`: scratch as is; a local base image made once (cached in the
    engine's store, under a lock); any other name as the user gave it (the engine pulls it,
    or already has it)."""
    if ref == SCRATCH or ref not in LOCAL_IMAGES:
        return ref
    with file_lock(cache_dir() / "images" / (_safe(ref) + ".lock")):
        if image_exists(engine, ref):
            return ref
        with tempfile.TemporaryDirectory(prefix="gsb-root-") as tmp:
            root = Path(tmp) / "root"
            if ref == LOCAL_MUSL:
                _musl_root(root)
            else:
                _debian_root(root)
            _import_root(engine, root, ref)
    return ref


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "-", text)


@dataclass(frozen=True)
class CellImage:
    """A cell's binary in a base image: the image's tag, and the binary's host path in the
    image's top layer (evicted and read back from the host: one page cache)."""

    tag: str
    base: str
    host_binary: Path
    size_bytes: int  # the whole image, as the engine reports it


def cell_image(engine: Engine, base: str, binary: Path, sha256: str) -> CellImage:
    """The image with `binary` at IN_IMAGE on `base`, built once per content (binary, base
    image id) and labelled as this tool's."""
    base = ensure_base(engine, base)
    base_id = "scratch"
    if base != SCRATCH:
        p = _run(engine.cmd("image", "inspect", "--format", "{{.Id}}", base))
        if p.returncode != 0:  # not here yet: the build pulls it
            p = _run(engine.cmd("pull", base), timeout=TIMEOUT_S)
            if p.returncode != 0:
                raise ContainerError(f"image {base}: {engine.name} pull: "
                                     f"{_tail(p.stderr or p.stdout)}")
            p = _run(engine.cmd("image", "inspect", "--format", "{{.Id}}", base))
        base_id = p.stdout.strip()
    key = hashlib.sha256(f"{sha256}\0{base_id}\0{IN_IMAGE}".encode()).hexdigest()[:20]
    tag = f"localhost/gostartbench/cell:{key}"
    with file_lock(cache_dir() / "images" / f"cell-{key}.lock"):
        if not image_exists(engine, tag):
            with tempfile.TemporaryDirectory(prefix="gsb-ctx-") as ctx:
                shutil.copy2(binary, Path(ctx) / "app")
                (Path(ctx) / "Containerfile").write_text(
                    f"FROM {base}\nCOPY app {IN_IMAGE}\nLABEL {LABEL}=cell\n"
                    f'ENTRYPOINT ["{IN_IMAGE}"]\n')
                p = _run(engine.cmd("build", "-q", "-f", str(Path(ctx) / "Containerfile"),
                                    "-t", tag, ctx), timeout=TIMEOUT_S)
                if p.returncode != 0:
                    raise ContainerError(f"image {base}: {engine.name} build: "
                                         f"{_tail(p.stderr or p.stdout)}")
    p = _run(engine.cmd("image", "inspect", "--format",
                        "{{.GraphDriver.Data.UpperDir}}\t{{.Size}}", tag))
    upper, _, size = p.stdout.strip().partition("\t")
    host_binary = Path(upper) / IN_IMAGE.lstrip("/")
    if p.returncode != 0 or not host_binary.is_file():
        raise ContainerError(f"image {tag}: its files are not on a host path this tool can "
                             f"evict and read back ({engine.name} storage driver not overlay)")
    return CellImage(tag, base, host_binary, int(size or 0))


def run_id(run_dir: Path) -> str:
    """The label value of a run's containers: its folder's name and a hash of its path (two
    runs into folders of the same name never share it)."""
    path = str(run_dir.resolve())
    return f"{_safe(run_dir.resolve().name)}-{hashlib.sha256(path.encode()).hexdigest()[:8]}"


def run_args(engine: Engine, run_id: str, cpus: str | None, env: dict[str, str]
             ) -> list[str]:
    """The engine's `run` options every container of a run gets: removed when done, labelled
    with the run, the host's network (a ready port is the host's), this host's ulimits, the
    CPU limit, the cell's own environment."""
    args = ["run", "--rm", "--label", f"{LABEL}=run", "--label", f"{RUN_LABEL}={run_id}",
            "--network", "host", *engine.run_args]
    if cpus and cpus != NONE:
        args += ["--cpus", cpus]
    for k, v in env.items():
        args += ["-e", f"{k}={v}"]
    return args


def engine_argv(engine: Engine, image: CellImage, run_id: str, cpus: str | None,
                env: dict[str, str], args: Sequence[str], name: str = "") -> list[str]:
    """`launch: engine`: the engine's run of the cell's image (the program is its entrypoint),
    named where given."""
    named = ["--name", name] if name else []
    return engine.cmd(*run_args(engine, run_id, cpus, env), *named, image.tag, *args)


def ready_name(run_id: str, cell: str) -> str:
    """The container name of a cell timed to ready through the engine: one at a time, removed
    after each run (`remove_argv`), so the next finds its port free."""
    return "gsb-" + hashlib.sha256(f"{run_id}\0{cell}".encode()).hexdigest()[:16]


def remove_argv(engine: Engine, name: str) -> list[str]:
    """The engine's forced removal of one container, waited for (stopped at once)."""
    return engine.cmd("rm", "-f", *(["-t", "0"] if engine.name == "podman" else []), name)


def inside(engine: Engine, image: CellImage, run_id: str, cpus: str | None, interp: str
           ) -> Inside:
    """`launch: direct`: where the spawn helper runs — a container of the cell's image (the
    executor mounts the helper and its work folder) — and the image's top layer on the host
    (its paths map to the container's)."""
    root = str(image.host_binary)[: -len(IN_IMAGE)]
    return Inside(tuple(engine.cmd(*run_args(engine, run_id, cpus, {}))), image.tag, root,
                  interp, image.base)


def cleanup(engine: Engine | None, run_id: str | None = None) -> int:
    """Stop and remove every container of a run (all of this tool's when run_id is None);
    how many were removed."""
    if engine is None:
        return 0
    sel = f"{RUN_LABEL}={run_id}" if run_id else LABEL
    p = _run(engine.cmd("ps", "-a", "-q", "--filter", f"label={sel}"))
    ids = p.stdout.split()
    if ids:
        _run(engine.cmd("rm", "-f", *(["-t", "0"] if engine.name == "podman" else []), *ids),
             timeout=120)
    return len(ids)


def remove_images(engine: Engine, bases: bool = False, force: bool = True) -> int:
    """`gostartbench clean`: stop and remove this tool's containers, then its cells' images
    (and with `bases` the local base images too); how many images were removed. Without
    `force`, containers are left alone and an image some container uses is kept."""
    if force:
        cleanup(engine)
    kinds = ("cell", "base") if bases else ("cell",)
    ids: set[str] = set()
    for kind in kinds:
        p = _run(engine.cmd("images", "-q", "--filter", f"label={LABEL}={kind}"))
        ids.update(p.stdout.split())
    removed = 0
    for i in sorted(ids) if not force else []:
        removed += _run(engine.cmd("rmi", i), timeout=120).returncode == 0
    if force and ids:
        _run(engine.cmd("rmi", "-f", *sorted(ids)), timeout=300)
        removed = len(ids)
    return removed
