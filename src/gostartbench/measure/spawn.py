"""The built-in timer: a persistent C helper (gsb_spawn.c, compiled once with the host's cc)
that times posix_spawn .. wait4 and reports the child's own RSS and faults."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import re
import select
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from gostartbench.host.tools import cache_dir, file_lock, find_tool
from gostartbench.measure.spec import Inside, RunItem, RunResult, RunSpec, check

HELPER_SOURCE = Path(__file__).with_name("gsb_spawn.c")
HELPER_IN = "/.gsb/gsb-spawn"  # where the helper is mounted in a container it times in


def helper_path() -> Path:
    """The compiled gsb-spawn, built once per source version and C compiler into the cache."""
    return compiled_helper(HELPER_SOURCE, "gsb-spawn")


def compiled_helper(source: Path, name: str) -> Path:
    """A C helper of the package, compiled once per source version and C compiler into the
    cache (with the host's cc: the helpers are the host's, whatever its architecture). Looked
    up once per process and cache folder (a traced run asks for its tracer every time)."""
    known = _HELPERS.get((source, name, cache_dir()))
    if known is not None and known.is_file():
        return known
    out = _compile(source, name)
    _HELPERS[(source, name, cache_dir())] = out
    return out


_HELPERS: dict[tuple[Path, str, Path], Path] = {}


_STATIC_KEY = b"static-first"  # in the cache key: helpers built before this were dynamic


def _compile(source: Path, name: str) -> Path:
    src = source.read_bytes()
    cc = find_tool("cc")
    if not cc.found:
        cc = find_tool("gcc")
    if not cc.found or cc.path is None:
        raise RuntimeError(f"{name} needs a C compiler once, to build it: apt-get install gcc")
    key = hashlib.sha256(src + (cc.version or "").encode() + _STATIC_KEY).hexdigest()[:16]
    out = cache_dir() / "helper" / key / name
    if out.is_file():
        return out
    with file_lock(out.parent.with_suffix(".lock")):
        if out.is_file():
            return out
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{name}.{os.getpid()}")
        # Static first: the spawner's resident set is the floor of every program's peak RSS
        # (gsb_spawn.c says why), and a static one holds ~0.7 MB against ~1.5 MB dynamic.
        # Dynamic where the C library has no static archive; the floor is reported either way.
        for flags in (["-static"], []):
            p = subprocess.run([cc.path, "-O2", *flags, "-o", str(tmp), str(source)],
                               capture_output=True, text=True, check=False)
            if p.returncode == 0:
                break
        if p.returncode != 0:
            raise RuntimeError(f"cannot compile {name}: {p.stderr.strip()[:300]}")
        os.replace(tmp, out)
    return out


def _floor(d: dict[str, str]) -> int | None:
    """The helper's RSS at the spawn (the floor of the child's peak), None where unknown."""
    kb = int(d.get("floor_kb", -1))
    return kb * 1024 if kb >= 0 else None


_LINE = re.compile(r"(\w+)=(-?\w+)")


def parse_helper_line(line: str) -> dict[str, str]:
    """The helper's `key=value` answer line as a dict."""
    return dict(_LINE.findall(line))


class SpawnExecutor:
    """The built-in timer: a persistent gsb-spawn server starts each program and times
    posix_spawn .. wait4 in C. One warm helper, fed batches, makes runs back-to-back spawns,
    like a C loop or hyperfine, with no Python and no helper exec in or beside the timed
    span."""

    name = "spawn"

    def __init__(self, workdir: Path | None = None, capture_limit: int = 1 << 16) -> None:
        self.helper = str(helper_path())
        # tmpfs when there is one: the program's stdout must not touch the measured disk.
        shm = Path("/dev/shm")  # noqa: S108 - a private mkdtemp inside it
        base = shm if shm.is_dir() else None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="gsb-", dir=base))
        self.capture_limit = capture_limit
        # One helper per place it runs (the host, or inside one container image) and CPU set:
        # interleaved rounds go from one to the next without restarting any.
        self._servers: dict[_Key, _Server] = {}
        self._current: _Server | None = None

    @property
    def proc(self) -> subprocess.Popen[bytes] | None:
        """The helper process answering the current batch."""
        return self._current.proc if self._current else None

    def _server(self, spec: RunSpec) -> _Server:
        key = (spec.cpus, spec.inside)
        srv = self._servers.get(key)
        if srv is not None and srv.proc.poll() is None:
            self._current = srv
            return srv
        if srv is not None:
            srv.stop()
        cpu_args = ["-c", ",".join(str(c) for c in spec.cpus)] if spec.cpus else []
        if spec.inside is None:
            argv = [self.helper, "-S", *cpu_args]
        else:  # the helper (static) runs in a container of the image, as its entrypoint
            argv = [*spec.inside.engine_run, "-i", "-v", f"{self.helper}:{HELPER_IN}:ro",
                    "-v", f"{self.workdir}:{self.workdir}", "--entrypoint", HELPER_IN,
                    spec.inside.image, "-S", *cpu_args]
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env={"PATH": "/usr/bin:/bin"})
        srv = self._servers[key] = _Server(proc)
        self._current = srv
        return srv

    def _stop(self) -> None:
        for srv in self._servers.values():
            srv.stop()
        self._servers.clear()
        self._current = None

    def request(self, spec: RunSpec, out: Path, err: Path, evict: Path | None = None,
                read_back: Path | None = None) -> bytes:
        """One run's request to the helper: NUL-separated fields, a NUL to end."""
        fields = [f"t={max(1, int(spec.timeout_s * 1000))}", f"o={out}", f"e={err}"]
        inner = spec.inside.inner if spec.inside is not None else str
        if evict is not None:
            fields.append(f"X={inner(evict)}")
        if read_back is not None:
            fields.append(f"R={inner(read_back)}")
        if spec.prewarm and evict is not None:
            fields.append(f"W={spec.prewarm}")
        if spec.drop_caches and evict is not None:
            fields.append("D=1")
        fields += [f"Z={a}" for a in spec.after]
        if spec.ready is not None and spec.ready.stdout:
            fields.append(f"r={spec.ready.stdout}")
        elif spec.ready is not None and spec.ready.tcp:
            fields.append(f"p={spec.ready.tcp}")
        fields += [f"E={k}={v}" for k, v in spec.env.items()]
        fields += [f"A={a}" for a in spec.argv]
        for f in fields:
            if "\0" in f:
                raise ValueError(f"an argument or variable holds a NUL byte: {f!r}")
        return b"".join(f.encode() + b"\0" for f in fields) + b"\0"

    def run(self, spec: RunSpec, evict: Path | None = None,
            read_back: Path | None = None) -> RunResult:
        """One run, timed by the helper."""
        return next(self.run_many(iter([(spec, evict, read_back)])))

    batch = 16  # runs per batch: the helper runs them back to back while Python sleeps

    def run_many(self, items: Iterator[RunItem]) -> Iterator[RunResult]:
        """Run items in order, in batches the helper runs back to back (it flushes results
        when it runs out of requests, so Python does not compete with the measured programs
        for the CPUs). Results come batch by batch; `items` is pulled a batch ahead at most,
        so a caller can stop feeding a cell soon after one of its runs fails."""
        it = iter(items)
        while True:
            chunk: list[RunItem] = []
            for nxt in it:
                chunk.append(nxt)
                if len(chunk) >= self.batch or (len(chunk) > 1 and
                                                 _key(chunk[-1][0]) != _key(chunk[0][0])):
                    break
            if not chunk:
                return
            if len(chunk) > 1 and _key(chunk[-1][0]) != _key(chunk[0][0]):
                last = chunk.pop()
                it = itertools.chain([last], it)
            yield from self._batch(chunk)

    def _batch(self, chunk: list[RunItem]) -> list[RunResult]:
        slots = [(self.workdir / f"stdout{i}", self.workdir / f"stderr{i}")
                 for i in range(len(chunk))]
        reqs: list[bytes | None] = []
        for (spec, ev, back), (out, err) in zip(chunk, slots, strict=True):
            try:
                reqs.append(self.request(spec, out, err, ev, back))
            except ValueError:
                reqs.append(None)
        proc = self._server(chunk[0][0]).proc
        try:
            assert proc.stdin is not None
            proc.stdin.write(b"".join(r for r in reqs if r is not None))
            proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # reported as each answer fails to come
        results: list[RunResult] = []
        for (spec, _, _), req, (out, err) in zip(chunk, reqs, slots, strict=True):
            if req is None:
                results.append(self._fail("spawnerr", "an argument or variable holds a "
                                          "NUL byte"))
            else:
                results.append(self._answer(spec, out, err))
        return results

    def _answer(self, spec: RunSpec, out: Path, err: Path) -> RunResult:
        srv = self._current
        line = ""
        if srv is not None and srv.proc.stdout is not None:
            # A batch answers when all its runs are done.
            line = srv.readline((spec.timeout_s + 5) * self.batch + 30)
        if not line.startswith("status="):
            why = "no answer"
            if srv is not None:
                why = srv.why()
                srv.stop()
                self._servers = {k: v for k, v in self._servers.items() if v is not srv}
                self._current = None
            where = "spawn helper" if spec.inside is None else "spawn helper in the container"
            return self._fail("spawnerr", f"{where}: {why}")
        d = parse_helper_line(line)
        status = d.get("status", "spawnerr")
        res = RunResult(
            status=status, exit_code=int(d.get("code", -1)), signal=int(d.get("sig", 0)),
            wall_ns=int(d.get("wall_ns", 0)), user_ns=int(d.get("user_ns", 0)),
            sys_ns=int(d.get("sys_ns", 0)), maxrss_bytes=int(d.get("maxrss_kb", 0)) * 1024,
            minflt=int(d.get("minflt", 0)), majflt=int(d.get("majflt", 0)),
            rss_floor_bytes=_floor(d),
            stdout=_read(out, self.capture_limit) if status != "spawnerr" else "",
            stderr=_read(err, self.capture_limit) if status != "spawnerr" else "",
        )
        ok, reason = check(spec, res)
        return RunResult(**{**res.__dict__, "ok": ok, "reason": reason})

    @staticmethod
    def _fail(status: str, reason: str) -> RunResult:
        return RunResult(status, -1, 0, 0, None, None, None, None, None, ok=False, reason=reason)

    def close(self) -> None:
        """Stop the helper and remove its work folder."""
        self._stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


_Key = tuple[tuple[int, ...] | None, Inside | None]


def _key(spec: RunSpec) -> _Key:
    return (spec.cpus, spec.inside)


class _Server:
    """One running helper and the bytes of its answers not yet read."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.buf = b""

    def readline(self, timeout_s: float) -> str:
        """One answer line, read from the raw pipe with our own buffer (select() on a
        buffered reader would wait for lines it already holds)."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return ""
            try:
                ready, _, _ = select.select([fd], [], [], left)
                chunk = os.read(fd, 65536) if ready else b""
            except OSError:
                return ""
            if ready and not chunk:
                return ""  # the helper is gone
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line.decode(errors="replace")

    def why(self) -> str:
        """What a helper that stopped answering said (its stderr), once it has ended."""
        try:
            self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            return "no answer"
        if self.proc.stderr is None:
            return "died"
        text = self.proc.stderr.read(4096).decode(errors="replace").strip()
        return " ".join(text.split()) or "died"

    def stop(self) -> None:
        """Close its input (it ends when out of requests), then kill it if it lingers."""
        with contextlib.suppress(OSError):
            if self.proc.stdin:
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for pipe in (self.proc.stdout, self.proc.stderr):  # no file left open
            if pipe is not None:
                pipe.close()


def _read(path: Path, limit: int) -> str:
    try:
        with open(path, "rb") as fh:
            return fh.read(limit).decode("utf-8", errors="replace")
    except OSError:
        return ""
