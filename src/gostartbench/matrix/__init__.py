"""The matrix stage (pure): matrix.yaml v1 loaded safely with line numbers, validated against
the axis table (axes.py), and expanded to cells with stable, readable ids."""

from gostartbench.host.toolchains import KNOWN_GO_BIN
from gostartbench.matrix.axes import (
    AXES,
    BUILD_AXES,
    DEFAULT_TOOLCHAIN,
    ENV_PREFIX,
    RUN_AXES,
    RUNENV_PREFIX,
)
from gostartbench.matrix.expand import cell_id, expand
from gostartbench.matrix.model import App, Cell, Expect, Matrix, Measure, Ready, baseline_of
from gostartbench.matrix.select import select
from gostartbench.matrix.validate import MAX_CELLS_DEFAULT, TIMERS, load

__all__ = [
    "AXES", "BUILD_AXES", "DEFAULT_TOOLCHAIN", "ENV_PREFIX", "KNOWN_GO_BIN",
    "MAX_CELLS_DEFAULT", "RUNENV_PREFIX", "RUN_AXES", "TIMERS", "App", "Cell", "Expect",
    "Matrix", "Measure", "Ready", "baseline_of", "cell_id", "expand", "load", "select",
]
