"""carryover.csv: the order effect, from samples with a known one (a fake machine: statistics
only; the real thing is in tests/report/test_gate_one_run.py)."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd

from gostartbench.analysis.carryover import ALL_CELLS, carryover, largest
from gostartbench.run.schedule import balanced_order

MS = 1_000_000


def _samples(effect: float, seed: int = 0) -> pd.DataFrame:
    """Two cells in a balanced order over ~40 s; a start right after itself takes `effect` ×
    its time after the other cell."""
    rng = np.random.default_rng(seed)
    order = balanced_order(["a", "b"], 2000, random.Random(seed))
    rows, t, prev = [], 1_000 * 10**9, ""
    n = {"a": 0, "b": 0}
    for c in order:
        wall = (2 * MS if c == "a" else 3 * MS) * (effect if prev == c else 1.0)
        wall *= float(rng.lognormal(0, 0.05))
        t += int(wall) + 8 * MS
        rows.append({"cell": c, "round": n[c], "timer": "spawn", "ok": True,
                     "wall_ns": int(wall), "done_unix_ns": t, "epoch": t // (2 * 10**9),
                     "after_cell": prev})
        n[c] += 1
        prev = c
    rows.append({**rows[-1], "timer": "hyperfine", "after_cell": "a", "cell": "a"})
    return pd.DataFrame(rows)


def test_a_known_order_effect_is_measured_with_its_interval() -> None:
    t = carryover(_samples(0.95), bootstrap=500)
    by = t.set_index("cell")
    for c in ("a", "b"):
        r = by.loc[c]
        assert r["timer"] == "spawn"
        assert 0.45 < r["share_after_self"] < 0.55  # balanced: about half, with two cells
        assert r["ci95_low"] <= 0.95 <= r["ci95_high"], r
        assert r["ci95_high"] < 1  # resolved
    assert by.loc[ALL_CELLS, "ci95_low"] <= 0.95 <= by.loc[ALL_CELLS, "ci95_high"]
    big = largest(t)
    assert big is not None and big["cell"] in ("a", "b")


def test_no_order_effect_is_not_called_one() -> None:
    t = carryover(_samples(1.0, seed=1), bootstrap=500)
    a = t.set_index("cell").loc["a"]
    assert a["ci95_low"] <= 1 <= a["ci95_high"]


def test_too_few_starts_on_a_side_give_no_interval_and_say_why() -> None:
    s = _samples(0.95)
    s = s[(s["cell"] == "a") & ~((s["after_cell"] == "a") & (s["round"] > 12))]
    t = carryover(s, bootstrap=200)
    a = t.set_index("cell").loc["a"]
    assert np.isnan(a["ci95_low"]) and "fewer than" in a["why"]
    assert largest(t) is None


def test_samples_without_after_cell_have_no_table() -> None:
    assert carryover(_samples(0.95).drop(columns="after_cell"), bootstrap=200).empty
