"""`gostartbench calibrate`: the instrument's own floor, accuracy and noise.

- floor: P50 of a no-op static Go program timed by the framework's loop, beside a minimal C
  posix_spawn + wait loop (the helper's -n mode) and `hyperfine -N`, in the same run;
- accuracy: a program that busy-waits in init() for a delay given at run time, timed at a
  ladder of delays; measured delta (paired by round against delay 0) against injected;
- noise: cv of the floor and the smallest P50 difference the settings can resolve; and how
  much one start varies under the framework's loop against the bare C loop and hyperfine (the
  noise the harness adds, if any, is that ratio above 1).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from gostartbench import results
from gostartbench.analysis import stats
from gostartbench.analysis.significance import DEFAULT_MIN_EFFECT, significant
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

LADDER_MS = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0)


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("GSB_")}


def quick_floor(cpus: tuple[int, ...] | None = None, runs: int = 40,
                toolchain: str = DEFAULT_TOOLCHAIN) -> dict[str, Any]:
    """The harness floor recorded in every run.json: P50 of the no-op program, ms."""
    progs = calib_programs(toolchain)
    ex = SpawnExecutor()
    try:
        spec = RunSpec(argv=(str(progs["noop"]),), env=_env(), cpus=cpus)
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
    import hashlib

    img = container.cell_image(eng, container.SCRATCH, noop,
                               hashlib.sha256(noop.read_bytes()).hexdigest())
    rid = run_id or f"floor-{os.getpid()}"
    ex = SpawnExecutor()
    try:
        outer = RunSpec(argv=tuple(container.engine_argv(eng, img, rid, None, {}, [])),
                        env=_env(), timeout_s=60)
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
    p = subprocess.run([*argv, "--", str(binary)], capture_output=True, text=True, env=_env(),
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
                   check=True, env=_env())
    _, measured = parse_hyperfine_json(json.loads(out.read_text()))  # hyperfine 1.x or 2.x
    out.unlink(missing_ok=True)
    return [m.wall_ns for m in measured]


def calibrate(runs: int = 300, cpus: tuple[int, ...] | None = None, seed: int = 0,
              toolchain: str = DEFAULT_TOOLCHAIN) -> dict[str, Any]:
    """The instrument's floor (against a C loop and hyperfine), accuracy ladder, noise and
    A/A check, measured now on this host."""
    progs = calib_programs(toolchain)
    ex = SpawnExecutor()
    noop = RunSpec(argv=(str(progs["noop"]),), env=_env(), cpus=cpus)
    ladder = {d: RunSpec(argv=(str(progs["delay"]),),
                         env={**_env(), "GSB_DELAY_US": str(round(d * 1000))}, cpus=cpus)
              for d in LADDER_MS}
    rng = random.Random(seed)
    try:
        for _ in range(20):  # warm up every program and the helper
            ex.run(noop)
            for s in ladder.values():
                ex.run(s)
        floor = _floor_runs(ex, noop, progs["noop"], runs, cpus)
        walls = _ladder_runs(ex, ladder, runs, rng)
        aa = _aa_runs(ex, noop, progs["noop"], runs, cpus, rng)
    finally:
        ex.close()
    return {"aa": _aa_figures(aa, seed), "runs": runs, "cpus": list(cpus) if cpus else None,
            "floor": _floor_figures(*floor, seed), "ladder": (rows := _ladder_rows(walls)),
            "ladder_met": all(r["within"] for r in rows), "noise": stats.noise(floor[0]),
            "instruments": two_instruments(progs["delay"], toolchain)}


def two_instruments(binary: Path, toolchain: str, runs: int = 20) -> dict[str, Any]:
    """The phases of one Go program (the delay program, 0 µs: a static start like hello's)
    timed by both instruments — the ptrace tracer (its stop cost subtracted) and eBPF uprobes
    — each over `runs` runs; per phase both medians and whether they agree within
    max(50 µs, 10%); or, where either cannot run here, why."""
    from gostartbench.measure import uprobe
    from gostartbench.measure.trace import (
        Target,
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
        spec = RunSpec(argv=(str(binary),), env={**_env(), "GSB_DELAY_US": "0"})
        cost = float(stop_cost(binary, t, work)["stop_ns"])
        traced: dict[str, list[float]] = {}
        for _ in range(runs):
            for ph, _, d in phases(trace_run(spec, t, work, stages=False).marks, False, cost):
                traced.setdefault(ph, []).append(d / 1e6)
        ex = SpawnExecutor()

        def run_all() -> None:
            for _ in range(runs):
                ex.run(spec)

        try:
            seen = uprobe.probe_runs({binary: t}, run_all)
        except RuntimeError as exc:
            return {"skipped": str(exc)}
        finally:
            ex.close()
        probed: dict[str, list[float]] = {}
        for r in seen:
            for ph, _, d in uprobe.run_phases(r):
                probed.setdefault(ph, []).append(d / 1e6)
        out: dict[str, Any] = {"runs": runs, "stop_cost_ns": round(cost), "phases": {}}
        for ph in uprobe.COMPARED:
            if ph in traced and ph in probed:
                a, b = statistics.median(traced[ph]), statistics.median(probed[ph])
                out["phases"][ph] = {"ptrace_ms": round(a, 4), "uprobe_ms": round(b, 4),
                                     "agree": uprobe.agree(a * 1e6, b * 1e6)}
        out["all_agree"] = bool(out["phases"]) and all(v["agree"]
                                                        for v in out["phases"].values())
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _floor_runs(ex: SpawnExecutor, noop: RunSpec, binary: Path, runs: int,
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


def _ladder_runs(ex: SpawnExecutor, ladder: dict[float, RunSpec], runs: int,
                 rng: random.Random) -> dict[float, list[int]]:
    """The delay ladder in interleaved rounds, shuffled each round."""
    walls: dict[float, list[int]] = {d: [] for d in LADDER_MS}
    order: list[float] = []
    for _ in range(runs):
        rnd = list(LADDER_MS)
        rng.shuffle(rnd)
        order += rnd
    for d, r in zip(order, ex.run_many((ladder[d], None, None) for d in order), strict=True):
        walls[d].append(r.wall_ns)
    return walls


def _aa_runs(ex: SpawnExecutor, noop: RunSpec, binary: Path, runs: int,
             cpus: tuple[int, ...] | None, rng: random.Random) -> dict[str, list[int]]:
    """A/A: the no-op and a byte-identical copy of it (written by write(), then both evicted
    and read back the same way right before their rounds), as two cells interleaved."""
    copy = binary.with_name("noop-aa-copy")
    shutil.copyfile(binary, copy)
    copy.chmod(0o755)
    aa_spec = RunSpec(argv=(str(copy),), env=_env(), cpus=cpus)
    order: list[str] = []
    for _ in range(runs):
        pair = ["a", "b"]
        rng.shuffle(pair)
        order += pair
    normalise_warm([binary, copy])
    for _ in ex.run_many((s, None, None) for s in [noop, aa_spec] * 10):
        pass
    specs = {"a": noop, "b": aa_spec}
    aa: dict[str, list[int]] = {"a": [], "b": []}
    for k, r in zip(order, ex.run_many((specs[k], None, None) for k in order), strict=True):
        aa[k].append(r.wall_ns)
    return aa


def _ratio_ci(a: list[int], b: list[int], rng: np.random.Generator) -> tuple[float, float]:
    reps = stats.bootstrap_ratio(np.asarray(a, float), np.asarray(b, float), 2000, rng,
                                 paired=False)
    return float(np.percentile(reps, 2.5)), float(np.percentile(reps, 97.5))


def _floor_figures(fw: list[int], cl: list[int], hf: list[int], seed: int) -> dict[str, Any]:
    """The floor against the C loop and hyperfine, each ratio with its ci95."""
    rng = np.random.default_rng(seed)
    c_ci = _ratio_ci(fw, cl, rng)
    h_ci = _ratio_ci(fw, hf, rng) if hf else None
    fw_p50 = statistics.median(fw) / 1e6
    cl_p50 = statistics.median(cl) / 1e6
    hf_p50 = statistics.median(hf) / 1e6 if hf else None
    s_ratio, s_lo, s_hi = stats.spread_ratio(fw, cl, seed=seed)
    return {"framework_spread": stats.spread(fw), "c_loop_spread": stats.spread(cl),
            "hyperfine_spread": stats.spread(hf) if hf else None,
            "spread_over_c": s_ratio, "spread_over_c_ci95": [s_lo, s_hi],
            "framework_p50_ms": fw_p50, "c_loop_p50_ms": cl_p50,
            "hyperfine_p50_ms": hf_p50, "framework_over_c": fw_p50 / cl_p50,
            "framework_over_hyperfine": (fw_p50 / hf_p50) if hf_p50 else None,
            "framework_over_c_ci95": c_ci, "framework_over_hyperfine_ci95": h_ci,
            "target_over_c": 1.1,
            # Met unless the framework is *significantly* above the target: the ratio's
            # ci95 must reach down to it (this machine's noise decides the last 0.5%).
            "met": c_ci[0] <= 1.1 and (h_ci is None or h_ci[0] <= 1.0)}


def _ladder_rows(walls: dict[float, list[int]]) -> list[dict[str, Any]]:
    """Each injected delay against the measured one (paired by round with 0 ms)."""
    rows = []
    base = walls[0.0]
    for d in LADDER_MS:
        est = stats.paired_delta_ms(walls[d], base)
        err = est["delta_ms"] - d
        tol = max(0.040, 0.05 * d)
        rows.append({"injected_ms": d, "p50_ms": statistics.median(walls[d]) / 1e6,
                     "measured_delta_ms": est["delta_ms"], "ci95_low_ms": est["ci95_low_ms"],
                     "ci95_high_ms": est["ci95_high_ms"], "error_ms": err, "tolerance_ms": tol,
                     "within": abs(err) <= tol})
    return rows


def _aa_figures(aa: dict[str, list[int]], seed: int) -> dict[str, Any]:
    """The copy against the original: ratio (paired by round), ci95, p, the significance
    rule's verdict (it must not fire), and whether the A/A target is met."""
    from scipy import stats as sps

    a_arr, b_arr = np.asarray(aa["a"], float), np.asarray(aa["b"], float)
    reps = stats.bootstrap_ratio(b_arr, a_arr, 2000, np.random.default_rng(seed), paired=True)
    ratio = float(np.median(b_arr) / np.median(a_arr))
    lo, hi = float(np.percentile(reps, 2.5)), float(np.percentile(reps, 97.5))
    p = float(sps.mannwhitneyu(b_arr, a_arr).pvalue)
    flagged = bool(significant(ratio, lo, hi, DEFAULT_MIN_EFFECT, p))
    return {"ratio": ratio, "ci95": [lo, hi], "p_value": p, "flagged": flagged,
            "met": abs(ratio - 1) <= 0.02 and not flagged}


def calibrate_command(args: argparse.Namespace) -> int:
    """`gostartbench calibrate`: measure, print every figure against its target, optionally save."""
    res = calibrate(runs=args.runs, toolchain=args.toolchain)
    f = res["floor"]
    print(f"floor (no-op static Go program, P50 of {res['runs']} runs):")
    print(f"  gostartbench spawn timer   {f['framework_p50_ms']:.3f} ms")
    c_lo, c_hi = f["framework_over_c_ci95"]
    print(f"  minimal C posix_spawn loop {f['c_loop_p50_ms']:.3f} ms   "
          f"ratio {f['framework_over_c']:.3f} [ci95 {c_lo:.3f}, {c_hi:.3f}] (target ≤ 1.1)")
    if f["hyperfine_p50_ms"] is not None:
        h_lo, h_hi = f["framework_over_hyperfine_ci95"]
        print(f"  hyperfine -N               {f['hyperfine_p50_ms']:.3f} ms   "
              f"ratio {f['framework_over_hyperfine']:.3f} [ci95 {h_lo:.3f}, {h_hi:.3f}] "
              "(target ≤ 1.0)")
    else:
        print("  hyperfine -N               not installed")
    print("accuracy (busy-wait in init(), paired by round against 0 ms):")
    print("  injected  measured  ci95              error    tolerance  ok")
    for r in res["ladder"]:
        print(f"  {r['injected_ms']:6.2f}ms  {r['measured_delta_ms']:7.3f}ms  "
              f"[{r['ci95_low_ms']:.3f}, {r['ci95_high_ms']:.3f}]  "
              f"{r['error_ms'] * 1000:+6.0f}µs  ±{r['tolerance_ms'] * 1000:.0f}µs     "
              f"{'yes' if r['within'] else 'NO'}")
    n = res["noise"]
    print(f"noise: cv {n['cv']:.3f}; P50 ci95 half-width {n['p50_ci95_halfwidth_ms'] * 1000:.0f}µs"
          f" ({n['p50_ci95_halfwidth_rel'] * 100:.2f}%): smaller differences are not resolved")
    s_lo, s_hi = f["spread_over_c_ci95"]
    hf_spread = (f", hyperfine -N {f['hyperfine_spread']:.1%}" if f["hyperfine_spread"] is not None
                 else "")
    print(f"  one start varies by {f['framework_spread']:.1%} (robust sd of log wall); the bare "
          f"C loop's {f['c_loop_spread']:.1%}{hf_spread}: ratio {f['spread_over_c']:.2f} "
          f"[ci95 {s_lo:.2f}, {s_hi:.2f}] (above 1: noise the harness adds)")
    out = Path(args.out) if args.out else None
    if out:
        results.write_json(out / "calibration.json", res)
        results.write_csv(out / results.CALIBRATION_CSV, res["ladder"],
                          list(res["ladder"][0].keys()))
    aa = res["aa"]
    print(f"A/A (a binary and its byte-identical copy, interleaved): ratio {aa['ratio']:.4f} "
          f"[ci95 {aa['ci95'][0]:.4f}, {aa['ci95'][1]:.4f}], p={aa['p_value']:.2f}, "
          f"{'FLAGGED' if aa['flagged'] else 'not flagged'} (target: within 2%, not flagged)")
    ins = res.get("instruments") or {}
    if ins.get("skipped"):
        print(f"phase instruments: the second one did not run: {ins['skipped']}")
    elif ins:
        print(f"phase instruments (the delay program, {ins['runs']} runs each; target: within "
              "max(50 µs, 10%)):")
        for ph, v in ins["phases"].items():
            print(f"  {ph:14} ptrace {v['ptrace_ms']:.3f} ms   uprobes {v['uprobe_ms']:.3f} ms   "
                  f"{'agree' if v['agree'] else 'DISAGREE'}")
    met = f["met"] and res["ladder_met"] and aa["met"]
    print("targets met" if met else "targets NOT met on this machine now (see above)")
    return 0
