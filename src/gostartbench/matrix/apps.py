"""`apps:` — one Go program each: its main package's folder, arguments, what a run must do
(`expect`) or when a server is up (`ready`), and its run environment."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

from gostartbench.matrix.model import App, Expect, Ready
from gostartbench.matrix.yamldoc import Doc, as_str, expect_mapping, typename

APP_KEYS = ("path", "args", "expect", "ready", "env")
EXPECT_KEYS = ("exit", "stdout", "stdout_contains")
READY_KEYS = ("stdout", "tcp")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def parse_app(doc: Doc, name: Any, spec: Any, base: Path, check_paths: bool) -> App:
    path = ("apps", name)
    if not isinstance(name, str) or not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", name):
        raise doc.error(path, f"app name {name!r} must be letters, digits, '.', '_' or '-' "
                        "(it becomes part of file names)")
    if spec is None:
        spec = {}
    m = expect_mapping(doc, spec, path, APP_KEYS)
    if "path" not in m:
        raise doc.error(path, "missing `path`: the folder of the app's main package")
    p = Path(as_str(doc, m["path"], (*path, "path"))).expanduser()
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
        args = tuple(as_str(doc, a, (*path, "args", i)) for i, a in enumerate(args_raw))
    else:
        raise doc.error((*path, "args"), f"expected a list of strings, found {typename(args_raw)}")
    expect = _expect(doc, m["expect"], (*path, "expect")) if "expect" in m else Expect()
    ready = _ready(doc, m["ready"], (*path, "ready")) if "ready" in m else None
    env: tuple[tuple[str, str], ...] = ()
    if "env" in m:
        em = expect_mapping(doc, m["env"], (*path, "env"), None)
        for k in em:
            if not isinstance(k, str) or not ENV_NAME.match(k):
                raise doc.error((*path, "env", k), f"{k!r} is not an environment variable name")
        env = tuple((k, as_str(doc, v, (*path, "env", k))) for k, v in em.items())
    return App(name=name, path=p, args=args, expect=expect, ready=ready, env=env)


def _expect(doc: Doc, raw: Any, path: tuple[Any, ...]) -> Expect:
    """`expect`: an exit code 0..255 (or null: any), stdout, stdout_contains."""
    e = expect_mapping(doc, raw or {}, path, EXPECT_KEYS)
    code = e.get("exit", 0)
    if code is not None and (not isinstance(code, int) or isinstance(code, bool)
                             or not 0 <= code <= 255):
        raise doc.error((*path, "exit"), f"expected an exit code 0..255, found "
                        f"{typename(code)}")
    out = e.get("stdout")
    contains = e.get("stdout_contains")
    return Expect(exit=code, stdout=None if out is None else as_str(doc, out, ()),
                  stdout_contains=None if contains is None else as_str(doc, contains, ()))


def _ready(doc: Doc, raw: Any, path: tuple[Any, ...]) -> Ready:
    """`ready`: exactly one of a stdout line or a TCP port."""
    r = expect_mapping(doc, raw, path, READY_KEYS)
    if len(r) != 1:
        raise doc.error(path, "give exactly one of `stdout: LINE` or `tcp: PORT`")
    if "tcp" in r:
        port = r["tcp"]
        if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
            raise doc.error((*path, "tcp"), f"expected a port 1..65535, found {typename(port)}")
        return Ready(tcp=port)
    line = as_str(doc, r["stdout"], (*path, "stdout"))
    if not line:
        raise doc.error((*path, "stdout"), "the ready line cannot be empty")
    return Ready(stdout=line)
