"""Which dependency moved (pure): a module's version on each side from deps.csv, its package
init change with a ci95 from inittrace runs, a module one side lacks counted 0 there, and the
main package (`main` in inittrace) attributed to the app's own module."""

from __future__ import annotations

import pandas as pd
import pytest

from gostartbench.analysis.deps import ALL_MODULES, attributed, dependency_moves


def _frames() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    cells = pd.DataFrame({"cell": ["svc_base", "svc_head"], "app": ["svc", "svc"],
                          "toolchain": ["1.27.3"] * 2, "rev": ["base", "head"],
                          "build_id": ["b1", "b2"]})
    deps_rows = []
    for bid, grpc, extra in (("b1", "v1.83.2", None), ("b2", "v1.84.0", "v0.3.0")):
        deps_rows += [
            {"build_id": bid, "package": "example.test/svc", "module": "example.test/svc",
             "version": "", "requirement": "example.test/svc", "chain": "example.test/svc"},
            {"build_id": bid, "package": "google.golang.org/grpc",
             "module": "google.golang.org/grpc", "version": grpc,
             "requirement": "google.golang.org/grpc",
             "chain": "example.test/svc > google.golang.org/grpc"},
            {"build_id": bid, "package": "fmt", "module": "std", "version": "",
             "requirement": "example.test/svc", "chain": "example.test/svc > fmt"},
        ]
        if extra:
            deps_rows.append({"build_id": bid, "package": "example.org/newdep",
                              "module": "example.org/newdep", "version": extra,
                              "requirement": "google.golang.org/grpc",
                              "chain": "example.test/svc > google.golang.org/grpc > "
                                       "example.org/newdep"})
    init = []
    for run in range(8):
        jitter = 0.001 * (run % 3)
        for cell, grpc_ms, new_ms in (("svc_base", 0.40, None), ("svc_head", 0.80, 0.10)):
            init += [{"cell": cell, "run": run, "package": "google.golang.org/grpc",
                      "clock_ms": grpc_ms + jitter},
                     {"cell": cell, "run": run, "package": "fmt", "clock_ms": 0.01},
                     {"cell": cell, "run": run, "package": "main", "clock_ms": 0.05 + jitter}]
            if new_ms:
                init.append({"cell": cell, "run": run, "package": "example.org/newdep",
                             "clock_ms": new_ms})
    return cells, pd.DataFrame(deps_rows), pd.DataFrame(init)


def test_dependency_moves_names_versions_and_init_changes() -> None:
    cells, deps, init = _frames()
    att = attributed(init, cells, deps)
    assert set(att[att["package"] != "fmt"]["module"]) == {
        "google.golang.org/grpc", "example.test/svc", "example.org/newdep"}  # main attributed
    moves = dependency_moves(att, cells, deps, ["rev"], "rev", "base", "head", b=400)
    by = moves.set_index("module")
    assert moves["module"].iloc[0] == ALL_MODULES
    assert by.loc[ALL_MODULES, "delta_ms"] == pytest.approx(0.50, abs=1e-6)
    grpc = by.loc["google.golang.org/grpc"]
    assert (grpc["base_version"], grpc["head_version"], grpc["change"]) == \
        ("v1.83.2", "v1.84.0", "changed")
    assert grpc["direct"] and grpc["delta_ms"] == pytest.approx(0.40, abs=1e-6)
    assert grpc["delta_ci95_low_ms"] > 0 and grpc["ci_rule"] == "runs"
    new = by.loc["example.org/newdep"]
    assert new["change"] == "added" and not new["direct"]
    assert new["delta_ms"] == pytest.approx(0.10)  # absent in base: counted 0 there
    assert by.loc["std", "change"] == "same"
    assert by.loc["example.test/svc", "own"] and not by.loc["example.test/svc", "direct"]
    # costliest change first after the whole
    assert list(moves["module"][1:3]) == ["google.golang.org/grpc", "example.org/newdep"]
