"""matrix.yaml v1: load (safely, with line numbers), validate against the axis table, expand.

Pure: reads the matrix file and checks that app folders exist; runs nothing. Every mistake is
an InputError naming file, line and key.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gostartbench.errors import InputError, allowed, did_you_mean
from gostartbench.host.toolchains import KNOWN_GO_BIN
from gostartbench.matrix.apps import ENV_NAME, parse_app
from gostartbench.matrix.axes import (
    BUILD_AXES,
    DEFAULT_TOOLCHAIN,
    ENV_PREFIX,
    REV,
    RUN_AXES,
    RUNENV_PREFIX,
)
from gostartbench.matrix.expand import expand, rule_matches
from gostartbench.matrix.model import Cell, Matrix, Measure
from gostartbench.matrix.yamldoc import Doc, as_str, expect_mapping, typename, values_of

RULE_KEYS_EXTRA = ("app", "toolchain")

TOP_KEYS = ("version", "toolchains", "apps", "axes", "run", "exclude", "include", "baseline",
            "measure")
MEASURE_KEYS = ("timer", "runs", "precision", "max_runs", "budget_s", "warmup", "order", "cpus",
                "timeout_s", "seed", "min_effect", "phases", "phase_runs", "profile",
                "profile_runs", "profile_hz",
                "inittrace", "inittrace_runs", "bootstrap", "calibration", "engine", "evict")
ENGINES = ("auto", "podman", "docker")
EVICTIONS = ("file", "drop-caches")
TIMERS = ("spawn", "hyperfine", "both")
CALIBRATIONS = ("floor", "full", "off")
ORDERS = ("interleaved", "sequential")
_GOARM64 = re.compile(r"^v(8\.[0-9]|9\.[0-5])(,(lse|crypto))*$")
_VERSION = re.compile(r"^\d+\.\d+(\.\d+){0,2}$")
# Bounds on input, checked before anything is expanded: hostile or mistaken input fails in one
# line, fast, instead of hanging.
MAX_CELLS_DEFAULT = 10_000  # override: --max-cells
MAX_FILE_BYTES = 4 << 20


# ---------------------------------------------------------------------------------------------
# Loading


def load(path: str | Path, *, check_paths: bool = True,
         installed_toolchains: Sequence[str] = (), max_cells: int = MAX_CELLS_DEFAULT) -> Matrix:
    """Load and validate a matrix file; raise InputError (one line: file:line: key: message).
    A matrix over `max_cells` cells is refused before it is expanded."""
    file = Path(path)
    shown = str(path)
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read matrix file: {exc.strerror}", file=shown) from None
    if len(raw) > MAX_FILE_BYTES:
        raise InputError(f"matrix file is {len(raw):,} bytes; the limit is {MAX_FILE_BYTES:,}",
                         file=shown)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError("matrix file is not UTF-8 text", file=shown) from None
    doc = Doc(shown, text)
    return _build(doc, file.resolve(), text, hashlib.sha256(raw).hexdigest(), check_paths,
                  installed_toolchains, max_cells)


def _check_axis_value(doc: Doc, axis: str, value: str, path: Sequence[Any],
                      schema: Mapping[str, tuple[str, ...] | None]) -> None:
    choices = schema.get(axis)
    if choices is not None and value not in choices:
        raise doc.error(path, f"{value!r} is not a {axis} value; allowed: {allowed(choices)}"
                        + did_you_mean(value, choices))
    if axis == "goarm64" and value and not _GOARM64.match(value):
        raise doc.error(path, f"{value!r} is not a GOARM64 value; allowed: v8.0…v9.5 with "
                        "optional ,lse ,crypto")
    if axis == "container_cpus" and value != "none":
        try:
            ok = float(value) > 0
        except ValueError:
            ok = False
        if not ok:
            raise doc.error(path, f"{value!r} is not a CPU limit; allowed: none or a positive "
                            "number of CPUs (\"0.5\")")
    if axis == "container" and (not value or any(c.isspace() for c in value)):
        raise doc.error(path, f"{value!r} is not an image name; allowed: none, scratch, "
                        "gostartbench/musl, gostartbench/debian:bookworm-minbase or an image "
                        "reference (alpine:3.20)")
    if axis in ("ldflags", "gcflags", "flags", "tags") or axis.startswith(ENV_PREFIX):
        try:
            shlex.split(value)
        except ValueError as exc:
            raise doc.error(path, f"cannot split {value!r} into arguments: {exc}") from None


def _axis_schema(doc: Doc, section: str, raw: Any, schema: Mapping[str, tuple[str, ...] | None],
                 env_prefix: str) -> list[tuple[str, tuple[str, ...]]]:
    """Validate `axes:` or `run:` into [(internal axis name, values)] in file order."""
    if raw is None:
        return []
    m = expect_mapping(doc, raw, (section,), None)
    out: list[tuple[str, tuple[str, ...]]] = []
    for k, v in m.items():
        path = (section, k)
        if not isinstance(k, str):
            raise doc.error(path, f"axis names are strings, found {k!r}")
        if k.startswith(ENV_PREFIX):
            name = k[len(ENV_PREFIX):]
            if not ENV_NAME.match(name):
                raise doc.error(path, f"{name!r} is not an environment variable name")
            axis = env_prefix + name
        elif k == REV:
            raise doc.error(path, "`rev` is set by `gostartbench gate --base DIR --head DIR` "
                            "(the tree each cell is built from), not by a matrix file")
        elif k in schema:
            axis = k
        else:
            names = [*schema, "env.NAME"]
            raise doc.error(path, f"unknown {section} axis {k!r}; allowed: {allowed(names)}"
                            + did_you_mean(k, names))
        vals = values_of(doc, v, path)
        for i, x in enumerate(vals):
            _check_axis_value(doc, axis, x, (*path, i) if isinstance(v, list) else path, schema)
        out.append((axis, tuple(vals)))
    return out


def _rule(doc: Doc, raw: Any, path: Sequence[Any], known: Mapping[str, tuple[str, ...]],
          env_names: Mapping[str, str], multi: bool) -> dict[str, tuple[str, ...]]:
    """A rule (exclude/include/baseline): axis → value(s), `env.X` resolved to build or run."""
    m = expect_mapping(doc, raw, path, None)
    if not m:
        raise doc.error(path, "empty rule: name at least one axis")
    out: dict[str, tuple[str, ...]] = {}
    for k, v in m.items():
        kp = (*path, k)
        axis = env_names.get(str(k), str(k))
        if axis not in known:
            names = list(known)
            raise doc.error(kp, f"unknown axis {k!r} in rule; the matrix has: {allowed(names)}"
                            + did_you_mean(str(k), names))
        if isinstance(v, list) and not multi:
            raise doc.error(kp, "expected one value here, found a list")
        vals = values_of(doc, v, kp)
        schema = {**BUILD_AXES, **RUN_AXES}.get(axis)
        # Enumerated axes: any value the axis allows (SPEC's own example excludes upx values the
        # matrix may not list); app, toolchain and free-text axes: the matrix's values.
        choices = schema if schema is not None else known[axis]
        for i, x in enumerate(vals):
            if x not in choices and not (schema is None and axis not in RULE_KEYS_EXTRA):
                raise doc.error((*kp, i) if isinstance(v, list) else kp,
                                f"{x!r} is not a {k} value here; allowed: "
                                f"{allowed(choices)}" + did_you_mean(x, choices))
        out[axis] = tuple(vals)
    return out


def _build(doc: Doc, file: Path, text: str, sha: str, check_paths: bool,
           installed_toolchains: Sequence[str], max_cells: int = MAX_CELLS_DEFAULT) -> Matrix:
    """Validate every section in turn, then expand (the size checked first)."""
    top = expect_mapping(doc, doc.value if doc.value is not None else {}, (), TOP_KEYS)
    if "version" not in top:
        raise doc.error(("version",), "missing: write `version: 1` at the top")
    if top["version"] != 1 or isinstance(top["version"], bool):
        raise doc.error(("version",), f"unsupported version {top['version']!r}; allowed: 1")
    tcs = _toolchains(doc, top, installed_toolchains)
    apps_raw = expect_mapping(doc, top.get("apps"), ("apps",), None) if "apps" in top else None
    if not apps_raw:
        raise doc.error(("apps",), "no apps: name at least one Go program under `apps:`")
    apps = [parse_app(doc, name, spec, file.parent, check_paths) for name, spec in apps_raw.items()]
    build_axes = _axis_schema(doc, "axes", top.get("axes"), BUILD_AXES, ENV_PREFIX)
    run_axes = _axis_schema(doc, "run", top.get("run"), RUN_AXES, RUNENV_PREFIX)
    # `env.X` in rules: the build axis if the matrix varies it there, else the run one.
    env_names: dict[str, str] = {}
    for axis, _ in run_axes:
        if axis.startswith(RUNENV_PREFIX):
            env_names[ENV_PREFIX + axis[len(RUNENV_PREFIX):]] = axis
    for axis, _ in build_axes:
        if axis.startswith(ENV_PREFIX):
            env_names[axis] = axis
    known: dict[str, tuple[str, ...]] = {
        "app": tuple(a.name for a in apps), "toolchain": tuple(tcs),
        **dict(build_axes), **dict(run_axes),
    }
    # include/baseline may name axes' default values even where the matrix does not vary them
    known_any: dict[str, tuple[str, ...]] = dict(known)
    for axis, choices in [*BUILD_AXES.items(), *RUN_AXES.items()]:
        if axis not in known_any:
            known_any[axis] = choices if choices is not None else ()
    ex_raw = _list(doc, top, "exclude", "rules")
    exclude = [_rule(doc, r, ("exclude", i), known, env_names, multi=True)
               for i, r in enumerate(ex_raw)]
    include = [_include(doc, r, i, known, known_any, env_names)
               for i, r in enumerate(_list(doc, top, "include", "cells"))]
    baseline_raw = top.get("baseline")
    baseline = _baseline(doc, baseline_raw, build_axes, run_axes, known_any | known, env_names)
    measure = _measure(doc, top.get("measure"))
    _check_size(doc, len(apps), len(tcs), build_axes, run_axes, len(include), max_cells)

    cells, rule_hits = expand(
        apps=[a.name for a in apps], toolchains=tcs, build_axes=build_axes, run_axes=run_axes,
        exclude=exclude, include=include,
    )
    if not cells:
        raise doc.error(("exclude",) if exclude else ("axes",),
                        "the matrix expands to no cell: every combination is excluded")
    warnings = [f"{doc.file}:{doc.line(('exclude', i))}: exclude[{i}]: rule matches no cell"
                for i, n in enumerate(rule_hits) if n == 0]
    warnings += _check_baseline(doc, baseline, baseline_raw is not None, cells)
    return Matrix(
        file=file, sha256=sha, text=text, toolchains=tuple(tcs), apps=tuple(apps),
        build_axes=tuple(build_axes), run_axes=tuple(run_axes), exclude=tuple(exclude),
        include=tuple(include), baseline=baseline, measure=measure, cells=tuple(cells),
        warnings=tuple(warnings), toolchains_named="toolchains" in top,
    )


def _baseline(doc: Doc, raw: Any, build_axes: Sequence[tuple[str, tuple[str, ...]]],
              run_axes: Sequence[tuple[str, tuple[str, ...]]],
              known: Mapping[str, tuple[str, ...]], env_names: Mapping[str, str]
              ) -> dict[str, str]:
    """The `baseline` rule; without one, the first value each varied axis lists (the cache
    state excepted: a cold cell is compared with a cold one), as effects.csv compares too."""
    if raw is None:
        return {k: v[0] for k, v in [*build_axes, *run_axes] if k != "cache"}
    b = _rule(doc, raw, ("baseline",), known, env_names, multi=False)
    return {k: v[0] for k, v in b.items()}


def _check_baseline(doc: Doc, baseline: Mapping[str, str], named: bool,
                    cells: Sequence[Cell]) -> list[str]:
    """A named baseline that matches no cell is an error; a default one, a warning."""
    if not baseline or any(rule_matches(c, {k: (v,) for k, v in baseline.items()}) for c in cells):
        return []
    what = ", ".join(f"{k}={v}" for k, v in baseline.items())
    if named:
        raise doc.error(("baseline",), f"the baseline matches no cell: {what}")
    return [f"{doc.file}: no cell has every axis's first value ({what}): name a `baseline` to "
            "get ratios"]


def _toolchains(doc: Doc, top: Mapping[str, Any], installed: Sequence[str]) -> list[str]:
    """`toolchains`: go-bin versions (known, or installed in the cache) or `system`."""
    tcs_raw = top.get("toolchains", [DEFAULT_TOOLCHAIN])
    tcs = values_of(doc, tcs_raw, ("toolchains",))
    for i, tc in enumerate(tcs):
        tp = ("toolchains", i) if isinstance(tcs_raw, list) else ("toolchains",)
        if tc == "system":
            continue
        if not _VERSION.match(tc):
            raise doc.error(tp, f"{tc!r} is not a Go version; write e.g. "
                            f"\"{DEFAULT_TOOLCHAIN}\" or \"system\"")
        if tc not in KNOWN_GO_BIN and tc not in installed:
            raise doc.error(tp, f"Go {tc} is not available from go-bin; available: "
                            f"{allowed(KNOWN_GO_BIN)}, system" + did_you_mean(tc, KNOWN_GO_BIN))
    return tcs


def _list(doc: Doc, top: Mapping[str, Any], key: str, what: str) -> list[Any]:
    raw = top.get(key) or []
    if not isinstance(raw, list):
        raise doc.error((key,), f"expected a list of {what}, found {typename(raw)}")
    return raw


def _include(doc: Doc, r: Any, i: int, known: Mapping[str, tuple[str, ...]],
             known_any: Mapping[str, tuple[str, ...]], env_names: Mapping[str, str]
             ) -> dict[str, str]:
    """One `include` cell: axis → value, each checked like an axis value."""
    m = expect_mapping(doc, r, ("include", i), None)
    rule: dict[str, str] = {}
    for k, v in m.items():
        kp = ("include", i, k)
        axis = env_names.get(str(k), str(k))
        if axis not in known_any and not (str(k).startswith(ENV_PREFIX)):
            names = list(known_any)
            raise doc.error(kp, f"unknown axis {k!r}; allowed: {allowed(names)}"
                            + did_you_mean(str(k), names))
        x = as_str(doc, v, kp)
        if axis in ("app", "toolchain") and x not in known[axis]:
            raise doc.error(kp, f"{x!r} is not among the matrix's {k}s: "
                            f"{allowed(known[axis])}" + did_you_mean(x, known[axis]))
        if axis in BUILD_AXES or axis in RUN_AXES:  # env values are free text
            _check_axis_value(doc, axis, x, kp, {**BUILD_AXES, **RUN_AXES})
        rule[axis] = x
    return rule


def _check_size(doc: Doc, napps: int, ntcs: int,
                build_axes: Sequence[tuple[str, tuple[str, ...]]],
                run_axes: Sequence[tuple[str, tuple[str, ...]]], ninclude: int,
                max_cells: int) -> None:
    """Refuse a matrix whose product of axes (an upper bound on its cells: excludes only
    remove) is over the limit, naming the factors, before anything is expanded."""
    factors = [("apps", napps), ("toolchains", ntcs)]
    factors += [(k, len(v)) for k, v in [*build_axes, *run_axes]]
    total = 1
    for _, n in factors:
        total *= n
    total += ninclude * napps * ntcs
    if total <= max_cells:
        return
    big = " × ".join(f"{k.replace(RUNENV_PREFIX, ENV_PREFIX)} {n}"
                     for k, n in sorted(factors, key=lambda f: -f[1]) if n > 1)
    section = "run" if run_axes and (not build_axes or max(len(v) for _, v in run_axes)
                                     > max(len(v) for _, v in build_axes)) else "axes"
    raise doc.error((section,), f"the matrix multiplies to {total:,} cells ({big}), over the "
                    f"limit of {max_cells:,}; cut an axis, or raise the limit with --max-cells")


def _check_cpus(doc: Doc, cpus: Sequence[int]) -> None:
    """measure.cpus must be CPUs this process may run on (its affinity), checked now, not per
    cell at measuring time."""
    try:
        allowed_cpus = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return
    bad = [c for c in cpus if c not in allowed_cpus]
    if bad:
        raise doc.error(("measure", "cpus"), f"CPU {', '.join(map(str, bad))} not available to "
                        f"this process; allowed: {allowed(allowed_cpus)}")


PRECISE_MIN_RUNS = 30  # `runs` when `precision` or `budget_s` is set and `runs` is not


def _adaptive(doc: Doc, m: Mapping[str, Any], kw: dict[str, Any]) -> None:
    """precision, max_runs and budget_s: checked, and consistent with the timer and order."""
    for k, lo, hi in (("precision", 0.0, 0.5), ("budget_s", 0.0, math.inf)):
        if k in m and m[k] is not None:
            v = m[k]
            if not isinstance(v, int | float) or isinstance(v, bool) or not lo < v < hi:
                what = "a fraction in (0, 0.5)" if k == "precision" else \
                    "a positive number of seconds"
                raise doc.error(("measure", k), f"expected {what}, found {typename(v)}")
            kw[k] = float(v)
    if "max_runs" in m:
        v = m["max_runs"]
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise doc.error(("measure", "max_runs"), f"expected a positive integer, found "
                            f"{typename(v)}")
        kw["max_runs"] = v
    adaptive = "precision" in kw or "budget_s" in kw
    if adaptive and "runs" not in kw:
        kw["runs"] = PRECISE_MIN_RUNS
    runs = kw.get("runs", Measure.runs)
    if kw.get("max_runs", Measure.max_runs) < runs:
        raise doc.error(("measure", "max_runs" if "max_runs" in m else "runs"),
                        f"max_runs ({kw.get('max_runs', Measure.max_runs)}) is below runs "
                        f"({runs}): runs is the minimum, max_runs the cap")
    if adaptive and kw.get("order", Measure.order) != "interleaved":
        raise doc.error(("measure", "precision" if "precision" in kw else "budget_s"),
                        "precision and budget_s need order: interleaved (cells are compared "
                        "over the same stretch of time)")
    if adaptive and kw.get("timer", Measure.timer) == "hyperfine":
        raise doc.error(("measure", "precision" if "precision" in kw else "budget_s"),
                        "precision and budget_s steer the spawn timer: use timer: spawn or "
                        "both (hyperfine then times `runs` runs per cell)")


def _measure(doc: Doc, raw: Any) -> Measure:
    if raw is None:
        return Measure()
    m = expect_mapping(doc, raw, ("measure",), MEASURE_KEYS)
    kw: dict[str, Any] = {}

    def need_int(k: str, lo: int) -> None:
        if k in m:
            v = m[k]
            if not isinstance(v, int) or isinstance(v, bool) or v < lo:
                what = "a positive integer" if lo > 0 else "an integer ≥ 0"
                raise doc.error(("measure", k), f"expected {what}, found {typename(v)}")
            kw[k] = v

    if m.get("calibration") is False:  # YAML 1.1 reads a bare `off` as false
        m = {**m, "calibration": "off"}
    for k, choices in (("timer", TIMERS), ("order", ORDERS), ("calibration", CALIBRATIONS),
                       ("engine", ENGINES), ("evict", EVICTIONS)):
        if k in m:
            v = as_str(doc, m[k], ("measure", k))
            if v not in choices:
                raise doc.error(("measure", k), f"{v!r} is not allowed; allowed: "
                                f"{allowed(choices)}" + did_you_mean(v, choices))
            kw[k] = v
    need_int("runs", 1)
    need_int("warmup", 0)
    need_int("seed", 0)
    need_int("inittrace_runs", 0)
    need_int("phase_runs", 0)
    need_int("profile_runs", 1)
    need_int("profile_hz", 0)
    need_int("bootstrap", 100)
    if "timeout_s" in m:
        v = m["timeout_s"]
        if not isinstance(v, int | float) or isinstance(v, bool) or v <= 0:
            raise doc.error(("measure", "timeout_s"), f"expected a positive number of seconds, "
                            f"found {typename(v)}")
        kw["timeout_s"] = float(v)
    if "min_effect" in m:
        v = m["min_effect"]
        if not isinstance(v, int | float) or isinstance(v, bool) or not 0 <= v < 1:
            raise doc.error(("measure", "min_effect"), f"expected a fraction in [0, 1), found "
                            f"{typename(v)}")
        kw["min_effect"] = float(v)
    _adaptive(doc, m, kw)
    for k in ("inittrace", "phases", "profile"):
        if k in m:
            if not isinstance(m[k], bool):
                raise doc.error(("measure", k), f"expected true or false, found "
                                f"{typename(m[k])}")
            kw[k] = m[k]
    if "cpus" in m and m["cpus"] is not None:
        v = m["cpus"]
        if not isinstance(v, list) or not v or not all(
                isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in v):
            raise doc.error(("measure", "cpus"), f"expected null or a list of CPU numbers, "
                            f"found {typename(v)}")
        _check_cpus(doc, v)
        kw["cpus"] = tuple(v)
    return Measure(**kw)
