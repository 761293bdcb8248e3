"""summary.csv and effects.csv from raw samples (pure)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from gostartbench.analysis import summary as stats
from gostartbench.analysis.effects import effects, pareto_front


def _samples(spec: dict[str, list[float]]) -> pd.DataFrame:
    rows = []
    for cell, walls in spec.items():
        for i, w in enumerate(walls):
            rows.append({"cell": cell, "round": i, "cache": "warm", "timer": "spawn",
                         "wall_ns": int(w * 1e6), "user_ns": 0, "sys_ns": 0,
                         "maxrss_bytes": 2_000_000, "minflt": 100, "majflt": 0,
                         "exit_code": 0, "signal": 0, "ok": True, "reason": ""})
    return pd.DataFrame(rows)



def _cells(names: list[str], **cols: list[Any]) -> pd.DataFrame:
    d = {"cell": names, "app": ["a"] * len(names), "toolchain": ["1.27.3"] * len(names),
         "size_bytes": [1_000_000] * len(names)}
    d.update(cols)
    return pd.DataFrame(d)



def test_summary_equals_pandas_own() -> None:
    rng = np.random.default_rng(1)
    walls = {"base": list(rng.normal(2.0, 0.1, 200)), "b": list(rng.normal(2.4, 0.1, 200))}
    s = _samples(walls)
    summ = stats.summarise(s, _cells(["base", "b"]), {"base": "base", "b": "base"},
                           bootstrap=300)
    for cell in walls:
        ms = s[s["cell"] == cell]["wall_ns"] / 1e6
        row = summ[summ["cell"] == cell].iloc[0]
        assert row["p50_ms"] == pytest.approx(ms.median(), rel=1e-12)
        assert row["stddev_ms"] == pytest.approx(ms.std(), rel=1e-12)
        assert row["n"] == 200
        assert row["ci95_low_ms"] <= row["p50_ms"] <= row["ci95_high_ms"]
    b = summ[summ["cell"] == "b"].iloc[0]
    assert b["ratio"] == pytest.approx(np.median(walls["b"]) / np.median(walls["base"]))
    assert b["significant"] and b["p_adj"] < 1e-10 and b["paired"]



def test_an_rss_on_the_helpers_floor_is_flagged() -> None:
    s = _samples({"base": [2.0] * 20, "small": [2.0] * 20})
    s["rss_floor_bytes"] = 700_000
    s.loc[s["cell"] == "small", "maxrss_bytes"] = 700_000  # the program's own peak is hidden
    summ = stats.summarise(s, _cells(["base", "small"]), {"base": "base", "small": "base"},
                           bootstrap=100).set_index("cell")
    assert summ.loc["small", "rss_floor_p50_bytes"] == 700_000
    assert "spawn helper's floor" in summ.loc["small", "warnings"]
    assert "floor" not in summ.loc["base", "warnings"]



def test_paired_ratio_cancels_common_drift() -> None:
    drift = np.linspace(1.0, 3.0, 200)  # the machine slows down 3× over the run
    base = 2.0 * drift
    faster = 1.9 * drift  # exactly 5% faster in every round
    summ = stats.summarise(_samples({"base": list(base), "f": list(faster)}),
                           _cells(["base", "f"]), {"base": "base", "f": "base"}, bootstrap=300)
    f = summ[summ["cell"] == "f"].iloc[0]
    assert f["ratio"] == pytest.approx(0.95)
    assert f["ratio_ci95_high"] - f["ratio_ci95_low"] < 1e-5  # paired: no spread (ns rounding)
    # …while the Mann–Whitney test on the marginals cannot see it:
    assert not f["significant"]



def test_min_effect_guards_tiny_differences() -> None:
    rng = np.random.default_rng(3)
    base = rng.normal(2.0, 0.01, 2000)
    walls = {"base": list(base), "t": list(base * 1.005 + rng.normal(0, 0.0001, 2000))}
    summ = stats.summarise(_samples(walls), _cells(["base", "t"]), {"t": "base"},
                           bootstrap=200, min_effect=0.01)
    t = summ[summ["cell"] == "t"].iloc[0]
    assert t["p_adj"] < 0.05 and not t["significant"]



def test_warnings_are_a_column() -> None:
    walls = {"base": [1.0, 1.5, 1.0, 3.0, 1.0], "x": [1.0] * 50}
    summ = stats.summarise(_samples(walls), _cells(["base", "x"]), {}, bootstrap=200)
    base = summ[summ["cell"] == "base"].iloc[0]
    assert "few samples (n=5)" in base["warnings"] and "high cv" in base["warnings"]
    assert "no baseline cell" in base["warnings"]



def test_pareto_front_known() -> None:
    x = [1.0, 2.0, 3.0, 2.5, 1.0]
    y = [5.0, 3.0, 1.0, 3.5, 6.0]
    assert list(pareto_front(x, y)) == [True, True, True, False, False]



def test_effects_geometric_mean_over_pairs() -> None:
    walls = {"a_none": [2.0] * 40, "a_sw": [1.8] * 40, "b_none": [4.0] * 40, "b_sw": [3.2] * 40}
    cells = pd.DataFrame({
        "cell": list(walls), "app": ["a", "a", "b", "b"], "toolchain": ["1.27.3"] * 4,
        "ldflags": ["", "-s -w", "", "-s -w"], "size_bytes": [100, 70, 200, 130],
    })
    bmap = {"a_none": "a_none", "a_sw": "a_none", "b_none": "b_none", "b_sw": "b_none"}
    s = _samples(walls)
    summ = stats.summarise(s, cells, bmap, bootstrap=200)
    eff = effects(summ, s, ["ldflags"], {"ldflags": ""}, b=500)
    assert sorted(eff["app"]) == ["a", "all", "b"]  # pooled, and each app's own
    per_app = eff.set_index("app")
    assert per_app.loc["a", "ratio"] == pytest.approx(0.9)
    assert per_app.loc["b", "ratio"] == pytest.approx(0.8)
    assert per_app.loc["a", "pairs"] == 1 and per_app.loc["b", "pairs"] == 1
    r = per_app.loc["all"]
    assert r["value"] == "-s -w" and r["pairs"] == 2
    assert r["ratio"] == pytest.approx(math.sqrt(0.9 * 0.8))
    assert r["size_ratio"] == pytest.approx(math.sqrt(0.7 * 0.65))
    assert r["min_pair_ratio"] == pytest.approx(0.8) and r["max_pair_ratio"] == pytest.approx(0.9)
    assert r["significant"]



def test_glance_table_from_known_effects() -> None:
    from gostartbench.report.text import glance_rows

    eff = pd.DataFrame([
        {"axis": "strip", "value": "unneeded", "baseline_value": "none", "timer": "spawn",
         "cache": "warm", "ratio": 1.001, "ci95_low": 0.998, "ci95_high": 1.004,
         "size_ratio": 0.64, "rss_ratio": 1.0, "significant": False},
        {"axis": "strip", "value": "unneeded", "baseline_value": "none", "timer": "spawn",
         "cache": "cold", "ratio": 0.8, "ci95_low": 0.79, "ci95_high": 0.81,
         "size_ratio": 0.64, "rss_ratio": 1.0, "significant": True},
    ])
    (row,) = glance_rows(eff)
    assert row[0] == "strip: none → unneeded"
    assert row[1].endswith("n.s.") and row[2] == "-20.0% [-21.0, -19.0]"
    assert row[4] == "-36%" and row[5] == "+0%"
