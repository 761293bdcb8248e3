"""`gostartbench report` and `compare`: statistics, charts and reports from saved run
folders (analysis reads files only)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gostartbench import results
from gostartbench.errors import EXIT_OK


def report_command(args: argparse.Namespace) -> int:
    from gostartbench import report

    run_dir = Path(args.run_dir)
    results.require_run_dir(run_dir)
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
