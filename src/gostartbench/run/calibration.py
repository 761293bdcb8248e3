"""The calibration's measuring loops (`gostartbench calibrate`, and the floor every run.json
records): each returns raw wall times (ns) and nothing derived; analysis/calibration.py turns
them into figures.

- floor: the no-op static Go program timed by the framework's loop, the minimal C posix_spawn +
  wait loop (the helper's -n mode) and `hyperfine -N`, in alternating blocks;
- ladder: a program that busy-waits in init() for a delay given at run time, at each of
  LADDER_MS, in shuffled interleaved rounds;
- A/A: the no-op and a byte-identical copy, interleaved;
- instruments: the phases of one program by the ptrace tracer and by eBPF uprobes, with each
  mark's own stop cost and the uprobes' own cost.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import random
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from gostartbench.build.calib import calib_programs
from gostartbench.host.tools import cache_dir, find_tool
from gostartbench.matrix import DEFAULT_TOOLCHAIN
from gostartbench.measure import (
    RunSpec,
    SpawnExecutor,
    helper_path,
    normalise_warm,
    parse_helper_line,
    parse_hyperfine_json,
)
from gostartbench.run.schedule import shuffled_rounds

LADDER_MS = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0)


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("GSB_")}


def quick_floor(cpus: tuple[int, ...] | None = None, runs: int = 40,
                toolchain: str = DEFAULT_TOOLCHAIN) -> dict[str, Any]:
    """The harness floor recorded in every run.json: P50 of the no-op program, ms."""
    progs = calib_programs(toolchain)
    ex = SpawnExecutor()
    try:
        spec = RunSpec(argv=(str(progs["noop"]),), env=clean_env(), cpus=cpus)
        walls = [r.wall_ns for r in ex.run_many((spec, None, None) for _ in range(runs + 5))][5:]
    finally:
        ex.close()
    return {"noop_p50_ms": statistics.median(walls) / 1e6, "runs": runs,
            "program": f"static no-op Go binary (go {toolchain}, cgo=0)"}


def engine_floor(runs: int = 10, toolchain: str = DEFAULT_TOOLCHAIN,
                 engine_name: str = "auto", run_id: str = "") -> dict[str, Any]:
    """The container engine's own cost, like the harness floor: P50 of the engine's `run --rm`
    of the static no-op in `scratch` (ms), beside the no-op's own start inside that image."""
    from gostartbench.measure import container

    eng, why = container.find_engine(engine_name)
    why = container.usable(eng, why)
    if why or eng is None:
        return {"skipped": why}
    noop = calib_programs(toolchain)["noop"]
    img = container.cell_image(eng, container.SCRATCH, noop,
                               hashlib.sha256(noop.read_bytes()).hexdigest())
    rid = run_id or f"floor-{os.getpid()}"
    ex = SpawnExecutor()
    try:
        outer = RunSpec(argv=tuple(container.engine_argv(eng, img, rid, None, {}, [])),
                        env=clean_env(), timeout_s=60)
        inner = RunSpec(argv=(container.IN_IMAGE,), env={},
                        inside=container.inside(eng, img, rid, None, ""))
        eng_ms = [r.wall_ns / 1e6 for r in ex.run_many((outer, None, None)
                                                        for _ in range(runs + 1))][1:]
        own_ms = [r.wall_ns / 1e6 for r in ex.run_many((inner, None, None)
                                                        for _ in range(runs + 1))][1:]
    finally:
        ex.close()
        container.cleanup(eng, rid)
    return {"engine": eng.name, "engine_run_p50_ms": round(statistics.median(eng_ms), 2),
            "noop_inside_p50_ms": round(statistics.median(own_ms), 3), "runs": runs,
            "program": f"static no-op Go binary (go {toolchain}, cgo=0) in scratch"}


def c_loop(binary: Path, runs: int, cpus: tuple[int, ...] | None) -> list[int]:
    """The minimal C loop: the helper spawning the program `runs` times back to back."""
    argv = [str(helper_path()), "-n", str(runs)]
    if cpus:
        argv += ["-c", ",".join(map(str, cpus))]
    p = subprocess.run([*argv, "--", str(binary)], capture_output=True, text=True, env=clean_env(),
                       check=True)
    return [int(parse_helper_line(ln)["wall_ns"]) for ln in p.stdout.splitlines()
            if ln.startswith("status=")]


def hyperfine_loop(binary: Path, runs: int) -> list[int] | None:
    """`hyperfine -N` over a binary: its per-run wall times (ns), or None without hyperfine."""
    hf = find_tool("hyperfine")
    if not hf.found or hf.path is None:
        return None
    out = cache_dir() / f"calib-hyperfine-{os.getpid()}.json"
    subprocess.run([hf.path, "-N", "--style", "none", "--runs", str(runs), "--warmup", "10",
                    "--export-json", str(out), "--", str(binary)], capture_output=True,
                   check=True, env=clean_env())
    _, measured = parse_hyperfine_json(json.loads(out.read_text()))  # hyperfine 1.x or 2.x
    out.unlink(missing_ok=True)
    return [m.wall_ns for m in measured]


def floor_runs(ex: SpawnExecutor, noop: RunSpec, binary: Path, runs: int,
                cpus: tuple[int, ...] | None) -> tuple[list[int], list[int], list[int]]:
    """The no-op timed by the framework's loop, the C loop and hyperfine, in alternating
    blocks so drift favours none. Blocks of about 30 runs: noise comes in bursts of seconds,
    and a burst that falls in one loop's block of 100 would pass for that loop's own noise."""
    fw: list[int] = []
    cl: list[int] = []
    hf: list[int] = []
    blocks = max(5, runs // 30)
    for _ in range(blocks):
        fw += [r.wall_ns for r in ex.run_many((noop, None, None) for _ in range(runs // blocks))]
        cl += c_loop(binary, runs // blocks, cpus)
        h = hyperfine_loop(binary, runs // blocks)
        if h is not None:
            hf += h
    return fw, cl, hf


def ladder_runs(ex: SpawnExecutor, ladder: dict[float, RunSpec], runs: int,
                 rng: random.Random) -> dict[float, list[int]]:
    """The delay ladder in interleaved rounds, shuffled each round."""
    walls: dict[float, list[int]] = {d: [] for d in LADDER_MS}
    order = [d for rnd in shuffled_rounds(LADDER_MS, runs, rng) for d in rnd]
    for d, r in zip(order, ex.run_many((ladder[d], None, None) for d in order), strict=True):
        walls[d].append(r.wall_ns)
    return walls


def aa_runs(ex: SpawnExecutor, noop: RunSpec, binary: Path, runs: int,
             cpus: tuple[int, ...] | None, rng: random.Random) -> dict[str, list[int]]:
    """A/A: the no-op and a byte-identical copy of it (written by write(), then both evicted
    and read back the same way right before their rounds), as two cells interleaved."""
    copy = binary.with_name("noop-aa-copy")
    shutil.copyfile(binary, copy)
    copy.chmod(0o755)
    aa_spec = RunSpec(argv=(str(copy),), env=clean_env(), cpus=cpus)
    order = [k for pair in shuffled_rounds(["a", "b"], runs, rng) for k in pair]
    normalise_warm([binary, copy])
    for _ in ex.run_many((s, None, None) for s in [noop, aa_spec] * 10):
        pass
    specs = {"a": noop, "b": aa_spec}
    aa: dict[str, list[int]] = {"a": [], "b": []}
    for k, r in zip(order, ex.run_many((specs[k], None, None) for k in order), strict=True):
        aa[k].append(r.wall_ns)
    return aa


def calibration_runs(runs: int, cpus: tuple[int, ...] | None, seed: int, toolchain: str
                     ) -> dict[str, Any]:
    """Every loop of `gostartbench calibrate`, raw: floor (framework, C loop, hyperfine),
    ladder (delay → walls), A/A (a, b → walls)."""
    progs = calib_programs(toolchain)
    ex = SpawnExecutor()
    noop = RunSpec(argv=(str(progs["noop"]),), env=clean_env(), cpus=cpus)
    ladder = {d: RunSpec(argv=(str(progs["delay"]),),
                         env={**clean_env(), "GSB_DELAY_US": str(round(d * 1000))}, cpus=cpus)
              for d in LADDER_MS}
    order_rng = random.Random(seed)
    try:
        for _ in range(20):  # warm up every program and the helper
            ex.run(noop)
            for s in ladder.values():
                ex.run(s)
        floor = floor_runs(ex, noop, progs["noop"], runs, cpus)
        walls = ladder_runs(ex, ladder, runs, order_rng)
        aa = aa_runs(ex, noop, progs["noop"], runs, cpus, order_rng)
    finally:
        ex.close()
    return {"floor": floor, "ladder": walls, "aa": aa, "delay_program": progs["delay"]}


def instrument_runs(binary: Path, toolchain: str, runs: int = 40) -> dict[str, Any]:
    """The phases of one Go program timed by both instruments — the ptrace tracer and eBPF
    uprobes — each over `runs` runs, raw (phase → durations, ms, nothing subtracted) and
    corrected (each mark's own cost subtracted from the phase after it), with each mark's own
    stop cost and each uprobe's own cost measured now on this program (leave one out), and the
    one-average stop cost runs used before; or {"skipped": why} where either cannot run here."""
    from gostartbench.measure import uprobe
    from gostartbench.measure.trace import (
        Target,
        mark_costs,
        phases,
        ptrace_refused,
        stop_cost,
        target_for,
        trace_run,
    )

    work = Path(tempfile.mkdtemp(prefix="gsb-cal-"))
    try:
        why = ptrace_refused(work) or uprobe.uprobe_refused()
        t = target_for(binary, binary, toolchain)
        if why or not isinstance(t, Target):
            return {"skipped": why or str(t)}
        spec = RunSpec(argv=(str(binary),), env={**clean_env(), "GSB_DELAY_US": "0"})
        average = float(stop_cost(binary, t, work)["stop_ns"])
        stops = mark_costs(binary, t, work, runs=runs)["stop_ns_by_mark"]
        traced: list[dict[str, int]] = [
            dict(trace_run(spec, t, work, stages=False).marks) for _ in range(runs)]
        ex = SpawnExecutor()
        try:
            probes = uprobe.probe_costs(
                binary, t, lambda b: ex.run(dataclasses.replace(spec, argv=(str(b),))),
                runs=runs)

            def run_all() -> None:
                for _ in range(runs):
                    ex.run(spec)

            seen = uprobe.probe_runs({binary: t}, run_all)
        except RuntimeError as exc:
            return {"skipped": str(exc)}
        finally:
            ex.close()

        def by_phase(rows: list[list[tuple[str, int, int]]]) -> dict[str, list[float]]:
            out: dict[str, list[float]] = {}
            for row in rows:
                for ph, _, d in row:
                    out.setdefault(ph, []).append(d / 1e6)
            return out

        return {
            "runs": runs, "stop_cost_ns": round(average),
            "stop_ns_by_mark": stops, "probe_ns_by_mark": probes["probe_ns_by_mark"],
            "compared": list(uprobe.COMPARED),
            "traced_raw": by_phase([phases(m, False, 0.0) for m in traced]),
            "traced": by_phase([phases(m, False, {**stops, "default": average})
                                for m in traced]),
            "probed_raw": by_phase([uprobe.run_phases(r) for r in seen]),
            "probed": by_phase([uprobe.run_phases(r, costs=probes["probe_ns_by_mark"])
                                for r in seen]),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
