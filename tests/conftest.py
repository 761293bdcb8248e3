"""Shared fixtures: a build cache shared by the whole test session, tool requirements that
skip where a tool is missing (and fail under CI=true), and small real matrices."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import NoReturn, Protocol

import pytest

from gostartbench.host.tools import HOW_TO_GET, find_tool

REPO = Path(__file__).resolve().parents[1]
GOAPPS = REPO / "goapps"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
TOOLCHAIN = "1.27.3"

os.environ.setdefault("GOSTARTBENCH_CACHE", str(REPO / ".gsb-cache"))


def skip_or_fail(needed: str, why: str) -> NoReturn:
    """The one rule for a test whose requirement is missing here: skip with the reason; under
    CI=true fail instead, so CI never passes by skipping."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{needed} is required under CI=true: {why}")
    pytest.skip(why)


def require(tool: str) -> None:
    """Skip where `tool` is missing, with how to get it (fail under CI=true)."""
    if find_tool(tool).found:  # PATH and this environment's own tools (hyperfine's wheel)
        return
    skip_or_fail(tool, f"{tool} not installed: {HOW_TO_GET.get(tool, 'install it')}")


class WriteMatrix(Protocol):
    """The write_matrix fixture: writes a matrix body (with @GOAPPS@ and @FIXTURES@ filled in)
    into the test's folder and returns its path."""

    def __call__(self, body: str, name: str = "matrix.yaml") -> Path: ...


@pytest.fixture
def write_matrix(tmp_path: Path) -> WriteMatrix:
    """A writer of matrix files in the test's folder."""
    def write(body: str, name: str = "matrix.yaml") -> Path:
        text = textwrap.dedent(body).replace("@GOAPPS@", str(GOAPPS)).replace(
            "@FIXTURES@", str(FIXTURES))
        p = tmp_path / name
        p.write_text(text)
        return p

    return write


def gsb(*args: str, env: dict[str, str] | None = None, timeout: float = 900
        ) -> subprocess.CompletedProcess[str]:
    """`python -m gostartbench ARGS` as a user runs it: its exit code and output."""
    return subprocess.run([sys.executable, "-m", "gostartbench", *args], capture_output=True,
                          text=True, env=env or dict(os.environ), timeout=timeout, check=False)
