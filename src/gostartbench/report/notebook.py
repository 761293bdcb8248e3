"""Execute notebooks/analysis.ipynb against a run folder (`nox -s notebook`, and the tests).

    python -m gostartbench.report.notebook [RUN_DIR] [--out FILE]

The run folder reaches the notebook as GSB_RUN_DIR; the executed copy is written to FILE
(default results/notebooks/<run-id>.ipynb), never over the committed notebook.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from gostartbench.errors import EXIT_USAGE, InputError
from gostartbench.results import require_run_dir

REPO = Path(__file__).resolve().parents[3]
NOTEBOOK = REPO / "notebooks" / "analysis.ipynb"


def execute(run_dir: Path, out: Path, notebook: Path = NOTEBOOK, timeout_s: int = 600) -> Path:
    """Execute the notebook against a run folder into `out` (never over the committed one)."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(notebook, as_version=4)  # type: ignore[no-untyped-call]
    old = os.environ.get("GSB_RUN_DIR")
    os.environ["GSB_RUN_DIR"] = str(run_dir.resolve())
    # The notebook's charts go beside the executed copy, not into the run folder.
    os.environ["GSB_PLOTS_DIR"] = str(out.parent / f"{out.stem}-plots")
    try:
        NotebookClient(nb, timeout=timeout_s, kernel_name="python3",
                       resources={"metadata": {"path": str(notebook.parent)}}).execute()
    finally:
        if old is None:
            os.environ.pop("GSB_RUN_DIR", None)
        else:
            os.environ["GSB_RUN_DIR"] = old
    out.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out)  # type: ignore[no-untyped-call]
    return out


def main(argv: list[str] | None = None) -> int:
    """`python -m gostartbench.report.notebook [RUN_DIR] [--out FILE]`."""
    p = argparse.ArgumentParser(prog="python -m gostartbench.report.notebook")
    p.add_argument("run_dir", nargs="?", default=str(REPO / "results" / "example"))
    p.add_argument("--out")
    a = p.parse_args(argv)
    run_dir = Path(a.run_dir)
    try:
        require_run_dir(run_dir)
    except InputError as exc:
        print(f"gostartbench: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    out = Path(a.out) if a.out else REPO / "results" / "notebooks" / f"{run_dir.name}.ipynb"
    print(f"notebook: {execute(run_dir, out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
