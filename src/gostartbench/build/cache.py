"""The content-addressed build cache: keys from every input, entries committed whole.

A cache entry is a folder named by the hash of every input (toolchain, source tree, flags,
environment, post-steps and the tools' versions; and the module's location unless -trimpath,
since the binary embeds source paths). It is built in a temporary folder, its `meta.json`
written last, then renamed into place: an entry exists only once complete, and two processes
building the same entry both end with a good one. Only successes are cached: a failed build is
tried again next time (its cause may lie outside the key: a module cache, a C library, where
the source sits).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from gostartbench.build.modules import local_replacements
from gostartbench.build.plan import Plan
from gostartbench.host.tools import (
    Toolchain,
    cache_dir,
    effective_go_env,
    file_lock,
    find_tool,
    host_arch,
)

# The user's settings that change what `go build` makes (they pass through: host/tools.py).
KEYED_GO_ENV = ("GOFLAGS", "GOTOOLCHAIN", "GOEXPERIMENT")

FORMAT = 5  # bump when the cache layout or key recipe changes

TREE_CACHE: dict[Path, str] = {}
_TREE_LOCK = threading.Lock()


def tree_hash(root: Path) -> str:
    """Content hash of a module's source tree (every file but dot-folders), cached per process."""
    with _TREE_LOCK:
        if root in TREE_CACHE:
            return TREE_CACHE[root]
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        # Dot and underscore folders are not Go's; a folder with a go.mod of its own is another
        # module, not part of this one's source.
        dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "_"))
                             and not (Path(dirpath) / d / "go.mod").is_file())
        for name in sorted(filenames):
            p = Path(dirpath) / name
            if not p.is_file():
                continue
            h.update(str(p.relative_to(root)).encode() + b"\0")
            with open(p, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
            h.update(b"\0")
    digest = h.hexdigest()
    with _TREE_LOCK:
        TREE_CACHE[root] = digest
    return digest


def _hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def trims_paths(go_args: Sequence[str]) -> bool:
    """Whether `go build` with these arguments trims source paths: its last -trimpath flag
    decides, as Go's flag parsing does (`-trimpath -trimpath=false` does not trim)."""
    on = False
    for a in go_args:
        if a in ("-trimpath", "--trimpath"):
            on = True
        elif a.startswith(("-trimpath=", "--trimpath=")):
            on = a.split("=", 1)[1].lower() in ("1", "t", "true")
    return on


def go_key(plan: Plan, tc: Toolchain) -> str:
    """The cache key of a `go build`: every input that can change its output (the module's
    tree holds go.mod, go.sum and vendor/modules.txt; go.sum pins every module's content; local
    `replace` targets are hashed too)."""
    env = dict(plan.go_env)
    cc = ""
    if env.get("CGO_ENABLED") == "1":
        cc = find_tool(env.get("CC", "cc")).version or ""
    # Without -trimpath the binary embeds the module's path: two copies of one tree in two
    # places are two binaries.
    where = "" if trims_paths(plan.go_args) else str(plan.module_root)
    return _hash({
        "format": FORMAT, "go": tc.version, "goroot": str(tc.goroot), "arch": host_arch(),
        "src": tree_hash(plan.module_root), "pkg": plan.package, "args": plan.go_args,
        "env": plan.go_env, "cc": cc, "app": plan.app, "where": where,
        "user_env": {k: v for k, v in effective_go_env(tc.go, KEYED_GO_ENV).items() if v},
        "replaced": [tree_hash(d) for d in local_replacements(plan.module_root, tc)
                     if d.is_dir()],
    })


def final_key(gokey: str, plan: Plan) -> str:
    """The cache key after the post-steps (strip, UPX) and their tools' versions."""
    if plan.strip == "none" and plan.upx == "none":
        return gokey
    return _hash({
        "go": gokey, "strip": plan.strip, "upx": plan.upx,
        "strip_v": find_tool("strip").version if plan.strip != "none" else "",
        "upx_v": find_tool("upx").version if plan.upx != "none" else "",
    })


def entry_dir(key: str) -> Path:
    """The cache folder of a key."""
    return cache_dir() / "builds" / key[:2] / key


# ---------------------------------------------------------------------------------------------


def _commit(tmp: Path, final: Path, meta: dict[str, Any]) -> None:
    """Write meta.json last, then move the folder into place atomically."""
    (tmp / "meta.json.part").write_text(json.dumps(meta, indent=1, default=str))
    os.replace(tmp / "meta.json.part", tmp / "meta.json")
    final.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(tmp, final)
    except OSError:
        # Another process finished the same entry first: its result is as good as ours.
        shutil.rmtree(tmp, ignore_errors=True)


def _load_meta(d: Path) -> dict[str, Any] | None:
    try:
        meta: dict[str, Any] = json.loads((d / "meta.json").read_text())
        return meta
    except (OSError, ValueError):
        return None


def _tmpdir(final: Path) -> Path:
    tmp = final.parent / f".tmp-{final.name}-{os.getpid()}-{threading.get_ident()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    return tmp


def entry_at(key: str, make: Callable[[Path], dict[str, Any]]) -> dict[str, Any]:
    """The cache entry `key`: read if complete and good; else built by `make(tmpdir)` under a
    lock (checked again inside it). A success is committed with its meta.json last and read
    back; a failure is returned and never stored, so the next run tries again."""
    final = entry_dir(key)
    meta = _load_meta(final)
    if meta is not None and meta.get("status") == "ok":
        return {**meta, "cached": True}
    with file_lock(final.parent / f"{key}.lock"):
        meta = _load_meta(final)
        if meta is not None and meta.get("status") == "ok":
            return {**meta, "cached": True}
        if meta is not None:  # a failure cached by an older version: not trusted
            shutil.rmtree(final, ignore_errors=True)
        tmp = _tmpdir(final)
        meta = make(tmp)
        if meta.get("status") != "ok":
            shutil.rmtree(tmp, ignore_errors=True)
            return {**meta, "cached": False}
        _commit(tmp, final, meta)
        return {**(_load_meta(final) or meta), "cached": False}
