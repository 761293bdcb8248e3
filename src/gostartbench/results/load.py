"""`load(run_dir) -> RunData`: a run folder read once, typed, for analysis, report, compare and
the notebook. Raw files only (run.json, cells.csv, samples.csv, inittrace.csv, calibration.json):
statistics are derived from them, never read back from summary.csv."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from gostartbench.errors import InputError
from gostartbench.results.files import read_json, whole_lines
from gostartbench.results.schema import (
    CALIBRATION_JSON,
    CELLS_CSV,
    DEPS_COLUMNS,
    DEPS_CSV,
    INITTRACE_CSV,
    MATRIX_COPY,
    PHASES_CSV,
    PHASES_UPROBE_CSV,
    PROFILE_SAMPLES_CSV,
    PROFILE_STACKS_CSV,
    PROFILE_STARTS_CSV,
    RUN_JSON,
    SAMPLES_COLUMNS,
    SAMPLES_CSV,
    SCHEMA_VERSION,
)
from gostartbench.stats.intervals import DEFAULT_BOOTSTRAP
from gostartbench.stats.significance import DEFAULT_MIN_EFFECT

_NUMERIC_SAMPLES = ("round", "wall_ns", "user_ns", "sys_ns", "maxrss_bytes", "rss_floor_bytes",
                    "minflt", "majflt", "exit_code", "signal", "done_unix_ns", "epoch")


@dataclass(frozen=True)
class Settings:
    """What the run was asked to do (run.json `settings`)."""

    axes: tuple[str, ...]  # the axes the matrix varies, in file order
    baseline: Mapping[str, str]  # axis → baseline value (the first listed value by default)
    measure: Mapping[str, Any]
    select: str | None

    @property
    def min_effect(self) -> float:
        """The run's own smallest change it may call significant."""
        return float(self.measure.get("min_effect", DEFAULT_MIN_EFFECT))

    @property
    def seed(self) -> int:
        """The run's seed (shuffle and bootstrap)."""
        return int(self.measure.get("seed", 0))

    @property
    def bootstrap(self) -> int:
        """Bootstrap resamples asked for."""
        return int(self.measure.get("bootstrap", DEFAULT_BOOTSTRAP))


@dataclass(frozen=True)
class RunData:
    """One run folder, read once. Tables are pandas DataFrames with the columns of
    results.schema; axis columns are text."""

    run_dir: Path
    run: Mapping[str, Any]  # run.json as written
    settings: Settings
    cells: pd.DataFrame
    samples: pd.DataFrame
    inittrace: pd.DataFrame
    phases: pd.DataFrame  # phases.csv's phase rows (empty when the run made no traced runs)
    deps: pd.DataFrame  # deps.csv (empty before schema 1.4)
    calibration: Mapping[str, Any] | None
    matrix_text: str
    stages: pd.DataFrame = field(default_factory=pd.DataFrame)  # phases.csv's stage rows
    uprobe: pd.DataFrame = field(default_factory=pd.DataFrame)  # phases_uprobe.csv, all rows
    # profiled starts (new in 1.7; empty without them)
    profile_samples: pd.DataFrame = field(default_factory=pd.DataFrame)
    profile_stacks: pd.DataFrame = field(default_factory=pd.DataFrame)
    profile_starts: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def id(self) -> str:
        """The run's id."""
        return str(self.run.get("id", self.run_dir.name))

    @property
    def timed(self) -> pd.DataFrame:
        """The ok samples of timed rounds (what statistics are computed from)."""
        s = self.samples
        return s[s["ok"] & (s["round"] >= 0)] if len(s) else s


def check_version(found: str | None, where: Path) -> None:
    """Refuse, in one line, a run written by a newer major version of the schema."""
    major = int(str(found or "1.0").split(".")[0])
    if major > int(SCHEMA_VERSION.split(".")[0]):
        raise InputError(f"{where} was written with results schema {found}; this gostartbench "
                         f"reads {SCHEMA_VERSION.split('.')[0]}.x: upgrade gostartbench",
                         key="schema_version")


def require_run_dir(run_dir: Path, key: str = "RUN_DIR") -> Path:
    """The one check of a run folder: it holds run.json (InputError, one line, naming the
    argument `key`, when it does not)."""
    run_dir = Path(run_dir)
    if not (run_dir / RUN_JSON).is_file():
        raise InputError(f"{run_dir} is not a run folder (no {RUN_JSON})", key=key)
    return run_dir


def load(run_dir: Path) -> RunData:
    """Read a run folder (InputError, one line, when it is none or too new)."""
    run_dir = require_run_dir(run_dir)
    run: dict[str, Any] = read_json(run_dir / RUN_JSON)
    check_version(run.get("schema_version"), run_dir / RUN_JSON)
    st = run.get("settings", {})
    settings = Settings(
        axes=tuple(st.get("axes", ())),
        baseline={k: str(v) for k, v in (st.get("baseline") or {}).items()},
        measure=dict(st.get("measure", {})), select=st.get("select"))
    cal_file = run_dir / CALIBRATION_JSON
    matrix_file = run_dir / MATRIX_COPY
    traced = read_table(run_dir / PHASES_CSV, ["cell", "phase", "method", "stage"])
    is_stage = traced["stage"].fillna("").astype(str) != "" if "stage" in traced else None
    phase_rows = traced[~is_stage].drop(columns="stage") if is_stage is not None else traced
    stage_rows = traced[is_stage] if is_stage is not None else pd.DataFrame()
    return RunData(
        run_dir=run_dir, run=run, settings=settings,
        cells=read_cells(run_dir, settings.axes), samples=read_samples(run_dir),
        inittrace=read_table(run_dir / INITTRACE_CSV, ["cell", "package"]),
        phases=phase_rows,
        deps=read_table(run_dir / DEPS_CSV, DEPS_COLUMNS),
        stages=stage_rows,
        uprobe=read_table(run_dir / PHASES_UPROBE_CSV, ["cell", "phase", "method", "stage"]),
        calibration=read_json(cal_file) if cal_file.exists() else None,
        matrix_text=matrix_file.read_text() if matrix_file.exists() else "",
        profile_samples=read_table(run_dir / PROFILE_SAMPLES_CSV, ["cell", "thread"]),
        profile_stacks=read_table(run_dir / PROFILE_STACKS_CSV, ["frames"]),
        profile_starts=read_table(run_dir / PROFILE_STARTS_CSV, ["cell", "how", "ok"]),
    )


def read_table(path: Path, text_columns: Sequence[str] = ()) -> pd.DataFrame:
    """A CSV of the run folder; a torn last line (a kill mid-write) is dropped. Columns in
    `text_columns` stay text (axis values like "false", "0", "1.27.3" are labels)."""
    data = whole_lines(path)
    if not data.strip():
        return pd.DataFrame()
    return pd.read_csv(io.BytesIO(data), keep_default_na=False, na_values=[""],
                       on_bad_lines="skip", low_memory=False,
                       dtype={c: str for c in text_columns})


def read_samples(run_dir: Path) -> pd.DataFrame:
    """samples.csv with numeric columns as numbers and `ok` as a boolean."""
    df = read_table(run_dir / SAMPLES_CSV, ["cell", "cache", "timer", "reason", "after_cell"])
    if df.empty:
        df = pd.DataFrame(columns=SAMPLES_COLUMNS)
    df["ok"] = df["ok"].astype(str).str.lower() == "true"
    for c in _NUMERIC_SAMPLES:
        df[c] = pd.to_numeric(df[c], errors="coerce") if c in df else float("nan")
    for c in ("reason", "cache", "after_cell"):
        if c in df:  # after_cell: new in schema 1.7
            df[c] = df[c].astype(object).fillna("").astype(str)
    return df


def read_cells(run_dir: Path, axes: Sequence[str]) -> pd.DataFrame:
    """cells.csv with every axis column (and app, toolchain, cell) as text."""
    cells = read_table(run_dir / CELLS_CSV, [*axes, "toolchain", "app", "cell"])
    for a in axes:
        if a in cells:
            cells[a] = cells[a].fillna("").astype(str)
    if "toolchain" in cells:
        cells["toolchain"] = cells["toolchain"].astype(str)
    return cells
