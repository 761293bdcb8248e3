"""Where a start's time goes: one traced run (gsb_trace.c), split into phases.

The tracer stops the program at exec, at its ELF entry (after the dynamic loader or UPX's
unpacker), at runtime.schedinit, runtime.main and main.main, and at exit; the phases between
those marks are:

  exec            fork+exec in the tracer → the kernel has loaded the ELF
  pre_entry       the dynamic loader (or UPX's unpacker) → the program's entry (~0 when static)
  runtime_entry   rt0 → runtime.schedinit (arguments, TLS, the first checks)
  bootstrap       runtime.schedinit → runtime.main (heap, GMP, signal setup, threads)
  package_init    runtime.main → main.main (every package's init(); inittrace zooms in here)
  main            main.main → exit (or → ready, for a ready-mode app)
  teardown        exit → reaped

Inside bootstrap and package init (and main, where a program starts netpoll), the runtime's own
stages are marked too (STAGES): int3 breakpoints at the runtime functions that begin them,
written once the entry is reached (a packed program is unpacked by then), a mark at the return
of runtime.gcenable, and netpoll's first init on a debug register freed by the entry (a debug
register is the main thread's alone: netpoll may be first reached on any thread). A function a
Go version lacks has no mark, and its stages are left out.

Each stop costs the program some tens of µs (measured per host by `stop_cost`: a no-op with
none and with four breakpoints); phase durations have it subtracted and say so. Addresses come
from the program's .symtab, else its .gopclntab (both read by the gsbsym Go helper, built per
toolchain), taken from the `go build` output (the same code before strip and UPX).
"""

from __future__ import annotations

import os
import random
import re
import statistics
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from gostartbench.build.calib import go_helper
from gostartbench.build.elfinfo import is_upx
from gostartbench.host.arch import emulation
from gostartbench.matrix import DEFAULT_TOOLCHAIN
from gostartbench.measure.spawn import compiled_helper
from gostartbench.measure.spec import RunSpec
from gostartbench.results.schema import STAGES, Stage

TRACE_SOURCE = Path(__file__).with_name("gsb_trace.c")
SYM_SOURCE = Path(__file__).with_name("gsbsym") / "main.go"

# Tracer marks in order: label → the Go function whose first instruction it is ("" = the entry)
MARKS: tuple[tuple[str, str], ...] = (
    ("entry", ""), ("schedinit", "runtime.schedinit"), ("rtmain", "runtime.main"),
    ("mainmain", "main.main"),
)
PHASES = ("exec", "pre_entry", "runtime_entry", "bootstrap", "package_init", "main",
          "teardown")
# phase → (mark it starts at, mark it ends at); t0 is "start"
BOUNDS = {
    "exec": ("start", "exec"), "pre_entry": ("exec", "entry"),
    "runtime_entry": ("entry", "schedinit"), "bootstrap": ("schedinit", "rtmain"),
    "package_init": ("rtmain", "mainmain"), "main": ("mainmain", "exit"),
    "teardown": ("exit", "reaped"),
}
# The runtime's own stages: mark label → function (int3 marks, then the late hardware one).
STAGE_MARKS: tuple[tuple[str, str], ...] = (
    ("mallocinit", "runtime.mallocinit"), ("mcommoninit", "runtime.mcommoninit"),
    ("gcinit", "runtime.gcinit"), ("procresize", "runtime.procresize"),
    ("initsig", "runtime.initsig"), ("newm", "runtime.newm"), ("doinit", "runtime.doInit1"),
    ("gcenable", "runtime.gcenable"),
)
LATE_MARKS: tuple[tuple[str, str], ...] = (("netpoll", "runtime.netpollGenericInit"),)
RETURN_MARKS = ("gcenable", "netpoll")  # also marked where they return (LABEL_ret)


_LINE = re.compile(r"([A-Za-z_]\w*)=(-?[0-9A-Za-z_]+)")


@dataclass(frozen=True)
class Target:
    """What the tracer needs of one binary: link-time addresses of the marks, whether it is a
    PIE (its load bias is added at run time) and its own ELF entry (for that bias)."""

    addresses: Mapping[str, int]  # mark label → link-time address
    pie: bool
    elf_entry: int
    symbols_from: str  # symtab | gopclntab (and "of the pre-pack binary" for UPX)
    stages: Mapping[str, int] = field(default_factory=dict)  # int3 stage marks
    late: Mapping[str, int] = field(default_factory=dict)  # stage marks on a freed register

    @property
    def missing(self) -> list[str]:
        """The stage functions this binary lacks (its Go version has no such function)."""
        have = {**self.stages, **self.late}
        return [fn for label, fn in (*STAGE_MARKS, *LATE_MARKS) if label not in have]


@dataclass(frozen=True)
class Trace:
    """One traced run: how it ended, which method stopped it, and its marks (ns since t0)."""

    status: str  # exited | signaled | timeout | ready | traceerr
    method: str  # hw | int3 | none
    marks: Mapping[str, int] = field(default_factory=dict)
    code: int = 0
    reason: str = ""


def _elf(path: Path) -> tuple[int, bool]:
    """(e_entry, is PIE) of an ELF file."""
    with open(path, "rb") as fh:
        elf = ELFFile(fh)
        return int(elf["e_entry"]), elf["e_type"] == "ET_DYN"


_SYMBOLS: dict[tuple[str, str], tuple[str, dict[str, int]]] = {}


def symbols(program: Path, toolchain: str) -> tuple[str, dict[str, int]]:
    """(where from, function → address) for the marks' functions of a Go binary: its .symtab,
    else its .gopclntab — read by the gsbsym Go helper (fast, and the pclntab's format is its
    toolchain's); cached per binary for the process."""
    key = (str(program), toolchain)
    if key not in _SYMBOLS:
        helper = go_helper("gsbsym", SYM_SOURCE.read_text(), toolchain or DEFAULT_TOOLCHAIN)
        names = [fn for _, fn in (*MARKS, *STAGE_MARKS, *LATE_MARKS) if fn]
        p = subprocess.run([str(helper), str(program), *names], capture_output=True,
                           text=True, check=False, timeout=60)
        if p.returncode != 0:
            raise RuntimeError((p.stderr.strip() or "gsbsym failed")[:200])
        pairs = dict(ln.split("=", 1) for ln in p.stdout.split() if "=" in ln)
        source = pairs.pop("source", "?")
        _SYMBOLS[key] = (source, {k: int(v, 16) for k, v in pairs.items()})
    return _SYMBOLS[key]


def target_for(binary: Path, program: Path, toolchain: str) -> Target | str:
    """The tracer's target for `binary` (what runs), with symbols from `program` (its `go
    build` output: the same code before strip and UPX); a reason string where none can be
    made."""
    try:
        entry, pie = _elf(binary)
        prog_entry, _ = _elf(program)
        how, syms = symbols(program, toolchain)
    except (OSError, ELFError, RuntimeError, subprocess.SubprocessError) as exc:
        return f"no symbols: {exc}"
    if binary != program and is_upx(binary):
        how += " of the pre-pack binary"
    addresses = {"entry": prog_entry, **{label: syms[fn] for label, fn in MARKS if fn in syms}}
    return Target(addresses=addresses, pie=pie, elf_entry=entry, symbols_from=how,
                  stages={label: syms[fn] for label, fn in STAGE_MARKS if fn in syms},
                  late={label: syms[fn] for label, fn in LATE_MARKS if fn in syms})


TRACER_IN = "/.gsb/gsb-trace"  # where the tracer is mounted in a container it traces in


def tracer_path() -> Path:
    """The compiled gsb-trace (cached)."""
    return compiled_helper(TRACE_SOURCE, "gsb-trace")


def trace_run(spec: RunSpec, target: Target | None, workdir: Path, mode: str = "hw",
              marks: Sequence[str] | None = None, stages: bool = True) -> Trace:
    """One traced run of `spec` (no breakpoints without a target: exec, exit, reaped only;
    `stages`: the runtime's stage marks too)."""
    argv = [str(tracer_path()), "-t", str(max(1, int(spec.timeout_s * 1000))),
            "-o", str(workdir / "trace.out"), "-e", str(workdir / "trace.err"), "-m", mode]
    if spec.ready is not None and spec.ready.stdout:
        argv += ["-r", spec.ready.stdout]
    elif spec.ready is not None and spec.ready.tcp:
        argv += ["-p", str(spec.ready.tcp)]  # a reader process polls the port
    if target is not None:
        if target.pie:
            argv += ["-P", "-x", f"{target.elf_entry:x}"]
        for label, addr in target.addresses.items():
            if marks is None or label in marks:
                argv += ["-b", f"{label}={addr:x}"]
        if stages and (marks is None or "entry" in marks):
            for label, addr in target.stages.items():
                argv += ["-s", f"{label}={addr:x}"]
            if mode == "hw":  # a late mark needs a debug register freed by the entry's
                for label, addr in target.late.items():
                    argv += ["-L", f"{label}={addr:x}"]
            argv += [x for label in RETURN_MARKS for x in ("-R", label)]
    env = dict(spec.env)
    if spec.inside is not None:
        # traced inside the cell's image: the (static) tracer is the container's entrypoint,
        # its clock starts there, so the engine's own start is not in any phase
        ins = spec.inside
        pre = [*ins.engine_run, "-v", f"{argv[0]}:{TRACER_IN}:ro", "-v", f"{workdir}:{workdir}",
               *[x for k, v in env.items() for x in ("-e", f"{k}={v}")],
               "--entrypoint", TRACER_IN, ins.image]
        argv = [*pre, *argv[1:]]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    p = subprocess.run([*argv, "--", *spec.argv], env=env, capture_output=True,
                       text=True, stdin=subprocess.DEVNULL, check=False,
                       timeout=spec.timeout_s + 60)
    d = dict(_LINE.findall(p.stdout.strip().splitlines()[-1] if p.stdout.strip() else ""))
    if "status" not in d:
        return Trace("traceerr", "none", reason=(p.stderr.strip() or "no answer")[:200])
    found = {k[2:]: int(v) for k, v in d.items() if k.startswith("t_")}
    return Trace(status=d["status"], method=d.get("method", "none"), marks=found,
                 code=int(d.get("code", 0)), reason=d.get("why", ""))


def ptrace_refused(workdir: Path) -> str:
    """Why traced runs cannot be made here ('' when they can): user-mode emulation (qemu-user
    implements no ptrace), Yama scope 3, a seccomp filter or a container that refuses it."""
    emulated = emulation()
    if emulated:
        return f"ptrace is not available under user-mode emulation ({emulated})"
    try:
        t = trace_run(RunSpec(argv=("/bin/true",), env={"PATH": "/usr/bin:/bin"}), None, workdir)
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        return f"the tracer cannot run: {exc}"
    if t.status == "traceerr":
        yama = Path("/proc/sys/kernel/yama/ptrace_scope")
        scope = yama.read_text().strip() if yama.exists() else "?"
        return f"ptrace refused ({t.reason}; kernel.yama.ptrace_scope={scope})"
    return ""


def phases(marks: Mapping[str, int], ready: bool, stop_cost_ns: Costs
           ) -> list[tuple[str, int, int]]:
    """(phase, start_ns, duration_ns) from a trace's marks, each boundary moved back by the
    cost of the stops before it. A phase whose marks were not both reached is left out; a
    ready-mode run's main phase ends at ready and has no teardown."""
    t = dict(marks)
    t["start"] = 0
    if ready:
        t.pop("exit", None)
        t.pop("reaped", None)
        if "ready" in t:
            t["exit"] = t["ready"]
    corrected = _corrected(t, stop_cost_ns)
    out = []
    for ph in PHASES:
        a, b = BOUNDS[ph]
        if a in corrected and b in corrected:
            out.append((ph, corrected[a], max(0, corrected[b] - corrected[a])))
    return out


Costs = float | Mapping[str, float]  # one cost for every stop, or each mark's own (ns)


def cost_of(costs: Costs, label: str) -> float:
    """A stop's cost: its own where `costs` names it (a mark's own cost), else the one cost
    (or the mapping's `default`, 0 without one)."""
    if isinstance(costs, Mapping):
        return float(costs.get(label, costs.get("default", 0.0)))
    return float(costs)


def _corrected(t: Mapping[str, int], costs: Costs) -> dict[str, int]:
    """Each mark moved back by the costs of the stops before it (every mark is a stop but the
    start, `reaped` and `ready`; the exec stop counts), each stop its own cost where known."""
    stops = sorted((v, k) for k, v in t.items() if k not in ("start", "reaped", "ready"))
    out = {m: v - round(sum(cost_of(costs, k) for x, k in stops if x < v))
           for m, v in t.items() if m not in ("start", "ready")}
    out["start"] = 0
    return out


# The phase marks in the order a start reaches them; a mark's own cost is measured in the span
# between its neighbours.
MARK_ORDER = ("exec", "entry", "schedinit", "rtmain", "mainmain", "exit")


def span_around(marks: Mapping[str, int], label: str) -> int | None:
    """The time between the two marks around `label` (None when either is missing)."""
    i = MARK_ORDER.index(label)
    a, b = MARK_ORDER[i - 1], MARK_ORDER[i + 1]
    return marks[b] - marks[a] if a in marks and b in marks else None


def span_costs(with_all: Sequence[Mapping[str, int]],
               without: Mapping[str, Sequence[Mapping[str, int]]]) -> dict[str, float]:
    """Each mark's own cost by leaving it out: the median span between its two neighbouring
    marks in runs that stop (or probe) there, minus the same span in runs that do not. What a
    stop costs before its own timestamp and after it both land in that span; it is subtracted
    from the phase after the mark (as a stop's cost always was)."""
    out = {}
    for label, runs in without.items():
        w = [x for x in (span_around(m, label) for m in with_all) if x is not None]
        wo = [x for x in (span_around(m, label) for m in runs) if x is not None]
        if w and wo:
            out[label] = max(0.0, statistics.median(w) - statistics.median(wo))
    return out


def mark_costs(noop: Path, target: Target, workdir: Path, runs: int = 60,
               seed: int = 0) -> dict[str, Any]:
    """Each phase mark's own stop cost on this host (ns): a static no-op traced with every
    phase mark, and with every mark but one, in shuffled rounds; each mark's cost by
    `span_costs`. The exec stop cannot be left out (every traced run has it): it takes the
    entry mark's cost, the nearest stop of the same kind in a process of one thread."""
    spec = RunSpec(argv=(str(noop),), env={"PATH": "/usr/bin:/bin"})
    labels = [label for label, _ in MARKS if label in target.addresses]
    variants = ["all", *labels]
    got: dict[str, list[Mapping[str, int]]] = {v: [] for v in variants}
    rng = random.Random(seed)
    method = "none"
    for _ in range(runs):
        order = list(variants)
        rng.shuffle(order)
        for v in order:
            keep = None if v == "all" else [x for x in labels if x != v]
            tr = trace_run(spec, target, workdir, marks=keep, stages=False)
            if tr.status == "exited":
                got[v].append(tr.marks)
                method = tr.method
    costs = span_costs(got["all"], {v: got[v] for v in labels})
    if "entry" in costs:
        costs["exec"] = costs["entry"]
    return {"stop_ns_by_mark": {k: round(v) for k, v in costs.items()}, "runs": runs,
            "method": method, "measured": "leave one out: the span around each mark with and "
            "without its stop (a static no-op)"}


def stages(marks: Mapping[str, int], stop_cost_ns: float) -> list[tuple[Stage, int, int]]:
    """(stage, start_ns, duration_ns) of the runtime's own stages whose two marks were both
    reached, each boundary moved back by the stops before it (as `phases`)."""
    t = dict(marks)
    t.pop("ready", None)
    corrected = _corrected(t, stop_cost_ns)
    return [(st, corrected[st.start], max(0, corrected[st.end] - corrected[st.start]))
            for st in STAGES if st.start in corrected and st.end in corrected]


def stop_cost(noop: Path, target: Target, workdir: Path, runs: int = 30,
              with_stages: bool = False) -> dict[str, Any]:
    """The cost of one stop on this host: a static no-op traced with no breakpoint and with
    the marks of a phases' run (or, `with_stages`, of a stages' run: int3 stops cost more than
    a debug register's), interleaved; (median total with − without) / stops."""
    spec = RunSpec(argv=(str(noop),), env={"PATH": "/usr/bin:/bin"})
    with_bp: list[int] = []
    without: list[int] = []
    method = "none"
    for _ in range(runs):
        a = trace_run(spec, None, workdir)
        b = trace_run(spec, target, workdir, stages=with_stages)  # as those runs are traced
        if "reaped" in a.marks and "reaped" in b.marks:
            without.append(a.marks["reaped"])
            with_bp.append(b.marks["reaped"])
            method = b.method
    n = len(target.addresses) + (len(target.stages) + sum(
        1 for x in RETURN_MARKS if x in target.stages) if with_stages else 0)
    if not with_bp or not n:
        return {"stop_ns": 0.0, "runs": 0, "method": method}
    per = (statistics.median(with_bp) - statistics.median(without)) / n
    return {"stop_ns": max(0.0, per), "runs": len(with_bp), "method": method,
            "noop_traced_p50_ns": statistics.median(without),
            "noop_traced_with_marks_p50_ns": statistics.median(with_bp), "marks": n}
