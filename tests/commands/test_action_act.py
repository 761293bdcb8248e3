"""action.yml under a real GitHub Actions runner: nektos/act (a Go module, built here from the
Go module proxy at a pinned version) runs a pull-request workflow that `uses:` this action, in
host mode (`-P ubuntu-latest=-self-hosted`: the steps run on this machine, no container), with
the action mapped from this checkout by `--local-repository`.

No action registry is reachable here, so `actions/setup-python` and `actions/upload-artifact`,
which the action `uses:`, are local stand-ins (composite actions that only say so); the
workflow's own `actions/checkout` is act's copy of the repository. The comment is turned off
(tests/commands/test_action.py covers it, with a stand-in for GitHub's API). What is checked is
what act itself reports in its JSON log: the action's outputs `verdict` and `exit-code`, the
job summary its step writes, and the job's result — for an A/A pull request of two distinct
builds (a comment-only change: it passes) and for a head whose init busy-waits 3 ms (it
fails). tests/commands/test_action.py stays for what act does not cover.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gostartbench.host.tools import cache_dir, get_toolchain, go_env
from gostartbench.matrix import DEFAULT_TOOLCHAIN
from tests.conftest import GOAPPS, REPO, skip_or_fail

ACT_MODULE = "github.com/nektos/act"
ACT_VERSION = "v0.2.89"
ACTION_REF = "acme/gostartbench@v1"
STAND_INS = {"actions/setup-python@v6": ["python-version"],
             "actions/upload-artifact@v6": ["name", "path", "if-no-files-found"]}
HELLO = (GOAPPS / "hello" / "main.go").read_text()
SLOW = HELLO.replace('import "fmt"', 'import (\n\t"fmt"\n\t"time"\n)') + """
func init() {
	t0 := time.Now()
	for time.Since(t0) < 3*time.Millisecond {
	}
}
"""
WORKFLOW = """name: startup gate
on: pull_request
jobs:
  gate:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v5
      - id: gate
        uses: {action}
        with:
          comment: "false"
"""

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def act() -> Path:
    """act, built once per cache from the Go module proxy (through GOPROXY as set here)."""
    out = cache_dir() / "tools" / f"act-{ACT_VERSION}"
    binary = out / "act"
    if binary.is_file():
        return binary
    tc = get_toolchain(DEFAULT_TOOLCHAIN)
    env = go_env(tc.goroot, {"GOBIN": str(out / ".tmp"), "CGO_ENABLED": "0"})
    p = subprocess.run([str(tc.go), "install", f"{ACT_MODULE}@{ACT_VERSION}"], env=env,
                       capture_output=True, text=True, check=False, timeout=1200,
                       cwd=cache_dir())
    if p.returncode != 0:
        skip_or_fail("act", f"`go install {ACT_MODULE}@{ACT_VERSION}` failed: "
                     f"{p.stderr.strip()[-300:]}")
    os.replace(out / ".tmp" / "act", binary)
    return binary


def _stand_ins(root: Path) -> list[str]:
    """A stand-in folder per action this one uses, and act's arguments that map them."""
    args = []
    for ref, inputs in STAND_INS.items():
        d = root / ref.split("/")[1].split("@")[0]
        d.mkdir(parents=True)
        (d / "action.yml").write_text(
            f"name: local stand-in for {ref}\n"
            "description: no action registry is reachable from this machine\n"
            "inputs:\n" + "".join(f"  {i}:\n    description: as the real one's\n"
                                  "    default: ''\n" for i in inputs)
            + "runs:\n  using: composite\n  steps:\n    - shell: bash\n"
            f"      run: echo 'stand-in for {ref}'\n")
        args += ["--local-repository", f"{ref}={d}"]
    return args


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=gsb", "-c", "user.email=gsb@example.test",
                           *args], cwd=repo, capture_output=True, text=True, check=True
                          ).stdout.strip()


def _pull_request(tmp: Path, head_src: str) -> tuple[Path, Path]:
    """A repository with a Go module at its root (its folder's name says nothing), the base
    commit, and a head commit changing main.go; the event file of a pull request between."""
    repo = tmp / "checkout"
    (repo / ".github" / "workflows").mkdir(parents=True)
    _git(tmp, "init", "-q", "-b", "main", str(repo))
    (repo / "go.mod").write_text("module example.test/greeter\n\ngo 1.21\n")
    (repo / "main.go").write_text(HELLO)
    (repo / ".github" / "workflows" / "gate.yml").write_text(WORKFLOW.format(action=ACTION_REF))
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "base")
    base = _git(repo, "rev-parse", "HEAD")
    (repo / "main.go").write_text(head_src)
    _git(repo, "commit", "-qam", "head")
    event = tmp / "event.json"
    event.write_text(json.dumps({"pull_request": {
        "number": 1, "base": {"sha": base}, "head": {"sha": _git(repo, "rev-parse", "HEAD")}}}))
    return repo, event


def _act(binary: Path, tmp: Path, head_src: str) -> dict[str, Any]:
    """One pull_request workflow run under act: the gate step's outputs, the job summary, the
    job's result, and the log."""
    repo, event = _pull_request(tmp, head_src)
    argv = [str(binary), "pull_request", "-e", str(event), "--json",
            "-P", "ubuntu-latest=-self-hosted", "--local-repository",
            f"{ACTION_REF}={REPO}", *_stand_ins(tmp / "stand-ins")]
    # this environment's Python (where gostartbench is installed) first, as setup-python would
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    p = subprocess.run(argv, cwd=repo, env=env, capture_output=True, text=True, check=False,
                       timeout=1500)
    entries = []
    for line in p.stdout.splitlines():
        try:
            entries.append(json.loads(line))
        except ValueError:
            continue
    outputs = {e["name"]: e["arg"] for e in entries
               if e.get("command") == "set-output" and e.get("stepID", [""])[0] == "gate"
               and "name" in e}
    summary = "".join(e.get("content", "") for e in entries if e.get("command") == "summary")
    results = [e.get("jobResult") for e in entries if e.get("jobResult")]
    return {"code": p.returncode, "outputs": outputs, "summary": summary,
            "job": results[-1] if results else "", "log": p.stdout[-3000:] + p.stderr[-2000:]}


@pytest.fixture(autouse=True)
def _no_act_leftovers() -> Iterator[None]:
    """act's host mode works in ~/.cache/act/<run>/ (the copy of the repository, RUNNER_TEMP)
    and leaves the emptied folder behind: the ones this test made are removed."""
    root = Path.home() / ".cache" / "act"
    before = set(root.iterdir()) if root.is_dir() else set()
    yield
    for d in (set(root.iterdir()) if root.is_dir() else set()) - before:
        shutil.rmtree(d, ignore_errors=True)


def test_the_action_under_act_passes_two_builds_of_the_same_code(act: Path,
                                                                 tmp_path: Path) -> None:
    got = _act(act, tmp_path, HELLO + "\n// a comment-only change\n")
    out, summary = got["outputs"], got["summary"]
    assert out.get("verdict") == "pass", got["log"]
    assert out.get("exit-code") == "0"
    assert got["job"] == "success" and got["code"] == 0, got["log"]
    # the job summary is the gate's comment: its verdict line first, the app by its module
    assert summary.startswith("## ✅ Startup gate passed"), summary
    assert "greeter" in summary and "checkout" not in summary.split("<details>")[0]
    assert out.get("run-dir") and out.get("comment-file")


def test_the_action_under_act_fails_a_head_whose_init_is_3_ms_slower(act: Path,
                                                                     tmp_path: Path) -> None:
    got = _act(act, tmp_path, SLOW)
    out, summary = got["outputs"], got["summary"]
    assert out.get("verdict") == "fail", got["log"]
    assert out.get("exit-code") == "1"
    assert got["job"] == "failure" and got["code"] != 0
    assert summary.startswith("## ❌ Startup gate failed"), summary
    assert "greeter" in summary.split("<details>")[0]
