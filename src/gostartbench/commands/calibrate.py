"""`gostartbench calibrate`: the instrument's own floor, accuracy and noise, measured now on this
host (the loops: run/calibration.py; the figures: analysis/calibration.py).

- floor: P50 of a no-op static Go program timed by the framework's loop, beside a minimal C
  posix_spawn + wait loop (the helper's -n mode) and `hyperfine -N`, in the same run;
- accuracy: a program that busy-waits in init() for a delay given at run time, timed at a
  ladder of delays; measured delta (paired by round against delay 0) against injected;
- noise: cv of the floor and the smallest P50 difference the settings can resolve; and how
  much one start varies under the framework's loop against the bare C loop and hyperfine (the
  noise the harness adds, if any, is that ratio above 1);
- the two phase instruments on one program, each mark's stop cost and the uprobes' own cost.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from gostartbench import results
from gostartbench.analysis.calibration import calibration_figures
from gostartbench.matrix import DEFAULT_TOOLCHAIN
from gostartbench.run.calibration import calibration_runs, instrument_runs
from gostartbench.stats.significance import INSTRUMENTS


def calibrate(runs: int = 300, cpus: tuple[int, ...] | None = None, seed: int = 0,
              toolchain: str = DEFAULT_TOOLCHAIN) -> dict[str, Any]:
    """The instrument's floor (against a C loop and hyperfine), accuracy ladder, noise, A/A
    check and the two phase instruments, measured now on this host."""
    raw = calibration_runs(runs, cpus, seed, toolchain)
    ins = instrument_runs(raw["delay_program"], toolchain)
    return calibration_figures(raw, ins, runs, cpus, seed)


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
              f"{INSTRUMENTS.text()}):")
        marks = [m for m in ("exec", "entry", "schedinit", "rtmain", "mainmain")
                 if m in ins.get("stop_ns_by_mark", {}) or m in ins.get("probe_ns_by_mark", {})]
        print("  each mark's own cost (µs; leave one out, subtracted from the phase after it):")
        print("    " + "  ".join(f"{m:>9}" for m in ["", *marks]))
        for name, key in (("ptrace", "stop_ns_by_mark"), ("uprobes", "probe_ns_by_mark")):
            got = ins.get(key, {})
            print(f"    {name:>9}  " + "  ".join(
                f"{got[m] / 1000:9.1f}" if m in got else f"{'—':>9}" for m in marks))
        print(f"  (one average stop cost, as runs subtracted before: "
              f"{ins['stop_cost_ns'] / 1000:.1f} µs)")
        for ph, v in ins["phases"].items():
            print(f"  {ph:14} ptrace {v['ptrace_ms']:.3f} ms   uprobes {v['uprobe_ms']:.3f} ms   "
                  f"{'agree' if v['agree'] else 'DISAGREE'}   (nothing subtracted: "
                  f"{v['ptrace_raw_ms']:.3f} / {v['uprobe_raw_ms']:.3f}, "
                  f"{'agree' if v['agree_raw'] else 'disagree'})")
    met = f["met"] and res["ladder_met"] and aa["met"]
    print("targets met" if met else "targets NOT met on this machine now (see above)")
    return 0
