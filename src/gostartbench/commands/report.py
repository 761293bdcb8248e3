"""`gostartbench report` and `compare`: statistics, charts and reports from saved run
folders (analysis reads files only)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gostartbench.errors import EXIT_OK, InputError


def report_command(args: argparse.Namespace) -> int:
    from gostartbench import report

    run_dir = Path(args.run_dir)
    if not (run_dir / "samples.csv").exists() and not (run_dir / "cells.csv").exists():
        raise InputError(f"{run_dir} is not a run folder (no cells.csv or samples.csv)",
                         key="RUN_DIR")
    print(f"report: {report.make_report(run_dir)}")
    return EXIT_OK




def compare_command(args: argparse.Namespace) -> int:
    from gostartbench.report import compare

    text, code = compare.compare_command([Path(p) for p in args.run_dirs], args.format,
                                         args.fail_on, args.reference)
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return code
