"""Shared fixtures: a build cache shared by the whole test session, tool requirements that
skip where a tool is missing (and fail under CI=true), and small real matrices."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Protocol

import pytest

from gostartbench.host.tools import HOW_TO_GET, find_tool

REPO = Path(__file__).resolve().parents[1]
GOAPPS = REPO / "goapps"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
TOOLCHAIN = "1.27.3"

os.environ.setdefault("GOSTARTBENCH_CACHE", str(REPO / ".gsb-cache"))


def require(tool: str) -> None:
    """Skip where `tool` is missing, with how to get it; under CI=true fail instead, so CI
    never passes by skipping."""
    if find_tool(tool).found:  # PATH and this environment's own tools (hyperfine's wheel)
        return
    how = HOW_TO_GET.get(tool, "install it")
    if os.environ.get("CI") == "true":
        pytest.fail(f"{tool} is required under CI=true but missing: {how}")
    pytest.skip(f"{tool} not installed: {how}")


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
