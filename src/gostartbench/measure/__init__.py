"""The measure stage: one run of a program, timed. Executors (the built-in spawn helper,
hyperfine, a fake for tests), page-cache conditions, and the expect/ready checks.

Like hyperfine, measurement is separate from statistics and export: an executor turns a
RunSpec into a RunResult, nothing more.
"""

from gostartbench.measure.fake import FakeExecutor
from gostartbench.measure.hyperfine import (
    HYPERFINE_GRACE_S,
    HyperfineMeasurement,
    HyperfineRun,
    hyperfine_available,
    hyperfine_check,
    parse_hyperfine_json,
    run_hyperfine,
)
from gostartbench.measure.inittrace import parse_inittrace
from gostartbench.measure.pagecache import evict, normalise_warm, read_back
from gostartbench.measure.spawn import SpawnExecutor, helper_path, parse_helper_line
from gostartbench.measure.spec import (
    Executor,
    RunItem,
    RunResult,
    RunSpec,
    check,
    run_env,
    signal_name,
)

__all__ = [
    "HYPERFINE_GRACE_S", "Executor", "FakeExecutor", "HyperfineMeasurement", "HyperfineRun",
    "RunItem", "RunResult", "RunSpec", "SpawnExecutor", "check", "evict", "helper_path",
    "hyperfine_available", "hyperfine_check", "normalise_warm", "parse_helper_line",
    "parse_hyperfine_json", "parse_inittrace", "read_back", "run_env", "run_hyperfine",
    "signal_name",
]
