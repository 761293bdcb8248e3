"""The run folder: the one contract between measuring and analysis. schema.py says what each
file holds (columns, units, version), files.py writes and reads them safely, load.py reads a
whole run once into a typed RunData. Imports no stage: the run stage writes through it,
analysis and report read through it."""

from gostartbench.results.files import (
    AppendCsv,
    RunLock,
    read_csv_rows,
    read_json,
    write_atomic,
    write_csv,
    write_json,
)
from gostartbench.results.load import RunData, Settings, load, read_cells, read_samples, read_table
from gostartbench.results.schema import (
    BENCH_JSON,
    CALIBRATION_CSV,
    CALIBRATION_JSON,
    CELLS_COLUMNS,
    CELLS_CSV,
    EFFECTS_COLUMNS,
    EFFECTS_CSV,
    INITTRACE_COLUMNS,
    INITTRACE_CSV,
    MATRIX_COPY,
    PHASES_COLUMNS,
    PHASES_CSV,
    PLAN_JSON,
    RUN_JSON,
    SAMPLES_COLUMNS,
    SAMPLES_CSV,
    SCHEMA_VERSION,
    SUMMARY_CSV,
    cells_columns,
    main_timer,
)

__all__ = [
    "BENCH_JSON", "CALIBRATION_CSV", "CALIBRATION_JSON", "CELLS_COLUMNS", "CELLS_CSV",
    "EFFECTS_COLUMNS", "EFFECTS_CSV", "INITTRACE_COLUMNS", "INITTRACE_CSV", "MATRIX_COPY",
    "PHASES_COLUMNS", "PHASES_CSV", "PLAN_JSON", "RUN_JSON", "SAMPLES_COLUMNS", "SAMPLES_CSV",
    "SCHEMA_VERSION", "SUMMARY_CSV",
    "AppendCsv", "RunData", "RunLock", "Settings", "cells_columns", "load", "main_timer",
    "read_cells", "read_csv_rows", "read_json", "read_samples", "read_table", "write_atomic",
    "write_csv", "write_json",
]
