"""A starter matrix for a Go module (`gostartbench init`), written from what was learned about
each main package (pure: facts in, YAML text out; the probing is commands/init.py's).

What each program does decides how it is timed: a program that exits is timed to its exit and
expected to exit as it did; one still running with a fixed TCP port open is timed to that port
accepting (`ready: {tcp: PORT}`); one that prints a line and keeps running, to that line; one
that needs arguments, or that could not be run, is written commented out with a one-line note.
Knobs: buildmode and `-s -w` for every program; `cgo: [0, 1]` only where the program imports
net, os/user or C (elsewhere cgo changes nothing); UPX only when asked.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from gostartbench.matrix.axes import DEFAULT_TOOLCHAIN

# Run as they are, exits, port or line: how a probe saw the program behave.
EXITS, TCP, LINE, NEEDS_ARGS, UNKNOWN = "exits", "tcp", "line", "needs-args", "unknown"
CGO_IMPORTS = ("net", "os/user", "C")  # packages whose behaviour cgo changes


@dataclass(frozen=True)
class Program:
    """One main package and what running it once without arguments showed."""

    name: str  # the app's name in the matrix (unique)
    path: str  # its folder, relative to the matrix file
    behaviour: str  # EXITS | TCP | LINE | NEEDS_ARGS | UNKNOWN
    exit_code: int = 0
    port: int = 0
    line: str = ""
    note: str = ""  # one line for the user: why it is commented out, what to check
    cgo_sensitive: bool = False  # imports net, os/user or C


def _q(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a YAML double-quoted scalar


def _app_lines(p: Program) -> list[str]:
    """The app's entry; commented out (with its note) where it cannot run as written."""
    body = [f"  {p.name}:", f"    path: {_q(p.path)}"]
    if p.behaviour == EXITS:
        body.append(f"    expect: {{exit: {p.exit_code}}}")
    elif p.behaviour == TCP:
        body.append(f"    ready: {{tcp: {p.port}}}  # timed until the port accepts; then TERM")
    elif p.behaviour == LINE:
        body.append(f"    ready: {{stdout: {_q(p.line)}}}  # timed until this line; then TERM")
    else:
        body += ["    args: [\"...\"]  # the arguments it needs", "    expect: {exit: 0}"]
    lines = [f"  # {p.note}"] if p.note else []
    if p.behaviour in (NEEDS_ARGS, UNKNOWN):
        return lines + [f"  # {x[2:]}" for x in body]
    return lines + body


def starter_matrix(programs: Sequence[Program], module: str, upx: bool = False,
                   toolchain: str = DEFAULT_TOOLCHAIN, gate: bool = False,
                   toolchain_why: str = "") -> str:
    """The matrix text: every program, the knobs worth trying for them (`gate`: none — a pull
    request's gate times each program as it is built today, one cell a side, so its whole
    budget narrows that one ratio), a `measure` with a precision target and caps that give
    way to the verdict in a gate."""
    runnable = [p for p in programs if p.behaviour in (EXITS, TCP, LINE)]
    out = [f"# gostartbench matrix for {module},",
           "# written by `gostartbench init`: each main package was run once without arguments "
           "to learn",
           "# what it does. Every key: gostartbench's docs/matrix.md.",
           "# Run it: gostartbench run -m THIS_FILE; gate a pull request: gostartbench gate "
           "-m THIS_FILE.",
           "version: 1",
           f"toolchains: [{_q(toolchain)}]" + (f"  # {toolchain_why}" if toolchain_why else ""),
           "apps:"]
    for p in programs:
        out += _app_lines(p)
    if not runnable:
        out += ["  {}  # no program could be run without arguments: fill in one above"]
    if gate:
        out += ["# no axes: the gate times each program as it is built today (add one to gate "
                "a knob too)"]
    else:
        out += ["axes:", "  buildmode: [exe, pie]", '  ldflags: ["", "-s -w"]']
    cgo = not gate and any(p.cgo_sensitive for p in runnable)
    if cgo:
        names = [p.name for p in runnable if p.cgo_sensitive]
        verb = "imports" if len(names) == 1 else "import"
        how = "how it links" if len(names) == 1 else "how they link"
        out += [f"  cgo: [0, 1]  # {', '.join(names)} {verb} net, os/user or C: cgo changes "
                f"{how}"]
    upx = upx and not gate
    if upx:
        out += ["  upx: [none, best]  # a packed binary is unpacked on every start"]
    excl = []
    if cgo:
        excl += [f"  - {{cgo: 1, app: {_q(p.name)}}}" for p in runnable if not p.cgo_sensitive]
    if upx:
        excl += ["  - {buildmode: pie, upx: best}  # UPX refuses Go's internally linked PIE"]
        if cgo:
            excl += ["  - {upx: best, cgo: 1}"]
    if excl:
        out += ["exclude:", *excl]
    out += ["measure:",
            "  precision: 0.02      # each cell's ratio to its baseline to ±2% (ci95)",
            "  runs: 30",
            "  max_runs: 1500",
            "  budget_s: 120        # a gate's caps give way until its verdict can be reached",
            "  inittrace: true      # package init per module: which dependency moved",
            "  phases: false",
            '  calibration: "off"']
    return "\n".join(out) + "\n"
