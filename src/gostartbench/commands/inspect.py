"""`gostartbench validate`, `list`, `build`, `doctor` and `clean`: the matrix, its builds and
this host's tools, without timing anything."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from gostartbench.commands.console import print_table, size_text
from gostartbench.errors import EXIT_FAILED, EXIT_OK, InputError
from gostartbench.matrix import MAX_CELLS_DEFAULT


def load_matrix(path: str, max_cells: int | None = None) -> Any:
    """The matrix file, validated against this host's installed toolchains."""
    from gostartbench import matrix
    from gostartbench.host import tools

    return matrix.load(path, installed_toolchains=tools.installed_toolchains(),
                       max_cells=max_cells or MAX_CELLS_DEFAULT)


def validate_command(args: argparse.Namespace) -> int:
    mx = load_matrix(args.matrix, args.max_cells)
    for w in mx.warnings:
        print(f"warning: {w}", file=sys.stderr)
    nb = len({c.build_id for c in mx.cells})
    print(f"{args.matrix}: ok: {len(mx.cells)} cells ({nb} binaries)")
    return EXIT_OK




def list_command(args: argparse.Namespace) -> int:
    from gostartbench.matrix import select

    mx = load_matrix(args.matrix, args.max_cells)
    cells = select(mx.cells, args.expr)
    if args.json:
        print(json.dumps([{"cell": c.id, "app": c.app, "toolchain": c.toolchain,
                           "build_id": c.build_id, "axes": c.axes} for c in cells], indent=1))
    else:
        cols = list(mx.axis_names)
        rows = [[c.id, c.app, c.toolchain, *[c.axes.get(k, "") for k in cols]] for c in cells]
        print_table(["cell", "app", "toolchain", *cols], rows)
    return EXIT_OK




def build_command(args: argparse.Namespace) -> int:
    from gostartbench import build, results
    from gostartbench.matrix import select
    from gostartbench.progress import Progress

    mx = load_matrix(args.matrix, args.max_cells)
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
    print_table(["cell", "size", "linkage", "status", "reason / note"],
           [[r["cell"], size_text(r.get("size_bytes")), r.get("linkage", ""), r["status"],
             (r["reason"] or r.get("identical", ""))[:70]] for r in rows])
    nfail = sum(1 for r in rows if r["status"] == "failed")
    ncached = sum(1 for r in res.values() if r.cached)
    print(f"{len(rows)} cells, {nbin} binaries ({ncached} from cache), {nfail} failed; "
          f"cells.csv: {out / 'cells.csv'}")
    return EXIT_FAILED if nfail else EXIT_OK




def doctor_command(args: argparse.Namespace) -> int:
    from gostartbench.host import tools

    code = EXIT_OK
    if args.install:
        from gostartbench.measure import container

        # the container tools and their host setting only when asked: a run with container
        # cells installs them itself (run/plan.py), the default matrix has none
        ok, line = tools.install_debian_tools(container.cgroup_problem()[0],
                                              containers=args.containers)
        print(f"install: {line}")
        code = EXIT_OK if ok else EXIT_FAILED
    print_table(["tool", "status", "version (path)", "from / how to get it"],
           [list(r) for r in tools.doctor_rows()])
    print(f"cache: {tools.cache_dir()}")
    print(f"containers: {containers_line()}")
    return code




def clean_command(args: argparse.Namespace) -> int:
    from gostartbench.measure import container

    engine, why = container.find_engine()
    if engine is None:
        print(f"clean: no container engine ({why}): nothing to remove")
        return EXIT_OK
    n = container.remove_images(engine, bases=args.all)
    print(f"clean: removed {n} image(s) of gostartbench ({engine.name})")
    return EXIT_OK




def containers_line() -> str:
    """Whether `container` cells can run here: the engine and this host's settings for it."""
    from gostartbench.measure import container

    engine, why = container.find_engine()
    problem = container.usable(engine, why)
    if engine is None or problem:
        return f"cannot run here: {problem}"
    limits = f"; runs with {' '.join(engine.run_args)} (this root cannot raise limits)" \
        if engine.run_args else ""
    return f"{engine.name} {engine.version} ({engine.path}){limits}"
