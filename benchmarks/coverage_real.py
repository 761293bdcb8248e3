"""Do the intervals hold on this machine? A/A builds, real runs, known truth (ratio 1).

Copies of goapps/hello that differ only in their module name (Go's build info, and the file
names in the line table; the machine code is the same, checked on .text) are timed by
`gostartbench run` like any matrix, REPEATS times. For every copy against the first, the
ratio's ci95 should cover 1 in ≥ 93% of pairs and `significant` should fire in ≤ 5%. Printed
for the bootstrap the tool uses (page-cache placement epochs, gostartbench.stats.intervals) and, to
show why it is chosen, for resampling single runs, rounds, and blocks of time.

    python benchmarks/coverage_real.py [--repeats 12] [--runs 300] [--copies 4] [--filler]

`--filler` adds two slower programs (UPX-packed hello, netcli) to every round, so a copy and
its reference are far apart in time within a round, as in the default matrix.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from elftools.elf.elffile import ELFFile
from scipy import stats as sps

from gostartbench import results
from gostartbench.analysis.summary import sample_blocks
from gostartbench.stats import intervals
from gostartbench.stats.significance import holm, significant

REPO = Path(__file__).resolve().parents[1]
BLOCKS = {"single runs (iid)": None, "rounds (paired)": "round", "time, 0.25 s": 0.25,
          "time, 1 s": 1.0, "the tool's: placement epochs": "tool"}


def make_apps(root: Path, copies: int) -> list[str]:
    """`copies` modules aa0.. with hello's code."""
    names = []
    for i in range(copies):
        d = root / f"aa{i}"
        d.mkdir(parents=True)
        shutil.copy(REPO / "goapps/hello/main.go", d / "main.go")
        (d / "go.mod").write_text(f"module aa{i}\n\ngo 1.21\n")
        names.append(f"aa{i}")
    return names


def matrix(root: Path, names: list[str], runs: int, filler: bool) -> Path:
    """The A/A matrix (no axes: one cell per app)."""
    apps = "".join(f"  {n}:\n    path: {root / n}\n    expect: {{stdout: 'Hello, Go!'}}\n"
                   for n in names)
    if filler:
        apps += (f"  netcli:\n    path: {REPO / 'goapps/netcli'}\n"
                 f"  packed:\n    path: {REPO / 'goapps/hello'}\n")
    text = (f"version: 1\ntoolchains: ['1.27.3']\napps:\n{apps}"
            + ("axes:\n  upx: [none, best]\nexclude:\n" + "".join(
                f"  - {{app: {n}, upx: best}}\n" for n in [*names, "netcli"])
               + "  - {app: packed, upx: none}\n" if filler else "")
            + f"measure: {{runs: {runs}, warmup: 10, inittrace: false, phases: false, "
            "calibration: 'off'}\n")
    p = root / "aa.yaml"
    p.write_text(text)
    return p


def text_of(binary: Path) -> bytes:
    """The .text section (machine code) of a binary."""
    with open(binary, "rb") as fh:
        sec = ELFFile(fh).get_section_by_name(".text")
        return bytes(sec.data()) if sec is not None else b""


def blocks_of(ok: pd.DataFrame, how: object) -> np.ndarray:
    """Block ids of a run's timed samples under one bootstrap choice."""
    if how is None:
        return np.arange(len(ok))
    if how == "round":
        return np.asarray(ok["round"].to_numpy())
    if how == "tool":
        return sample_blocks(ok)
    t = ok["done_unix_ns"].to_numpy()
    return intervals.block_ids(t, float(t.min()), float(how))  # type: ignore[arg-type]


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=12)
    p.add_argument("--runs", type=int, default=300)
    p.add_argument("--copies", type=int, default=4)
    p.add_argument("--filler", action="store_true")
    p.add_argument("--keep", help="keep the run folders here")
    a = p.parse_args()
    root = Path(tempfile.mkdtemp(prefix="gsb-aa-"))
    names = make_apps(root, a.copies)
    mx = matrix(root, names, a.runs, a.filler)
    out = Path(a.keep) if a.keep else root / "runs"
    rows = []
    rng = np.random.default_rng(0)
    for rep in range(a.repeats):
        d = out / f"rep{rep:02d}"
        subprocess.run([sys.executable, "-m", "gostartbench", "run", "-m", str(mx), "--out",
                        str(d), "--no-report"], check=True, stdout=subprocess.DEVNULL)
        run = results.load(d)
        binary = run.cells.set_index("cell")["binary"]
        aa_cells = [c for c in run.cells["cell"] if c.split("_")[0] in names]
        assert len({text_of(Path(binary[c])) for c in aa_cells}) == 1, "copies differ in .text"
        ok = run.timed.sort_values("done_unix_ns")
        ref = aa_cells[0]
        span_s = (ok["done_unix_ns"].max() - ok["done_unix_ns"].min()) / 1e9
        for label, how in BLOCKS.items():
            bl = blocks_of(ok, how)
            per = {c: (bl[(ok["cell"] == c).to_numpy()],
                       ok.loc[ok["cell"] == c, "wall_ns"].to_numpy() / 1e6) for c in aa_cells}
            pv, ivs = [], []
            for c in aa_cells[1:]:
                iv = intervals.ratio_interval(per[c][1], per[c][0], per[ref][1], per[ref][0],
                                              2000, rng)
                ivs.append(iv)
                pv.append(float(sps.mannwhitneyu(per[c][1], per[ref][1]).pvalue))
            padj = holm(pv)
            for iv, pa in zip(ivs, padj, strict=True):
                rows.append({"rep": rep, "bootstrap": label, "span_s": span_s,
                             "ratio": iv.estimate, "covers": iv.low <= 1 <= iv.high,
                             "half_width": iv.half_width,
                             "significant": bool(significant(iv.estimate, iv.low, iv.high,
                                                             0.01, pa))})
        print(f"repeat {rep + 1}/{a.repeats}: {span_s:.1f} s of runs", file=sys.stderr)
    df = pd.DataFrame(rows)
    tab = df.groupby("bootstrap", sort=False).agg(
        pairs=("covers", "size"), coverage=("covers", "mean"),
        significant=("significant", "mean"), median_half_width=("half_width", "median"),
        worst_ratio=("ratio", lambda r: float(r.iloc[np.argmax(np.abs(np.log(r)))])))
    print(f"A/A: {a.copies} copies of hello, {a.runs} runs each, {a.repeats} repeats"
          + (", with filler cells" if a.filler else "")
          + f"; runs span {df['span_s'].median():.1f} s (median)")
    print(tab.to_string(float_format=lambda x: f"{x:.3f}"))
    print(json.dumps({"targets": {"coverage": ">= 0.93", "significant": "<= 0.05"}}))
    if not a.keep:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
