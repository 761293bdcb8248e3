"""pytest-benchmark cases for gostartbench: run them with `gostartbench run` or `nox -s bench`,
which build the cells and write the run plan this reads (GOSTARTBENCH_RUN_DIR)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gostartbench import bench


def pytest_configure(config: pytest.Config) -> None:
    bench.install_sigterm()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "gsb_cell" in metafunc.fixturenames:
        cells = bench.plan_cells()
        metafunc.parametrize("gsb_cell", cells, ids=cells)


@pytest.fixture(scope="session")
def gsb_state() -> Iterator[bench.BenchState]:
    state = bench.state_from_env()
    if state is None:
        pytest.skip("no run plan: start the bench with `gostartbench run` or `nox -s bench`")
    yield state
    state.close()
