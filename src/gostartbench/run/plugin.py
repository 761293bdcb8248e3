"""The pytest plugin behind the benchmark cases (entry point `pytest11: gostartbench`).

Inert unless a case asks for `gsb_cell`: then the cells come from the run plan named by
GOSTARTBENCH_RUN_DIR, pytest's own selection (`-k`, node ids, `--lf`) decides which cells are
timed, and each case gets the instrument's replay clock through pytest-benchmark's public
`benchmark(timer=...)` marker. `Outcomes` is the runner's ear: it collects what pytest saw of
every case, so the run's verdict is pytest's.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from gostartbench.results import main_timer
from gostartbench.results.plan import Plan, read_plan
from gostartbench.run import bench

CELL_PARAM = "gsb_cell"
_SELECTED = pytest.StashKey[list[str]]()
_PLAN = pytest.StashKey[Plan | None]()
CELL_FAILED_PROPERTY = "gsb_cell_failed"  # a report's user property: the cell's own failure


def _run_dir() -> Path | None:
    d = os.environ.get(bench.RUN_DIR_ENV)
    return Path(d) if d else None


def _plan(config: pytest.Config) -> Plan | None:
    """The run plan, read once per pytest session (None without GOSTARTBENCH_RUN_DIR)."""
    if _PLAN not in config.stash:
        d = _run_dir()
        if d is None:
            config.stash[_PLAN] = None
        else:
            try:
                config.stash[_PLAN] = read_plan(d)
            except (OSError, ValueError) as exc:
                raise pytest.UsageError(f"gostartbench: cannot read the run plan in {d}: "
                                        f"{exc}") from None
    return config.stash[_PLAN]


def pytest_configure(config: pytest.Config) -> None:
    """During a bench, SIGTERM stops the run like Ctrl-C (samples kept)."""
    if _run_dir() is not None:
        bench.install_sigterm()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One case per planned cell; without a plan, one case skipped with the way to get one."""
    if CELL_PARAM not in metafunc.fixturenames:
        return
    plan = _plan(metafunc.config)
    if plan is None:
        metafunc.parametrize(CELL_PARAM, [pytest.param(
            None, marks=pytest.mark.skip(reason=bench.NO_PLAN_REASON))], ids=["no-run-plan"])
        return
    cells = list(plan.order)
    metafunc.parametrize(CELL_PARAM, cells, ids=cells)


def _cell_of(item: pytest.Item) -> str | None:
    callspec = getattr(item, "callspec", None)
    cell = callspec.params.get(CELL_PARAM) if callspec is not None else None
    return cell if isinstance(cell, str) else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The instrument's replay clock as each case's pytest-benchmark timer."""
    plan = _plan(config) if any(_cell_of(i) for i in items) else None
    if plan is None:
        return
    clock = bench.CLOCKS[main_timer(plan.measure["timer"])]
    for item in items:
        if _cell_of(item) is not None:
            item.add_marker(pytest.mark.benchmark(timer=clock))


def pytest_collection_finish(session: pytest.Session) -> None:
    """pytest's selection (after -k, node ids, --lf, -m) is the schedule."""
    cells = [c for c in (_cell_of(i) for i in session.items) if c is not None]
    session.config.stash[_SELECTED] = cells


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Tag a failure that is the cell's own (CellFailed), not the harness's."""
    report = yield
    if call.excinfo is not None and call.excinfo.errisinstance(bench.CellFailed):
        report.user_properties.append((CELL_FAILED_PROPERTY, str(call.excinfo.value)))
    return report


@pytest.fixture(scope="session")
def gsb_state(request: pytest.FixtureRequest) -> Iterator[bench.BenchState]:
    """The shared measuring state of the selected cells."""
    d = _run_dir()
    if d is None:
        pytest.skip(bench.NO_PLAN_REASON)
    selected = request.config.stash.get(_SELECTED, None)
    state = bench.BenchState.load(d, selected, _plan(request.config))  # read once per session
    try:
        yield state
    finally:
        state.close()


# ---------------------------------------------------------------------------------------------
# What pytest saw: the runner registers an Outcomes object for its pytest session


@dataclass(frozen=True)
class CaseOutcome:
    """One case's outcome: passed | failed (the cell's own failure) | error (the harness's) |
    skipped | deselected; reason in one line."""

    cell: str
    outcome: str
    reason: str = ""


@dataclass
class Outcomes:
    """A pytest plugin object that records every case's outcome and any session-level
    failure (collection, usage, internal error, interrupt)."""

    cases: dict[str, CaseOutcome] = field(default_factory=dict)
    selected: list[str] = field(default_factory=list)
    session_errors: list[str] = field(default_factory=list)
    interrupted: bool = False
    exitstatus: int | None = None
    _cell_by_node: dict[str, str] = field(default_factory=dict)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """Remember which cell each selected item is."""
        for item in session.items:
            cell = _cell_of(item)
            if cell is not None:
                self._cell_by_node[item.nodeid] = cell
                self.selected.append(cell)

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        """Cells pytest deselected are recorded as such."""
        for item in items:
            cell = _cell_of(item)
            if cell is not None:
                self.cases[cell] = CaseOutcome(cell, "deselected", "deselected by pytest")

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        """A collection error is the harness's failure."""
        if report.failed:
            self.session_errors.append(f"collection error in {report.nodeid or 'session'}: "
                                       f"{_one_line(report.longreprtext)}")

    def pytest_internalerror(self, excrepr: Any) -> None:
        """pytest's own error is the harness's failure."""
        self.session_errors.append(f"pytest internal error: {_one_line(str(excrepr))}")

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        """Ctrl-C or SIGTERM: the run is interrupted (not failed)."""
        # pytest reports collection errors and -x stops as Session.Interrupted, a
        # KeyboardInterrupt subclass: only a real Ctrl-C / SIGTERM is an interrupted run.
        if not excinfo.errisinstance(pytest.Session.Interrupted):
            self.interrupted = True

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Each case's outcome: passed, failed (the cell's own), error (the harness's), skipped."""
        cell = self._cell_by_node.get(report.nodeid)
        if cell is None:
            if report.failed:  # a case that is not a cell's: the harness's failure
                self.session_errors.append(f"{report.nodeid}: {_crash(report)}")
            return
        prev = self.cases.get(cell)
        if report.skipped and report.when != "teardown":
            self.cases[cell] = CaseOutcome(cell, "skipped", _skip_reason(report))
        elif report.failed:
            own = dict(report.user_properties).get(CELL_FAILED_PROPERTY)
            if own is not None:
                self.cases[cell] = CaseOutcome(cell, "failed", str(own))
            elif prev is None or prev.outcome in ("passed", "deselected"):
                where = {"setup": "error in setup", "teardown": "error in teardown"}.get(
                    report.when, "error")
                self.cases[cell] = CaseOutcome(cell, "error", f"{where}: {_crash(report)}")
        elif report.when == "call" and report.passed:
            self.cases[cell] = CaseOutcome(cell, "passed")

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        """pytest's exit status."""
        self.exitstatus = int(exitstatus)


def _one_line(text: str, limit: int = 300) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    err = [ln for ln in lines if ln.startswith("E ")]
    out = " | ".join((err or lines[-1:])[:3]).removeprefix("E ").strip()
    return out[:limit] + ("…" if len(out) > limit else "")


def _crash(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    msg = getattr(crash, "message", None)
    return _one_line(msg) if isinstance(msg, str) and msg else _one_line(report.longreprtext)


def _skip_reason(report: pytest.TestReport) -> str:
    lr = report.longrepr
    if isinstance(lr, tuple) and len(lr) == 3:
        return str(lr[2]).removeprefix("Skipped: ")
    return _one_line(str(lr))
