"""Expansion (pure): the cells of a matrix in a stable order, with readable, filename-safe ids."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Mapping, Sequence
from typing import Any

from gostartbench.matrix.axes import (
    BUILD_DEFAULTS,
    RUN_AXES,
    RUN_DEFAULTS,
    RUNENV_PREFIX,
    pointless,
    token,
)
from gostartbench.matrix.model import Cell


def rule_matches(cell: Cell, rule: Mapping[str, tuple[str, ...]]) -> bool:
    vals = {"app": cell.app, "toolchain": cell.toolchain, **cell.axes}
    return all(vals.get(k) in v for k, v in rule.items())


def cell_id(app: str, toolchain: str, varied: Sequence[tuple[str, str]]) -> str:
    """A cell's id: app, toolchain and a token per varied axis value."""
    parts = [app, "go" + toolchain if toolchain != "system" else "gosystem"]
    parts += [token(a, v) for a, v in varied]
    return "_".join(parts)


def expand(*, apps: Sequence[str], toolchains: Sequence[str],
           build_axes: Sequence[tuple[str, Sequence[str]]],
           run_axes: Sequence[tuple[str, Sequence[str]]],
           exclude: Sequence[Mapping[str, tuple[str, ...]]] = (),
           include: Sequence[Mapping[str, str]] = ()) -> tuple[list[Cell], list[int]]:
    """The cells of a matrix, in a stable order: apps × toolchains × build axes × run axes
    (file order, first value first), minus excluded, plus included. Returns the cells and how
    many cells each exclude rule removed."""
    bnames = [a for a, _ in build_axes]
    rnames = [a for a, _ in run_axes]
    extra_build: list[str] = []
    extra_run: list[str] = []
    for inc in include:  # axes named only by include rules become columns too
        for k in inc:
            if k in ("app", "toolchain"):
                continue
            is_run = k in RUN_AXES or k.startswith(RUNENV_PREFIX)
            target = extra_run if is_run else extra_build
            if k not in bnames and k not in rnames and k not in target:
                target.append(k)

    def make(app: str, tc: str, b: Mapping[str, str], r: Mapping[str, str]) -> Cell:
        build_full = {**BUILD_DEFAULTS, **{k: b.get(k, BUILD_DEFAULTS.get(k, ""))
                                          for k in [*bnames, *extra_build]}}
        run_full = {**RUN_DEFAULTS, **{k: r.get(k, RUN_DEFAULTS.get(k, ""))
                                      for k in [*rnames, *extra_run]}}
        varied_b = [(k, build_full[k]) for k in [*bnames, *extra_build]]
        varied_r = [(k, run_full[k]) for k in [*rnames, *extra_run]]
        bkeys = [*BUILD_DEFAULTS, *sorted(k for k in build_full if k not in BUILD_DEFAULTS)]
        rkeys = [*RUN_DEFAULTS, *sorted(k for k in run_full if k not in RUN_DEFAULTS)]
        return Cell(
            id=cell_id(app, tc, [*varied_b, *varied_r]), app=app, toolchain=tc,
            build=tuple((k, build_full[k]) for k in bkeys),
            run=tuple((k, run_full[k]) for k in rkeys),
            build_id=cell_id(app, tc, varied_b),
        )

    hits = [0] * len(exclude)
    cells: list[Cell] = []
    for app, tc in itertools.product(apps, toolchains):
        for bvals in itertools.product(*[v for _, v in build_axes]):
            for rvals in itertools.product(*[v for _, v in run_axes]):
                c = make(app, tc, dict(zip(bnames, bvals, strict=True)),
                         dict(zip(rnames, rvals, strict=True)))
                if pointless(c.run_values):
                    continue
                hit = [i for i, rule in enumerate(exclude) if rule_matches(c, rule)]
                for i in hit:
                    hits[i] += 1
                if not hit:
                    cells.append(c)
    for inc in include:
        for app in [inc["app"]] if "app" in inc else apps:
            for tc in [inc["toolchain"]] if "toolchain" in inc else toolchains:
                b = {k: v for k, v in inc.items() if k not in ("app", "toolchain")}
                bpart = {k: b.get(k, dict(build_axes).get(k, [BUILD_DEFAULTS.get(k, "")])[0])
                         for k in [*bnames, *extra_build]}
                rpart = {k: b.get(k, dict(run_axes).get(k, [RUN_DEFAULTS.get(k, "")])[0])
                         for k in [*rnames, *extra_run]}
                cells.append(make(app, tc, bpart, rpart))
    return _dedupe(cells), hits


def _dedupe(cells: list[Cell]) -> list[Cell]:
    """Drop repeated cells (an include equal to a product cell); make ids unique where two
    different value sets sanitise to the same text."""
    seen: dict[tuple[Any, ...], Cell] = {}
    for c in cells:
        key = (c.app, c.toolchain, c.build, c.run)
        seen.setdefault(key, c)
    out = list(seen.values())
    by_id: dict[str, list[Cell]] = {}
    for c in out:
        by_id.setdefault(c.id, []).append(c)
    fixed: list[Cell] = []
    for c in out:
        if len(by_id[c.id]) > 1:
            h = hashlib.sha256(repr((c.build, c.run)).encode()).hexdigest()[:6]
            hb = hashlib.sha256(repr(c.build).encode()).hexdigest()[:6]
            c = Cell(id=f"{c.id}-{h}", app=c.app, toolchain=c.toolchain, build=c.build,
                     run=c.run, build_id=f"{c.build_id}-{hb}")
        fixed.append(c)
    return fixed
