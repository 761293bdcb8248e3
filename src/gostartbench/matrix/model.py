"""The matrix's data: apps, measure settings, cells and the matrix itself (frozen)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gostartbench.matrix.axes import REV, RUNENV_PREFIX
from gostartbench.stats.intervals import DEFAULT_BOOTSTRAP
from gostartbench.stats.significance import DEFAULT_MIN_EFFECT


@dataclass(frozen=True)
class Expect:
    """What a run must do: exit code and stdout (checked on verification and spawn runs)."""

    exit: int | None = 0
    stdout: str | None = None  # the whole stdout, trailing whitespace ignored
    stdout_contains: str | None = None


@dataclass(frozen=True)
class Ready:
    """A server's ready condition: startup ends at it."""

    stdout: str | None = None  # startup ends when a stdout line contains this text
    tcp: int | None = None  # … or when 127.0.0.1:PORT accepts a connection


@dataclass(frozen=True)
class App:
    """One Go program under test."""

    name: str
    path: Path  # the main package's folder, absolute
    args: tuple[str, ...] = ()
    expect: Expect = field(default_factory=Expect)
    ready: Ready | None = None
    env: tuple[tuple[str, str], ...] = ()  # run environment for every cell of this app


@dataclass(frozen=True)
class Measure:
    """How cells are timed (matrix `measure:`; docs/matrix.md)."""

    timer: str = "spawn"
    runs: int = 200  # with `precision` or `budget_s`: the minimum per cell
    precision: float | None = None  # target half-width of each cell's ratio ci95 (0.01: ±1%)
    max_runs: int = 2000  # the cap per cell when rounds go on past `runs`
    budget_s: float | None = None  # a time budget for the timing phase
    warmup: int = 20
    order: str = "interleaved"
    cpus: tuple[int, ...] | None = None
    timeout_s: float = 10.0
    seed: int = 0
    min_effect: float = DEFAULT_MIN_EFFECT
    inittrace: bool = True
    inittrace_runs: int = 5
    phases: bool = True  # separate traced runs → phases.csv (where the start's time goes)
    phase_runs: int = 20
    # profiled starts (perf) → profile_samples.csv, profile.csv, profiles/*.pb.gz; off by
    # default until a profile of every cell fits the default run's time (docs/validation.md)
    profile: bool = False
    profile_runs: int = 200
    profile_hz: int = 0  # 0: as high as the host allows, at most measure.profile.HZ_CAP
    bootstrap: int = DEFAULT_BOOTSTRAP
    calibration: str = "floor"  # floor: the no-op's P50; full: `calibrate` (100 runs); off
    engine: str = "auto"  # the container engine: auto (podman, else docker) | podman | docker
    evict: str = "file"  # how cold and prewarm cells evict: file (fadvise) | drop-caches (echo 3)
    # Set by the commands that judge a run (`gate`, `--fail-on`), not a matrix key: the timing
    # the significance rule needs before it can call a change (intervals.FULL_SPAN_S). Until
    # the run has lasted this long, max_runs and budget_s give way (run/adaptive.py).
    verdict_span_s: float = 0.0


@dataclass(frozen=True)
class Cell:
    """One measured unit: an app, a toolchain, build-axis values and run-axis values."""

    id: str
    app: str
    toolchain: str
    build: tuple[tuple[str, str], ...]  # every build axis, defaults filled in
    run: tuple[tuple[str, str], ...]  # every run axis, defaults filled in
    build_id: str  # cells with the same build_id share one binary

    @property
    def build_values(self) -> dict[str, str]:
        """Every build axis with this cell's value."""
        return dict(self.build)

    @property
    def run_values(self) -> dict[str, str]:
        """Every run axis with this cell's value."""
        return dict(self.run)

    @property
    def axes(self) -> dict[str, str]:
        """Every axis (build and run) with this cell's value."""
        return {**self.build_values, **self.run_values}

    @property
    def cache(self) -> str:
        """The page-cache state of this cell's runs."""
        return self.run_values.get("cache", "warm")

    @property
    def run_env(self) -> dict[str, str]:
        """The run environment variables of this cell's `env.X` run axes."""
        return {k[len(RUNENV_PREFIX):]: v for k, v in self.run if k.startswith(RUNENV_PREFIX)}


@dataclass(frozen=True)
class Matrix:
    """A loaded, validated matrix with its cells."""

    file: Path
    sha256: str
    text: str
    toolchains: tuple[str, ...]
    apps: tuple[App, ...]
    build_axes: tuple[tuple[str, tuple[str, ...]], ...]  # axes the matrix varies, in file order
    run_axes: tuple[tuple[str, tuple[str, ...]], ...]
    exclude: tuple[dict[str, tuple[str, ...]], ...]
    include: tuple[dict[str, str], ...]
    baseline: dict[str, str]
    measure: Measure
    cells: tuple[Cell, ...]
    warnings: tuple[str, ...] = ()
    # `gostartbench gate`: rev value → the root of its tree; apps' paths are in the tree named
    # `home` and are found at the same place relative to each other tree's root.
    trees: tuple[tuple[str, Path], ...] = ()
    home: str = ""
    toolchains_named: bool = True  # False: the file has no `toolchains` (the default was used)

    def app(self, name: str) -> App:
        """The app named `name`."""
        return next(a for a in self.apps if a.name == name)

    def app_dir(self, cell: Cell) -> Path:
        """The folder a cell's binary is built from: its app's path, moved into the cell's
        source tree when the matrix has several (`rev`)."""
        path = self.app(cell.app).path
        rev = cell.build_values.get(REV, "")
        if not self.trees or not rev:
            return path
        roots = dict(self.trees)
        return roots[rev] / path.relative_to(roots[self.home])

    @property
    def axis_names(self) -> list[str]:
        """The varied axes, build axes first, in file order."""
        return [k for k, _ in self.build_axes] + [k for k, _ in self.run_axes]

    def baseline_of(self, cell: Cell) -> Cell | None:
        """The baseline cell of `cell` (None when the matrix has none)."""
        return baseline_of(cell, self.baseline, self.cells)


def baseline_of(cell: Cell, baseline: Mapping[str, str], cells: Sequence[Cell]) -> Cell | None:
    """The baseline cell for `cell`: its app and toolchain, the baseline's axis values, and the
    cell's own values for axes the baseline does not name."""
    want = {"app": cell.app, "toolchain": cell.toolchain, **cell.axes,
            **{k: v for k, v in baseline.items()}}
    for c in cells:
        if {"app": c.app, "toolchain": c.toolchain, **c.axes} == want:
            return c
    return None
