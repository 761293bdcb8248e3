"""Where it runs (pure): what an image does to a program's start, what the engine adds, whether
a prewarm makes a cold start warm, and the article's glibc-image-against-musl-image question.

Every interval here is the effects' one (analysis/effects.py: geometric mean over pairs of cells
that differ only in the axis, each cell's P50 resampled by blocks of time) or, for the glibc
against musl pair, the ratio interval of two cells of the same run (gostartbench.stats.intervals,
both resampled by the same blocks).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from gostartbench.analysis.effects import ALL_APPS, effects
from gostartbench.analysis.summary import timed_by_cell
from gostartbench.matrix.axes import HOST, PREWARM
from gostartbench.stats import intervals
from gostartbench.stats.resample import rng as make_rng
from gostartbench.stats.significance import DEFAULT_MIN_EFFECT, significant

ENGINE_LAUNCH, DIRECT = "engine", "direct"
# the article's chapter 4, and the images here that stand for its two
ARTICLE_GLIBC = ("ubuntu:22.04", 18.7)  # a glibc-dynamic program, ms
ARTICLE_MUSL = ("alpine:3.20", 3.2)  # a static musl one, ms
ARTICLE_PREWARM_CUT = 0.60  # "60%+" of a cold start
GLIBC_IMAGE, MUSL_IMAGE = "gostartbench/debian:bookworm-minbase", "gostartbench/musl"


def _direct(summary: pd.DataFrame) -> pd.DataFrame:
    return summary[summary["launch"].astype(str) == DIRECT] if "launch" in summary else summary


def image_table(summary: pd.DataFrame, eff: pd.DataFrame, cells: pd.DataFrame,
                run: Mapping[str, Any]) -> pd.DataFrame:
    """One row per image: the program's start inside it against the host (warm and cold, every
    app pooled, ci95), the container's start (the engine's run, median P50 of its warm
    cells), the image's size, cells that could not run in it."""
    if "container" not in summary or summary["container"].astype(str).eq(HOST).all():
        return pd.DataFrame()
    e = eff[(eff.get("axis") == "container") & (eff["app"] == ALL_APPS)] if len(eff) else eff
    sizes = (run.get("containers") or {}).get("images") or {}
    rows = []
    for img in [v for v in dict.fromkeys(summary["container"].astype(str)) if v != HOST]:
        r: dict[str, Any] = {"container": img}
        for cache in ("warm", "cold"):
            m = e[(e["value"].astype(str) == img) & (e["cache"] == cache)] if len(e) else e
            row = m.iloc[0] if len(m) else None
            r[f"direct_{cache}_ratio"] = float(row["ratio"]) if row is not None else np.nan
            r[f"direct_{cache}_low"] = float(row["ci95_low"]) if row is not None else np.nan
            r[f"direct_{cache}_high"] = float(row["ci95_high"]) if row is not None else np.nan
        sel = (summary["container"].astype(str) == img)
        sel &= summary["launch"].astype(str) == ENGINE_LAUNCH if "launch" in summary else False
        if "cache" in summary:
            sel &= summary["cache"].astype(str) == "warm"
        r["engine_warm_p50_ms"] = float(summary.loc[sel, "p50_ms"].median()) if sel.any() \
            else np.nan
        r["image_size_bytes"] = (sizes.get(img) or {}).get("size_bytes", np.nan)
        r["cells_failed"] = int(((cells["container"].astype(str) == img)
                                 & (cells["status"] != "ok")).sum()) \
            if "container" in cells else 0
        rows.append(r)
    return pd.DataFrame(rows)


def prewarm_table(summary: pd.DataFrame, samples: pd.DataFrame, axes: Sequence[str],
                  *, b: int, seed: int = 0, min_effect: float = DEFAULT_MIN_EFFECT
                  ) -> pd.DataFrame:
    """Each prewarm against cold and against warm, on the host and in each image (direct
    launch; every app pooled): ratio of P50s with ci95, significance, and whether the article's
    "60%+ of a cold start" holds (its interval wholly past it), fails (wholly short) or is
    unsettled."""
    if "cache" not in summary or not summary["cache"].astype(str).isin(list(PREWARM)).any():
        return pd.DataFrame()
    s = _direct(summary)
    places = list(dict.fromkeys(s["container"].astype(str))) if "container" in s else [HOST]
    rows = []
    for where in places:
        sub = s[s["container"].astype(str) == where] if "container" in s else s
        values = {"cache": list(dict.fromkeys(sub["cache"].astype(str)))}
        for ref in ("cold", "warm"):
            if ref not in values["cache"]:
                continue
            e = effects(sub, samples, list(axes), {"cache": ref}, b=b, seed=seed,
                        min_effect=min_effect, axis_values=values, only=["cache"])
            e = e[(e["app"] == ALL_APPS) & e["value"].astype(str).isin(list(PREWARM))]
            for r in e.to_dict("records"):
                row = {"container": where, "prewarm": r["value"], "against": ref,
                       "pairs": r["pairs"], "ratio": r["ratio"], "ci95_low": r["ci95_low"],
                       "ci95_high": r["ci95_high"], "significant": bool(r["significant"]),
                       "article": ""}
                if ref == "cold":
                    cut = 1 - ARTICLE_PREWARM_CUT
                    row["article"] = (
                        "holds" if r["ci95_high"] <= cut and r["significant"] else
                        "does not hold" if r["ci95_low"] > cut else "unsettled")
                rows.append(row)
    return pd.DataFrame(rows)


def glibc_vs_musl(summary: pd.DataFrame, samples: pd.DataFrame, *, seed: int = 0,
                  b: int, min_effect: float = DEFAULT_MIN_EFFECT) -> pd.DataFrame:
    """The article's ubuntu-against-alpine question, here: per app and cache, a cgo=1 program
    linked against glibc (dynamic) in the Debian image against the same program linked
    statically against musl in the musl image (direct launch): both P50s and their ratio."""
    need = {"container", "libc", "cgo"}
    if not need <= set(summary.columns):
        return pd.DataFrame()
    s = _direct(summary)
    s = s[s["cgo"].astype(str) == "1"]
    g = s[(s["libc"].astype(str) == "glibc") & (s["container"].astype(str) == GLIBC_IMAGE)]
    m = s[(s["libc"].astype(str) == "musl-static") & (s["container"].astype(str) == MUSL_IMAGE)]
    keys = ["app", *(["cache"] if "cache" in s else []), "timer"]
    both = g.merge(m, on=keys, suffixes=("_glibc", "_musl"))
    if both.empty:
        return pd.DataFrame()
    walls = timed_by_cell(samples)
    rng = make_rng(seed)
    rows = []
    for r in both.to_dict("records"):
        a = walls.get((r["cell_glibc"], r["timer"]))
        c = walls.get((r["cell_musl"], r["timer"]))
        if a is None or c is None:
            continue
        iv = intervals.ratio_interval(a[1], a[0], c[1], c[0], b, rng)
        rows.append({**{k: r[k] for k in keys}, "glibc_p50_ms": r["p50_ms_glibc"],
                     "musl_p50_ms": r["p50_ms_musl"], "ratio": iv.estimate,
                     "ci95_low": iv.low, "ci95_high": iv.high,
                     "significant": bool(significant(iv.estimate, iv.low, iv.high, min_effect))})
    return pd.DataFrame(rows)
