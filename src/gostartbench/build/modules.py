"""Go modules as users have them: each module's requirements fetched once into gostartbench's
own module cache (shared by every toolchain and run) before any of its cells builds; a fetch
that fails fails that module's cells with one line; and each binary's package graph (which
module every package comes from, and which of the app's direct requirements pulls it in), so
that package init can be rolled up by dependency.

The fetch is `go list -deps` over the module's apps, not `go mod download`: it fetches what the
build needs and nothing else, and, like `go build`, never edits the user's go.mod or go.sum.
"""

from __future__ import annotations

import json
import subprocess
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gostartbench.host.tools import Toolchain, effective_go_env, go_env

# deps.json in a `go build` cache entry: the binary's package graph, one record per package.
DEPS_FILE = "deps.json"
STD = "std"  # the module name given to the standard library's packages
_LIST_FIELDS = "ImportPath,Standard,Module,Imports,DepOnly"


@dataclass(frozen=True)
class PackageDep:
    """One package linked into a binary: its module (STD for the standard library), the
    module's version, the direct requirement of the app's module that pulls it in (the main
    module's own path where the app imports it without one), and one import chain from main."""

    package: str
    module: str
    version: str
    requirement: str
    chain: tuple[str, ...]

    def as_row(self) -> dict[str, Any]:
        """A deps.csv row (without the build id)."""
        return {"package": self.package, "module": self.module, "version": self.version,
                "requirement": self.requirement, "chain": " > ".join(self.chain)}


def _one_line(text: str, limit: int = 500) -> str:
    """go's error output as one line: progress lines dropped, the rest joined."""
    lines = [ln.strip() for ln in text.strip().splitlines()
             if ln.strip() and not ln.strip().startswith("go: downloading")]
    out = " | ".join(lines) or "no output"
    return out[:limit] + ("…" if len(out) > limit else "")


def json_stream(text: str) -> list[dict[str, Any]]:
    """`go list -json`'s output: JSON objects one after another."""
    dec = json.JSONDecoder()
    out: list[dict[str, Any]] = []
    i = 0
    text = text.strip()
    while i < len(text):
        obj, j = dec.raw_decode(text, i)
        out.append(obj)
        i = j
        while i < len(text) and text[i].isspace():
            i += 1
    return out


# (module root, go binary, go.mod's text) → `go mod edit -json`'s exit code, stdout, stderr
_MOD_EDIT: dict[tuple[str, str, str], tuple[int, str, str]] = {}


def mod_edit_json(root: Path, tc: Toolchain) -> dict[str, Any]:
    """`go mod edit -json` of a module: its path, go version, requirements and replacements.
    Raises ValueError with go's one-line complaint when go.mod does not parse."""
    try:
        text = (root / "go.mod").read_text()
    except OSError:
        text = ""
    key = (str(root), str(tc.go), text)  # every build's cache key asks: `go` runs once per go.mod
    if key not in _MOD_EDIT:
        p = subprocess.run([str(tc.go), "mod", "edit", "-json"], cwd=root, capture_output=True,
                           text=True, env=go_env(tc.goroot), stdin=subprocess.DEVNULL,
                           check=False)
        _MOD_EDIT[key] = (p.returncode, p.stdout, p.stderr)
    code, out, err = _MOD_EDIT[key]
    if code != 0:
        raise ValueError(f"{root / 'go.mod'}: {_one_line(err)}")
    data: dict[str, Any] = json.loads(out)
    return data


def local_replacements(root: Path, tc: Toolchain) -> list[Path]:
    """The folders that go.mod's `replace … => ./dir` directives point to: their source is part
    of every build of the module (and so of its cache key). [] when go.mod does not parse (the
    fetch reports that)."""
    try:
        data = mod_edit_json(root, tc)
    except ValueError:
        return []
    out = []
    for r in data.get("Replace") or []:
        new = r.get("New") or {}
        if not new.get("Version") and new.get("Path"):
            out.append((root / new["Path"]).resolve())
    return sorted(set(out))


def fetch(root: Path, packages: Sequence[str], tc: Toolchain, extra_env: dict[str, str]
          ) -> str:
    """Fetch every module the packages need into the module cache (a warm cache fetches
    nothing: builds then work with the network gone). '' on success, else one line naming the
    module, the version and what the proxy answered."""
    if (root / "vendor" / "modules.txt").is_file():
        return ""  # vendored: `go build -mod=vendor` needs no module cache
    try:
        data = mod_edit_json(root, tc)
    except ValueError as exc:
        return f"go.mod does not parse: {exc}"
    if not data.get("Require"):
        return ""  # standard library only
    p = subprocess.run([str(tc.go), "list", "-deps", "-f", "{{.ImportPath}}", *packages],
                       cwd=root, capture_output=True, text=True,
                       env=go_env(tc.goroot, extra_env), stdin=subprocess.DEVNULL, check=False)
    if p.returncode == 0:
        return ""
    proxy = effective_go_env(tc.go).get("GOPROXY", "?")
    return f"fetching the modules of {root} failed (GOPROXY={proxy}): {_one_line(p.stderr)}"


def package_graph(root: Path, package: str, tc: Toolchain, env: dict[str, str],
                  args: Iterable[str] = ()) -> list[PackageDep]:
    """Every package linked into `package`'s binary with its module, the direct requirement
    that pulls it in and the shortest import chain from main (breadth-first), as `go list
    -deps` sees it with the build's own flags (`args`: -tags, -mod=vendor) and environment
    (CGO_ENABLED, GOOS…). Raises RuntimeError with go's complaint."""
    p = subprocess.run([str(tc.go), "list", "-deps", f"-json={_LIST_FIELDS}", *args, package],
                       cwd=root, capture_output=True, text=True, env=go_env(tc.goroot, env),
                       stdin=subprocess.DEVNULL, check=False)
    if p.returncode != 0:
        raise RuntimeError(_one_line(p.stderr))
    pkgs = {d["ImportPath"]: d for d in json_stream(p.stdout)}
    mains = [d for d in pkgs.values() if not d.get("DepOnly")]
    if not mains:
        return []
    main = mains[-1]
    main_module = (main.get("Module") or {}).get("Path", main["ImportPath"])
    return graph_from_list(pkgs, main["ImportPath"], main_module)


def _module_of(d: dict[str, Any]) -> tuple[str, str]:
    if d.get("Standard"):
        return STD, ""
    m = d.get("Module") or {}
    return str(m.get("Path", "")), str(m.get("Version", ""))


def graph_from_list(pkgs: dict[str, dict[str, Any]], main: str, main_module: str
                    ) -> list[PackageDep]:
    """PackageDeps from `go list -deps -json` records (pure): breadth-first from `main`, so each
    package's chain is a shortest one; its requirement is the first module on that chain that
    is neither the main module nor the standard library (the main module itself when there is
    none: the app imports it directly)."""
    chain: dict[str, tuple[str, ...]] = {main: (main,)}
    todo = deque([main])
    while todo:
        cur = todo.popleft()
        for imp in (pkgs.get(cur) or {}).get("Imports") or []:
            if imp in pkgs and imp not in chain:
                chain[imp] = (*chain[cur], imp)
                todo.append(imp)
    out = []
    for path, ch in chain.items():
        module, version = _module_of(pkgs[path])
        requirement = main_module
        for step in ch[1:]:
            mod, _ = _module_of(pkgs[step])
            if mod not in (STD, main_module, ""):
                requirement = mod
                break
        out.append(PackageDep(path, module or main_module, version, requirement, ch))
    return sorted(out, key=lambda d: d.package)


def write_deps(path: Path, deps: Sequence[PackageDep]) -> None:
    """deps.json into a build's cache folder (before its meta.json)."""
    path.write_text(json.dumps([d.as_row() for d in deps], indent=0))


def read_deps(path: Path) -> list[dict[str, Any]]:
    """deps.json rows of a build ([] when the build has none: an older cache entry, a helper)."""
    try:
        rows: list[dict[str, Any]] = json.loads(path.read_text())
        return rows
    except (OSError, ValueError):
        return []
