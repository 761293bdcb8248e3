"""Programs with module dependencies: fetched once into the tool's module cache, the user's
GOPROXY passed through, one-line failures per app, and package init rolled up to the module
and the direct requirement that pulls it in (a local module with a known 1 ms init)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from gostartbench import build, matrix, results
from gostartbench.analysis import analyse
from tests.conftest import FIXTURES, GOAPPS, TOOLCHAIN, gsb, skip_or_fail

DEPS_APP = FIXTURES / "deps" / "app"
COBRA = GOAPPS / "services" / "cobracli"


def _matrix(tmp: Path, apps: str, extra: str = "") -> Path:
    p = tmp / "matrix.yaml"
    p.write_text(f"version: 1\ntoolchains: [\"{TOOLCHAIN}\"]\napps:\n{apps}\n{extra}")
    return p


def _network_or_skip(reason: str) -> None:
    """A test that needs the Go module proxy: under CI=true it fails where the proxy is out of
    reach (CI reaches it), elsewhere it skips with the reason."""
    skip_or_fail("the Go module proxy", f"the Go module proxy is out of reach: {reason}")


@pytest.fixture(scope="module")
def deps_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("deps")
    m = _matrix(d, f"  depsapp: {{path: {DEPS_APP}, expect: {{exit: 0, stdout: 'deps ok'}}}}",
                "axes: {buildmode: [exe, pie]}\n"
                "measure: {runs: 5, warmup: 1, inittrace_runs: 5, phases: true, phase_runs: 5,"
                " calibration: off}\n")
    p = gsb("run", "-m", str(m), "--out", str(d / "r"))
    assert p.returncode == 0, p.stdout + p.stderr
    return d / "r"


def test_init_is_attributed_to_its_module_and_requirement(deps_run: Path) -> None:
    deps = results.read_table(deps_run / results.DEPS_CSV, results.DEPS_COLUMNS)
    row = deps[(deps["package"] == "example.test/slowinit")].iloc[0]
    assert row["module"] == "example.test/slowinit"
    assert row["requirement"] == "example.test/wrapper"  # the direct requirement pulls it in
    assert row["chain"] == "example.test/depsapp > example.test/wrapper > example.test/slowinit"
    fmt = deps[deps["package"] == "fmt"].iloc[0]
    assert fmt["module"] == "std" and fmt["requirement"] == "example.test/depsapp"
    a = analyse(results.load(deps_run))
    slow = a.modules[a.modules["module"] == "example.test/slowinit"]
    assert len(slow) == 2  # both binaries (exe and pie)
    for r in slow.itertuples():
        assert r.requirement == "example.test/wrapper"
        assert r.main_module == "example.test/depsapp"
        assert r.runs == 5 and r.packages == 1
        # A busy-wait of 1 ms cannot take less: a lower bound, not a speed target.
        assert r.init_ms >= 0.99 and r.ci95_low_ms >= 0.99
        assert r.ci95_low_ms <= r.init_ms <= r.ci95_high_ms
    # The pie knob is measured for the module (a row, whatever its size).
    assert set(a.module_effects["module"]) >= {"example.test/slowinit"}
    # The package-init phase of the traced runs stands beside the inittrace sum.
    assert set(a.init_vs_phase["cell"]) == set(slow["cell"])
    report = (deps_run / "report.md").read_text()
    assert "## Which dependency costs the start" in report
    assert "example.test/slowinit" in report and "example.test/wrapper" in report
    assert (deps_run / "plots" / "init_by_module.png").stat().st_size > 1000


def test_local_replacement_is_in_the_cache_key(tmp_path: Path) -> None:
    """Editing a replaced module's source (outside the app's own tree) rebuilds the app."""
    tree = tmp_path / "deps"
    shutil.copytree(FIXTURES / "deps", tree)
    m = matrix.load(_matrix(tmp_path, f"  depsapp: {{path: {tree / 'app'}}}"))
    first = next(iter(build.build_cells(m, m.cells).values()))
    assert first.status == "ok", first.reason
    src = tree / "slowinit" / "slowinit.go"
    src.write_text(src.read_text().replace("time.Millisecond", "2 * time.Millisecond"))
    build.TREE_CACHE.clear()
    second = next(iter(build.build_cells(m, m.cells).values()))
    assert second.status == "ok" and second.key != first.key and not second.cached


def test_real_dependency_builds_offline_once_fetched(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """cobra from the module proxy: fetched once, its packages attributed to it, and a warm
    module cache builds a new variant with the network gone (GOPROXY=off)."""
    m = matrix.load(_matrix(tmp_path, f"  cobracli: {{path: {COBRA}, args: [version]}}"))
    res = next(iter(build.build_cells(m, m.cells).values()))
    if res.status != "ok" and "fetching the modules" in res.reason:
        _network_or_skip(res.reason)
    assert res.status == "ok", res.reason
    rows = build.deps_rows({res.build_id: res})
    pflag = next(r for r in rows if r["package"] == "github.com/spf13/pflag")
    assert pflag["module"] == "github.com/spf13/pflag" and pflag["version"] == "v1.0.9"
    assert pflag["requirement"] == "github.com/spf13/cobra"
    monkeypatch.setenv("GOPROXY", "off")
    fresh = time.time_ns()  # a new binary (not in the build cache): `go build` runs offline
    m2 = matrix.load(_matrix(tmp_path, f"  cobracli: {{path: {COBRA}, args: [version]}}",
                             f"axes: {{ldflags: [\"-X main.offline={fresh}\"]}}\n"))
    res2 = next(iter(build.build_cells(m2, m2.cells).values()))
    assert res2.status == "ok" and not res2.cached, res2.reason


def _module(root: Path, name: str, gomod: str, gosum: str = "",
            imports: str = '_ "github.com/spf13/cobra"') -> str:
    d = root / name
    d.mkdir()
    (d / "go.mod").write_text(gomod)
    if gosum:
        (d / "go.sum").write_text(gosum)
    (d / "main.go").write_text(f"package main\n\nimport ({imports})\n\nfunc main() {{}}\n")
    return f"  {name}: {{path: {d}}}"


FAKE_SUM = "h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="


def test_module_faults_fail_only_their_apps(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A go.mod that does not parse, a version the proxy does not have, a checksum mismatch, a
    replace pointing nowhere, and the proxy unreachable with a cold module cache: each fails
    its own app's cells in one line; the good app builds; nothing is cached."""
    cobra_sum = (COBRA / "go.sum").read_text()
    head = "module x\n\ngo 1.21\n\n"
    apps = [
        f"  good: {{path: {DEPS_APP}}}",
        _module(tmp_path, "unparsable", head + "require github.com/spf13/cobra v1.10.2\nbogus\n"),
        _module(tmp_path, "noversion", head + "require github.com/spf13/cobra v1.99.0\n",
                f"github.com/spf13/cobra v1.99.0 {FAKE_SUM}\n"
                f"github.com/spf13/cobra v1.99.0/go.mod {FAKE_SUM}\n"),
        _module(tmp_path, "mismatch", head + "require github.com/spf13/cobra v1.10.2\n",
                cobra_sum.replace("github.com/spf13/cobra v1.10.2 h1:",
                                  "github.com/spf13/cobra v1.10.2 h1:AAAA")),
        _module(tmp_path, "nowhere", head + "require github.com/spf13/cobra v1.10.2\n"
                "replace github.com/spf13/cobra => ../no-such-folder\n", cobra_sum),
    ]
    m = matrix.load(_matrix(tmp_path, "\n".join(apps)))
    res = {r.build_id.split("_")[0]: r for r in build.build_cells(m, m.cells).values()}
    assert res["good"].status == "ok", res["good"].reason
    why = {k: r.reason for k, r in res.items() if k != "good"}
    assert all(res[k].status == "failed" and "\n" not in why[k] for k in why), why
    assert "go.mod does not parse" in why["unparsable"] and "unknown directive: bogus" in \
        why["unparsable"] and "go.mod:6" in why["unparsable"]
    if "403" not in why["noversion"] and "404" not in why["noversion"]:
        _network_or_skip(why["noversion"])
    assert "github.com/spf13/cobra@v1.99.0" in why["noversion"]  # module, version, answer
    assert "not available" in why["noversion"] or "not found" in why["noversion"]
    assert "github.com/spf13/cobra@v1.10.2" in why["mismatch"]
    assert "checksum mismatch" in why["mismatch"]
    assert "no-such-folder does not exist" in why["nowhere"]
    # Unreachable proxy, module not in the cache: the proxy's own error, named.
    monkeypatch.setenv("GOPROXY", "http://127.0.0.1:9")
    cold = _module(tmp_path, "cold", head + "require example.invalid/gone v1.0.0\n",
                   f"example.invalid/gone v1.0.0 {FAKE_SUM}\n"
                   f"example.invalid/gone v1.0.0/go.mod {FAKE_SUM}\n",
                   imports='_ "example.invalid/gone"')
    m2 = matrix.load(_matrix(tmp_path, f"  good: {{path: {DEPS_APP}}}\n{cold}"))
    res2 = {r.build_id.split("_")[0]: r for r in build.build_cells(m2, m2.cells).values()}
    assert res2["good"].status == "ok"
    assert res2["cold"].status == "failed"
    assert "example.invalid/gone@v1.0.0" in res2["cold"].reason
    assert "GOPROXY=http://127.0.0.1:9" in res2["cold"].reason
    assert "connection refused" in res2["cold"].reason
    # Nothing of a failed app is in the build cache: no entry holds its binary.
    for r in [*res.values(), *res2.values()]:
        if r.status == "failed":
            assert r.binary is None and not r.key


def test_module_fault_in_a_run_is_one_line_and_the_rest_is_measured(tmp_path: Path) -> None:
    bad = _module(tmp_path, "unparsable", "module x\n\ngo 1.21\n\nbogus\n")
    m = _matrix(tmp_path, f"  good: {{path: {DEPS_APP}}}\n{bad}",
                "measure: {runs: 3, warmup: 0, inittrace_runs: 1, phases: false, "
                "calibration: off}\n")
    p = gsb("run", "-m", str(m), "--out", str(tmp_path / "r"), "--no-report")
    out = p.stdout + p.stderr
    assert p.returncode == 1, out  # a cell failed; the run itself worked
    assert "Traceback" not in out
    line = next(ln for ln in out.splitlines() if ln.strip().startswith("unparsable"))
    assert "go.mod does not parse" in line and "unknown directive: bogus" in line
    run = json.loads((tmp_path / "r" / "run.json").read_text())
    assert run["cells"]["ok"] == 1 and run["cells"]["failed"] == 1


def test_user_module_settings_pass_through(monkeypatch: pytest.MonkeyPatch) -> None:
    from gostartbench.host.tools import go_env

    for k, v in {"GOPROXY": "https://proxy.example.invalid", "GOPRIVATE": "corp.invalid/*",
                 "GONOSUMDB": "corp.invalid/*", "GOFLAGS": "-mod=mod",
                 "GOTOOLCHAIN": "local", "GOARCH": "riscv64"}.items():
        monkeypatch.setenv(k, v)
    env = go_env()
    assert env["GOPROXY"] == "https://proxy.example.invalid"
    assert env["GOPRIVATE"] == env["GONOSUMDB"] == "corp.invalid/*"
    assert env["GOFLAGS"] == "-mod=mod"
    assert "GOARCH" not in env  # not a module setting: a cell's target is the matrix's to say
    monkeypatch.delenv("GOTOOLCHAIN")
    assert go_env()["GOTOOLCHAIN"] == "local"  # never fetch another toolchain unasked


def test_a_package_deep_inside_a_module_outside_the_repo(tmp_path: Path) -> None:
    """The user's own service: a module anywhere on disk, its main package folders deep."""
    root = tmp_path / "myservice"
    deep = root / "cmd" / "tools" / "api"
    deep.mkdir(parents=True)
    (root / "go.mod").write_text("module example.test/myservice\n\ngo 1.21\n")
    (root / "internal").mkdir()
    (root / "internal" / "greet.go").write_text(
        'package internal\n\nfunc Greet() string { return "deep ok" }\n')
    (deep / "main.go").write_text('package main\n\nimport (\n\t"fmt"\n\n'
                                  '\t"example.test/myservice/internal"\n)\n\n'
                                  "func main() { fmt.Println(internal.Greet()) }\n")
    m = matrix.load(_matrix(tmp_path, f"  api: {{path: {deep}}}"))
    res = next(iter(build.build_cells(m, m.cells).values()))
    assert res.status == "ok", res.reason
    assert res.binary is not None
    out = subprocess.run([str(res.binary)], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "deep ok"
    rows = build.deps_rows({res.build_id: res})
    own = next(r for r in rows if r["package"] == "example.test/myservice/internal")
    assert own["module"] == "example.test/myservice"
