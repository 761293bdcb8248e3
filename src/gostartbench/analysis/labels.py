"""Readable labels: a cell is what differs from its app's baseline ("netcli · pie, cgo=1 ·
cold"); ids stay in the CSV files, labels go wherever a person reads."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from gostartbench.matrix.axes import label as axis_label

RUN_CONDITION = "cache"  # shown last, on its own


def cell_label(row: Mapping[str, object], axes: Sequence[str], baseline: Mapping[str, str],
               *, app: bool = True) -> str:
    """'netcli · pie, cgo=1 · cold': the app, the axis values that differ from the baseline's
    (or 'baseline'), then the cache state where the matrix varies it."""
    diffs = [axis_label(a, str(row.get(a, ""))) for a in axes
             if a != RUN_CONDITION and a in baseline and str(row.get(a, "")) != baseline[a]]
    diffs += [axis_label(a, str(row.get(a, ""))) for a in axes
              if a != RUN_CONDITION and a not in baseline]
    parts = [str(row.get("app", ""))] if app else []
    parts.append(", ".join(diffs) if diffs else "baseline")
    if RUN_CONDITION in axes:
        parts.append(str(row.get(RUN_CONDITION, "")))
    return " · ".join(p for p in parts if p)


def change_label(axis: str, base: str, value: str) -> str:
    """'buildmode: exe → pie', 'ldflags: ∅ → -s -w', 'GOGC: 100 → off'."""
    name = axis.removeprefix("runenv.").removeprefix("env.")
    return f"{name}: {base or '∅'} → {value or '∅'}"
