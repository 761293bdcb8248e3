"""action.yml, driven end to end: its `run:` steps, as written, with its inputs as environment,
on a throwaway Git repository holding a real Go service (goapps/services/cobracli) — an A/A
pair passes with the matrix `gostartbench init` writes on the fly; a head that bumps cobra and
starts about 8% slower fails, and its comment names the dependency and the module whose init
grew. The pull-request comment goes to
a local stand-in for GitHub's REST API (the real one is out of reach here): posted once, then
updated, never a second comment. `uses:` steps (setup-python, upload-artifact) are GitHub's
own and are not run here."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

from gostartbench.host.tools import get_toolchain, go_env
from gostartbench.matrix import DEFAULT_TOOLCHAIN
from gostartbench.measure import RunSpec, SpawnExecutor
from tests.conftest import FIXTURES, GOAPPS, REPO

ACTION = REPO / "action.yml"
SERVICE = GOAPPS / "services" / "cobracli"
EXPR = re.compile(r"\$\{\{\s*([^}]+?)\s*\}\}")
SLOW_INIT = """
func init() {
	t0 := time.Now()
	for time.Since(t0) < %d*time.Microsecond {
	}
}
"""
SMALL_GATE = """version: 1
apps:
  cobracli: {path: ".", expect: {exit: 0}}
measure: {precision: 0.02, runs: 30, max_runs: 1500, budget_s: 60, inittrace: true,
          inittrace_runs: 10, phases: false, calibration: "off"}
"""


class FakeGitHub(BaseHTTPRequestHandler):
    """Issue comments of one pull request, as GitHub's REST API serves them."""

    comments: ClassVar[list[dict[str, Any]]] = []
    calls: ClassVar[list[tuple[str, str]]] = []

    def _send(self, code: int, obj: Any) -> None:
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> dict[str, Any]:
        n = int(self.headers.get("Content-Length", 0))
        return dict(json.loads(self.rfile.read(n))) if n else {}

    def do_GET(self) -> None:
        self.calls.append(("GET", self.path))
        self._send(200, self.comments if "page=1" in self.path else [])

    def do_POST(self) -> None:
        self.calls.append(("POST", self.path))
        c = {"id": len(self.comments) + 1, "body": self._body()["body"]}
        self.comments.append(c)
        self._send(201, c)

    def do_PATCH(self) -> None:
        self.calls.append(("PATCH", self.path))
        cid = int(self.path.rsplit("/", 1)[1])
        for c in self.comments:
            if c["id"] == cid:
                c["body"] = self._body()["body"]
        self._send(200, {"id": cid})

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def github() -> Iterator[str]:
    FakeGitHub.comments, FakeGitHub.calls = [], []
    server = HTTPServer(("127.0.0.1", 0), FakeGitHub)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _resolve(text: str, ctx: dict[str, Any]) -> str:
    """The action's `${{ … }}` expressions this file uses: inputs, github.*, step outputs."""
    def one(m: re.Match[str]) -> str:
        expr = m.group(1)
        head, _, rest = expr.partition(".")
        if head == "inputs":
            return str(ctx["inputs"][rest])
        if head == "github":
            return str(ctx["github"][rest])
        if head == "steps":
            sid, _, out = rest.partition(".outputs.")
            return str(ctx["steps"].get(sid, {}).get(out, ""))
        raise AssertionError(f"an expression the action should not use: {expr}")
    return EXPR.sub(one, text)


def run_action(inputs: dict[str, str], env: dict[str, str], tmp: Path
               ) -> tuple[int, dict[str, dict[str, str]], list[str]]:
    """Every `run:` step of action.yml in order, as a composite action runs them (bash -eo
    pipefail; a failing step ends the action); the exit code, step outputs and skipped uses."""
    spec = yaml.safe_load(ACTION.read_text())
    assert spec["runs"]["using"] == "composite"
    values = {k: str(v.get("default", "")) for k, v in spec["inputs"].items()}
    values.update(inputs)
    ctx: dict[str, Any] = {"inputs": values, "steps": {},
                           "github": {"action_path": str(REPO), "token": "unused"}}
    ctx["inputs"]["token"] = inputs.get("token", "")
    skipped = []
    for i, step in enumerate(spec["runs"]["steps"]):
        if "uses" in step:
            skipped.append(step["uses"])
            continue
        assert step["shell"] == "bash" and "${{" not in step["run"], step
        out = tmp / f"step-{i}.out"
        out.write_text("")
        step_env = {k: _resolve(str(v), ctx) for k, v in (step.get("env") or {}).items()}
        p = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c",
                            step["run"]], env={**env, **step_env, "GITHUB_OUTPUT": str(out)},
                           capture_output=True, text=True, timeout=1800, check=False)
        print(f"--- step {step.get('name')}\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
        if "id" in step:
            ctx["steps"][step["id"]] = dict(
                ln.split("=", 1) for ln in out.read_text().splitlines() if "=" in ln)
        if p.returncode != 0:
            return p.returncode, ctx["steps"], skipped
    return 0, ctx["steps"], skipped


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          check=True, env={**os.environ, "GIT_AUTHOR_NAME": "t",
                                           "GIT_AUTHOR_EMAIL": "t@example.invalid",
                                           "GIT_COMMITTER_NAME": "t",
                                           "GIT_COMMITTER_EMAIL": "t@example.invalid"}
                          ).stdout.strip()


def _p50_us(src: Path, tmp: Path) -> float:
    """The service's start here (P50 of 200 runs, µs): the +8% head's delay is a share of it."""
    tc = get_toolchain(DEFAULT_TOOLCHAIN)
    binary = tmp / "cobracli-base"
    subprocess.run([str(tc.go), "build", "-o", str(binary), "."], cwd=src, check=True,
                   env=go_env(tc.goroot, {"CGO_ENABLED": "0"}), capture_output=True)
    ex = SpawnExecutor()
    try:
        spec = RunSpec(argv=(str(binary),), env={})
        walls = sorted(r.wall_ns for r in ex.run_many((spec, None, None) for _ in range(220)))
    finally:
        ex.close()
    return walls[len(walls) // 2] / 1e3


def test_the_action_passes_an_a_a_pair_and_fails_a_slower_head_naming_the_bump(
        tmp_path: Path, github: str) -> None:
    if shutil.which("git") is None:
        pytest.fail("git is needed (it is part of the action's environment)")
    repo = tmp_path / "repo"
    repo.mkdir()
    for f in ("main.go", "go.mod", "go.sum"):
        shutil.copy(SERVICE / f, repo / f)
    for f in ("go.mod", "go.sum"):  # the base: cobra one release older
        shutil.copy(FIXTURES / "cobra-base" / f, repo / f)
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "base")
    base = _git(repo, "rev-parse", "HEAD")
    (repo / "README.md").write_text("a change that does not touch the program\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "a/a")
    runner = tmp_path / "runner"
    runner.mkdir()
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": 7, "base": {"sha": base}}}))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "GITHUB_WORKSPACE": str(repo), "RUNNER_TEMP": str(runner),
           "GITHUB_EVENT_PATH": str(event), "GITHUB_EVENT_NAME": "pull_request",
           "GITHUB_REPOSITORY": "someone/service", "GITHUB_API_URL": github,
           "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md")}

    # A/A, with every input at its default: the matrix comes from `gostartbench init`
    code, steps, skipped = run_action({"token": "t0ken"}, env, tmp_path)
    comment = Path(steps["gate"]["comment"]).read_text()
    assert code == 0 and steps["gate"]["verdict"] == "pass", comment
    assert comment.startswith("## ✅ Startup gate passed"), comment
    assert (repo / ".gostartbench" / "gate.yaml").is_file()  # written on the fly
    assert comment in (tmp_path / "summary.md").read_text()  # the job summary is the comment
    assert skipped == ["actions/setup-python@v6", "actions/upload-artifact@v6"]
    assert [c[0] for c in FakeGitHub.calls] == ["GET", "POST"]
    assert FakeGitHub.comments[0]["body"].endswith(comment)

    # the head bumps cobra v1.9.1 → v1.10.2 and busy-waits in its own init: 10% of the start a
    # plain `go build` of it has here, which the gate reads as about +8% (its build and
    # conditions differ)
    delay_us = round(0.10 * _p50_us(repo, tmp_path))
    for f in ("go.mod", "go.sum"):
        shutil.copy(SERVICE / f, repo / f)
    src = (repo / "main.go").read_text().replace('"fmt"\n', '"fmt"\n\t"time"\n', 1)
    (repo / "main.go").write_text(src + SLOW_INIT % delay_us)
    (repo / "gate-small.yaml").write_text(SMALL_GATE)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "bump cobra; slower init")
    code, steps, _ = run_action({"token": "t0ken", "matrix": "gate-small.yaml"}, env, tmp_path)
    comment = Path(steps["gate"]["comment"]).read_text()
    assert code == 1 and steps["gate"]["verdict"] == "fail", comment
    assert comment.startswith("## ❌ Startup gate failed"), comment
    visible = comment.split("<details>")[0]
    assert "cobracli" in visible and "`startup>+5%`" in visible
    assert "### Which dependency moved" in visible
    assert re.search(r"github\.com/spf13/cobra \(direct\) \| v1\.9\.1 → v1\.10\.2", visible), \
        visible
    # the busy-wait is the app's own init: its module's row, not the standard library's
    own = next(ln for ln in visible.splitlines()
               if ln.startswith("| gostartbench.example/services/cobracli"))
    assert "(this module)" in own and "n.s." not in own and "| +" in own, own
    # the same comment, updated in place: still one
    assert [c[0] for c in FakeGitHub.calls][-2:] == ["GET", "PATCH"]
    assert len(FakeGitHub.comments) == 1 and FakeGitHub.comments[0]["body"].endswith(comment)
