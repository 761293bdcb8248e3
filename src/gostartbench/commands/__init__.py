"""Orchestration: the phases of `gostartbench run` and `gostartbench calibrate`, which drive every
stage (no stage imports this package)."""
