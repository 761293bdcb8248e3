"""Sessions: bench (the main job), tests, lint, report, notebook, arm64. Each calls the
package (arm64: the check script under .ci/)."""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint"]
nox.options.reuse_existing_virtualenvs = True


@nox.session
def bench(session: nox.Session) -> None:
    """Build and time every cell of matrix.yaml into results/<run-id>/ (args: see `run`)."""
    session.install("-e", ".")
    # Missing Debian tools (upx, musl-gcc, …): installed when this user may, else the one
    # command that installs them is printed; the run goes on either way.
    session.run("gostartbench", "doctor", "--install", success_codes=[0, 1])
    session.run("gostartbench", "run", *session.posargs)


@nox.session
def tests(session: nox.Session) -> None:
    """The framework's own tests: real Go toolchain, strip, upx and hyperfine."""
    session.install("-e", ".[test]")
    session.run("pytest", *(session.posargs or ["tests"]))


@nox.session
def lint(session: nox.Session) -> None:
    """ruff, mypy (strict, over src, tests, bench and benchmarks) and actionlint."""
    session.install("-e", ".[lint,test]")  # mypy checks the tests and the notebook runner too
    session.run("ruff", "check", "src", "tests", "bench", "benchmarks", "noxfile.py",
                ".ci/arm64_check.py")
    session.run("mypy")
    session.run("actionlint", ".github/workflows/bench.yml")


@nox.session
def report(session: nox.Session) -> None:
    """Redraw statistics, charts and report of a run folder (default: results/example)."""
    session.install("-e", ".")
    session.run("gostartbench", "report", *(session.posargs or ["results/example"]))


@nox.session
def notebook(session: nox.Session) -> None:
    """Execute notebooks/analysis.ipynb against a run folder (default: results/example)."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "gostartbench.report.notebook", *session.posargs)


@nox.session(python=False)
def arm64(session: nox.Session) -> None:
    """The whole pipeline on an emulated arm64 root (qemu-user, debootstrap; needs root)."""
    session.run("python3", ".ci/arm64_check.py", *session.posargs, external=True)
