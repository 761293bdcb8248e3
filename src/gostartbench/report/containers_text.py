"""The report's "Where it runs": per image, the program's start inside it and the container's
start to exit or ready; the engine's floor; each prewarm against cold and warm; the article's
chapter-4 figures judged on this host. Tables from analysis/containers.py, words here."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from gostartbench.analysis import Analysis
from gostartbench.analysis.containers import (
    ARTICLE_GLIBC,
    ARTICLE_MUSL,
    ARTICLE_PREWARM_CUT,
    GLIBC_IMAGE,
    MUSL_IMAGE,
    glibc_vs_musl,
    image_table,
    prewarm_table,
)
from gostartbench.analysis.summary import choose_b

TEXT = ("Two times per image: the program's own start inside it (its loader, libc and files on "
        "overlayfs; the spawn timer runs in a container of the image, so the engine's start is "
        "not in it), as a ratio to the same binary on the host, every app pooled; and the "
        "container's start, the engine's `run --rm` to exit or ready (median P50 of the "
        "image's warm cells) — what a pod's start pays beyond the image pull.")
IMAGE_HEAD = ["image", "program inside, warm [ci95]", "program inside, cold [ci95]",
              "container to exit/ready, warm", "image size", "cells that cannot run in it"]
PREWARM_HEAD = ["where", "prewarm", "against", "pairs", "P50 ratio [ci95]",
                "the article's \"60%+\""]
LIBC_HEAD = ["app", "cache", f"cgo=1, glibc, in {GLIBC_IMAGE}",
             f"cgo=1, musl-static, in {MUSL_IMAGE}", "ratio [ci95]"]


@dataclass(frozen=True)
class Section:
    """What the report prints: lines of text, and (heading, header, rows) tables."""

    lines: list[str]
    tables: list[tuple[str, list[str], list[list[str]]]]


def _ratio(q: float, lo: float, hi: float) -> str:
    if not math.isfinite(q):
        return "—"
    ci = f" [{lo - 1:+.1%}, {hi - 1:+.1%}]" if math.isfinite(lo) and math.isfinite(hi) else \
        " [no interval]"
    return f"{q - 1:+.1%}{ci}"


def section(a: Analysis) -> Section | None:
    """The section, or None for a run without container or prewarm cells."""
    s = a.summary
    if s.empty:
        return None
    imgs = image_table(s, a.effects, a.cells, a.run)
    st = a.data.settings
    b = choose_b(len(a.data.timed), st.bootstrap)
    pre = prewarm_table(s, a.samples, a.axes, b=b, seed=st.seed, min_effect=a.min_effect)
    libc = glibc_vs_musl(s, a.samples, b=b, seed=st.seed, min_effect=a.min_effect)
    if imgs.empty and pre.empty:
        return None
    lines: list[str] = []
    tables: list[tuple[str, list[str], list[list[str]]]] = []
    floor = ((a.run.get("containers") or {}).get("floor") or {})
    if floor.get("engine_run_p50_ms"):
        lines.append(f"The engine's floor: {floor['engine']}'s `run --rm` of a static no-op in "
                     f"scratch took {floor['engine_run_p50_ms']:.1f} ms (P50 of "
                     f"{floor['runs']}); the no-op itself, inside that image, "
                     f"{floor['noop_inside_p50_ms']:.2f} ms.")
    if not imgs.empty:
        lines.insert(0, TEXT)
        tables.append(("Per image", IMAGE_HEAD, [_image_row(r) for r in
                                                 imgs.to_dict("records")]))
    if not libc.empty:
        rows = [[str(r["app"]), str(r.get("cache", "")), f"{r['glibc_p50_ms']:.2f} ms",
                 f"{r['musl_p50_ms']:.2f} ms", _ratio(r["ratio"], r["ci95_low"],
                                                      r["ci95_high"])]
                for r in libc.to_dict("records")]
        tables.append(("glibc image against musl image", LIBC_HEAD, rows))
        warm = libc[libc.get("cache", pd.Series(["warm"] * len(libc))) == "warm"]
        if len(warm):
            q = float(pd.Series(warm["ratio"]).median())
            lines.append(f"The article timed a glibc program in {ARTICLE_GLIBC[0]} at "
                         f"{ARTICLE_GLIBC[1]} ms against a static musl one in "
                         f"{ARTICLE_MUSL[0]} at {ARTICLE_MUSL[1]} ms "
                         f"(×{ARTICLE_GLIBC[1] / ARTICLE_MUSL[1]:.1f}); here, the same Go "
                         f"program built with cgo=1 against each libc (glibc: dynamic where it "
                         f"imports net) and run in the local images stands at ×{q:.2f} warm "
                         "(median over apps; per app below).")
    if not pre.empty:
        rows = [[str(r["container"]), str(r["prewarm"]), str(r["against"]), str(r["pairs"]),
                 _ratio(r["ratio"], r["ci95_low"], r["ci95_high"])
                 + ("" if r["significant"] else " n.s."), str(r["article"] or "")]
                for r in pre.to_dict("records")]
        tables.append(("Prewarming", PREWARM_HEAD, rows))
        cold = pre[pre["against"] == "cold"]
        for how, g in cold.groupby("prewarm"):
            verdicts = sorted(set(g["article"]))
            cut = 1 - float(g["ratio"].median())
            lines.append(f"{how} cuts a cold start by {cut:.0%} (median over where it runs); "
                         f"the article's \"{ARTICLE_PREWARM_CUT:.0%}+\": "
                         f"{', '.join(verdicts)} (it holds where the cut is significant "
                         "and its whole ci95 is past it).")
    return Section(lines, tables)


def _image_row(r: dict[str, Any]) -> list[str]:
    size = r.get("image_size_bytes")
    eng = r.get("engine_warm_p50_ms")
    return [str(r["container"]),
            _ratio(r["direct_warm_ratio"], r["direct_warm_low"], r["direct_warm_high"]),
            _ratio(r["direct_cold_ratio"], r["direct_cold_low"], r["direct_cold_high"]),
            f"{eng:.1f} ms" if isinstance(eng, float) and math.isfinite(eng) else "—",
            f"{float(size) / 1e6:.1f} MB" if size == size and size else "—",
            str(r["cells_failed"])]
