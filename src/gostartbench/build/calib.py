"""Programs the instrument builds for itself, from sources shipped in the package (so they
work outside a checkout): the calibration no-op and delay (goapps/noop and goapps/delay, linked
into calib/), and Go helpers such as gsbsym (measure/gsbsym), each with the normal build stage,
cached."""

from __future__ import annotations

import hashlib
from pathlib import Path

from gostartbench.build import Plan, build_one
from gostartbench.host.tools import cache_dir
from gostartbench.matrix import DEFAULT_TOOLCHAIN

# The calibration programs are goapps/noop and goapps/delay, shipped with the package (calib/
# holds links to them) so that calibrate works outside a checkout too.
CALIB_DIR = Path(__file__).with_name("calib")


def calib_programs(toolchain: str = DEFAULT_TOOLCHAIN) -> dict[str, Path]:
    """Build the no-op and delay programs (sources written into the cache: they do not depend
    on a checkout) with the normal build stage, static (cgo=0)."""
    texts = {name: (CALIB_DIR / f"{name}.go").read_text() for name in ("noop", "delay")}
    src = cache_dir() / "calib-src" / hashlib.sha256(
        (texts["noop"] + texts["delay"]).encode()).hexdigest()[:12]
    for name, text in texts.items():
        (src / name).mkdir(parents=True, exist_ok=True)
        (src / name / "main.go").write_text(text)
    (src / "go.mod").write_text("module gostartbench.calib\n\ngo 1.21\n")
    out = {}
    for name in ("noop", "delay"):
        plan = Plan(build_id=f"calib-{name}", app=name, module_root=src,
                          package=f"./{name}", toolchain=toolchain,
                          go_args=("-buildvcs=false", "-trimpath"),
                          go_env=(("CGO_ENABLED", "0"),), strip="none", upx="none")
        res = build_one(plan)
        if res.status != "ok" or res.binary is None:
            raise RuntimeError(f"cannot build the calibration program {name}: {res.reason}")
        out[name] = res.binary
    return out


def go_helper(name: str, source: str, toolchain: str, gomod: str = "", gosum: str = ""
              ) -> Path:
    """A one-file Go program of the package built with `toolchain` (static, -trimpath), from
    its source text (and its go.mod and go.sum where it has dependencies, fetched through the
    Go module proxy like any app's); cached like any build."""
    key = hashlib.sha256((source + gomod + gosum).encode()).hexdigest()[:12]
    src = cache_dir() / "helper-src" / f"{name}-{key}"
    (src / name).mkdir(parents=True, exist_ok=True)
    (src / name / "main.go").write_text(source)
    (src / "go.mod").write_text(gomod or f"module gostartbench.{name}\n\ngo 1.21\n")
    if gosum:
        (src / "go.sum").write_text(gosum)
    plan = Plan(build_id=f"helper-{name}", app=name, module_root=src, package=f"./{name}",
                toolchain=toolchain, go_args=("-buildvcs=false", "-trimpath"),
                go_env=(("CGO_ENABLED", "0"),), strip="none", upx="none")
    res = build_one(plan)
    if res.status != "ok" or res.binary is None:
        raise RuntimeError(f"cannot build the helper {name}: {res.reason}")
    return res.binary
