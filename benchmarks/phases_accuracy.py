"""The phase tracer's accuracy, on real binaries: a busy-wait of 0.5 and 2 ms injected into
init() must land in package init within max(40 µs, 5%) (the median of per-round differences
against no delay, the three traced back to back each round), and in the runtime stage
`package_inits`. Then known runtime costs must land in their stages: GOMAXPROCS=1024 (against
1) in `procs` (runtime.procresize allocating the Ps) and in `package_inits`, and a 20,000-variable
environment in `m0_modules` (goenvs copies it); every stage's median change is printed, and,
where bpftrace can run (root), what the runtime did more under GOMAXPROCS=1024 (calls counted
by uprobes). Prints each figure against its tolerance as a ratio measured in this run; not a
test (timing asserts do not belong in tests on a noisy machine). Run it on a quiet host:

    python benchmarks/phases_accuracy.py [--runs 51] [--knob-runs 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from gostartbench.build.calib import calib_programs
from gostartbench.measure import uprobe
from gostartbench.measure.spec import RunSpec
from gostartbench.measure.trace import (
    Target,
    phases,
    stages,
    stop_cost,
    target_for,
    trace_run,
)
from gostartbench.results.schema import STAGES

# Runtime functions whose calls tell what GOMAXPROCS=1024 adds (counted by uprobes).
COUNTED = ("runtime.gcStart", "runtime.gcBgMarkStartWorkers", "runtime.newm",
           "runtime.findRunnable", "runtime.stealWork")


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=51)
    p.add_argument("--knob-runs", type=int, default=15)
    a = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gsb-phases-"))
    progs = calib_programs()
    noop, delay = progs["noop"], progs["delay"]
    t_noop, t = target_for(noop, noop, "1.27.3"), target_for(delay, delay, "1.27.3")
    assert isinstance(t_noop, Target) and isinstance(t, Target)
    stop = float(stop_cost(noop, t_noop, work, runs=30, with_stages=True)["stop_ns"])
    specs = {us: RunSpec(argv=(str(delay),), env={**os.environ, "GSB_DELAY_US": str(us)})
             for us in (0, 500, 2000)}
    diffs: dict[int, list[float]] = {500: [], 2000: []}
    in_stage: dict[int, list[float]] = {500: [], 2000: []}
    for _ in range(a.runs):
        marks = {us: trace_run(s, t, work).marks for us, s in specs.items()}
        init = {us: {ph: d for ph, _, d in phases(m, False, stop)}["package_init"] / 1e6
                for us, m in marks.items()}
        inits = {us: {st.name: d for st, _, d in stages(m, stop)}.get("package_inits", 0) / 1e6
                 for us, m in marks.items()}
        for us in diffs:
            diffs[us].append(init[us] - init[0])
            in_stage[us].append(inits[us] - inits[0])
    print(f"stop cost on this host: {stop / 1000:.0f} µs per stop (subtracted)")
    ok = True
    for us, d in diffs.items():
        got, want = statistics.median(d), us / 1000
        tol = max(0.040, 0.05 * want)
        err = got - want
        ok = ok and abs(err) <= tol
        print(f"injected {want:.2f} ms → package init +{got:.3f} ms: error {err * 1000:+.0f} µs, "
              f"{abs(err) / tol:.2f} × the tolerance ±{tol * 1000:.0f} µs")
    for us, d in in_stage.items():
        print(f"  {us / 1000:.2f} ms, of which in the stage package_inits: "
              f"+{statistics.median(d):.3f} ms")
    print("target met" if ok else "target NOT met on this host now")
    knobs(delay, t, stop, work, a.knob_runs)
    return 0


def knobs(binary: Path, t: Target, stop: float, work: Path, runs: int) -> None:
    """Known runtime costs, traced in paired rounds against the same binary without them:
    every stage's median change, and the stages that moved beyond max(40 µs, 5%)."""
    base_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GSB_DELAY_US": "0"}
    big_env = {**base_env, **{f"GSB_PAD_{i}": "x" * 16 for i in range(20_000)}}
    cases = {
        "GOMAXPROCS=1024 (against 1)": ({**base_env, "GOMAXPROCS": "1"},
                                        {**base_env, "GOMAXPROCS": "1024"}),
        "20,000 environment variables": (base_env, big_env),
    }
    for name, (env_a, env_b) in cases.items():
        per: dict[str, list[float]] = {}
        for _ in range(runs):
            ma = trace_run(RunSpec(argv=(str(binary),), env=env_a), t, work).marks
            mb = trace_run(RunSpec(argv=(str(binary),), env=env_b), t, work).marks
            sa = {st.name: d for st, _, d in stages(ma, stop)}
            sb = {st.name: d for st, _, d in stages(mb, stop)}
            for k in sa.keys() & sb.keys():
                per.setdefault(k, []).append((sb[k] - sa[k]) / 1e6)
            base_all = {st.name: d for st, _, d in stages(ma, stop)}
            for k, v in base_all.items():
                per.setdefault("_base_" + k, []).append(v / 1e6)
        print(f"\n{name}: median change per stage over {runs} paired traced runs")
        for st in STAGES:
            if st.name not in per:
                continue
            d = statistics.median(per[st.name])
            base = statistics.median(per["_base_" + st.name])
            moved = abs(d) > max(0.040, 0.05 * base)
            print(f"  {st.name:18} {base:8.3f} ms → {d:+9.3f} ms"
                  + ("   ← moved" if moved else ""))
    counted(binary)


def counted(binary: Path) -> None:
    """With bpftrace: calls of COUNTED functions in one start with GOMAXPROCS=1 and 1024."""
    if uprobe.uprobe_refused():
        print(f"\n(no call counts: {uprobe.uprobe_refused()})")
        return
    prog = "".join(f'uprobe:{binary}:{fn} {{ @n[pid, "{fn}"] = count(); }}\n' for fn in COUNTED)
    bt = Path(tempfile.mkdtemp()) / "count.bt"
    bt.write_text(prog)
    p = subprocess.Popen(["bpftrace", str(bt)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         text=True, start_new_session=True)
    time.sleep(8)  # bpftrace compiles and attaches
    pids = {}
    for procs in ("1", "1024"):
        c = subprocess.Popen([str(binary)], env={"GOMAXPROCS": procs, "PATH": "/usr/bin:/bin"})
        c.wait()
        pids[c.pid] = procs
    time.sleep(0.5)
    p.terminate()
    out, _ = p.communicate(timeout=30)
    print("\nCalls in one start (uprobes), GOMAXPROCS=1 → 1024:")
    counts: dict[tuple[str, str], int] = {}
    for line in out.splitlines():
        if line.startswith("@n["):
            key, n = line.split("]:")
            pid, fn = key[3:].split(", ")
            if int(pid) in pids:
                counts[(pids[int(pid)], fn.strip('"'))] = int(n)
    for fn in COUNTED:
        print(f"  {fn:32} {counts.get(('1', fn), 0):6} → {counts.get(('1024', fn), 0):6}")


if __name__ == "__main__":
    raise SystemExit(main())
