"""The benchmark cases, as `gostartbench run` times them: `pytest bench/` runs the same case
(it ships in the package, gostartbench.run.cases; its fixtures and hooks are the package's pytest
plugin). Give it a run plan: GOSTARTBENCH_RUN_DIR=DIR, made by `gostartbench run --plan-only
--out DIR`; pytest's selection (-k, node ids, --lf) is then what is timed."""

from __future__ import annotations

from gostartbench.run.cases.test_startup import test_startup

__all__ = ["test_startup"]
