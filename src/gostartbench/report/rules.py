"""The gate's vocabulary, shared by `compare --fail-on`, `gate` and `run --fail-on`: a rule
(relative to the base, or an absolute budget on the head), a finding (one judged comparison),
why a comparison cannot be judged, and the exit code of a set of findings.

A finding fails when its change is significant (stats/significance.py) and its point estimate
is beyond the rule's threshold; it is inconclusive — never a pass — when the run was too short
for the significance rule, it has no interval, or its interval holds both no change and a
change past the threshold.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gostartbench.analysis.summary import timing_span_s
from gostartbench.errors import EXIT_FAILED, EXIT_INCONCLUSIVE, EXIT_OK, InputError
from gostartbench.stats import intervals

METRICS = {"startup": "P50 start time", "size": "file size", "rss": "median peak RSS",
           "init": "package init (GODEBUG=inittrace=1, the sum; init[MODULE]: one module's)"}
_RULE = re.compile(r"^\s*(startup|size|rss|init)(?:\[([^\]\s]+)\])?\s*([<>])\s*"
                   r"([+-]?\d+(?:\.\d+)?)\s*(%|ms|s|B|kB|KB|MB|MiB|GB|GiB)\s*$")
# An absolute rule's unit → its factor to the metric's own unit (ms for times, bytes for sizes)
TIME_UNITS = {"ms": 1.0, "s": 1000.0}
SIZE_UNITS = {"B": 1.0, "kB": 1e3, "KB": 1e3, "MB": 1e6, "MiB": 2.0 ** 20, "GB": 1e9,
              "GiB": 2.0 ** 30}


@dataclass(frozen=True)
class Rule:
    """One --fail-on rule: a metric, a direction and a threshold — relative to the base
    (`startup>+3%`: threshold +0.03) or, a budget, absolute on the head alone (`startup>20ms`,
    `init[google.golang.org/grpc]>1ms`, `size>30MB`: `budget` in ms or bytes)."""

    metric: str
    op: str  # '>': fail on an increase beyond (or a value above); '<': a decrease (value below)
    threshold: float  # relative rules: signed fraction, e.g. +0.03 or -0.05
    text: str
    budget: float | None = None  # absolute rules: the limit, in ms (times) or bytes (sizes)
    module: str | None = None  # init[MODULE]

    def beyond(self, ratio: float) -> bool:
        """True when a ratio NEW/BASE (or value/budget) goes past the rule's edge."""
        if not math.isfinite(ratio):
            return False
        edge = 1.0 if self.budget is not None else 1 + self.threshold
        return ratio > edge if self.op == ">" else ratio < edge


def parse_rule(text: str) -> Rule:
    """'startup>+3%', 'startup>20ms', 'init[MODULE]>1ms', 'size>30MB' → Rule (InputError, exit
    2, on anything else)."""
    m = _RULE.match(text)
    bad = (f"--fail-on {text!r}: expected METRIC>+N% (against the base) or METRIC>N UNIT (a "
           f"budget on the head: ms or s for startup and init, B/kB/MB/MiB/GB for size and rss) "
           f"with METRIC one of {', '.join(METRICS)}, or init[MODULE] (e.g. 'startup>+3%', "
           "'startup>20ms', 'init>5ms', 'size>30MB')")
    if not m:
        raise InputError(bad, key="--fail-on")
    metric, module, op, num, unit = m.groups()
    if unit == "%":
        if metric == "init" or module:
            raise InputError(f"--fail-on {text!r}: init rules are budgets (init>5ms, "
                             "init[MODULE]>1ms), not changes against the base", key="--fail-on")
        return Rule(metric, op, float(num) / 100, text.strip())
    units = TIME_UNITS if metric in ("startup", "init") else SIZE_UNITS
    if unit not in units or (module and metric != "init"):
        raise InputError(bad, key="--fail-on")
    return Rule(metric, op, 0.0, text.strip(), budget=float(num) * units[unit], module=module)


@dataclass(frozen=True)
class Finding:
    """One gated comparison: what, BASE and NEW values, the change with its ci95."""

    rule: str
    kind: str  # cell | effect
    what: str
    base: float
    new: float
    unit: str
    ratio: float
    low: float
    high: float
    significant: bool
    failed: bool
    # Why the comparison could not be judged ("" when it was): the run too short for the
    # significance rule, no interval, or an interval holding both no change and a change past
    # the rule's threshold. An inconclusive comparison is never a pass.
    unjudged: str = ""

    @property
    def inconclusive(self) -> bool:
        """True when the gate could not judge this comparison."""
        return bool(self.unjudged) and not self.failed


def unjudged_why(rule: Rule, ratio: float, low: float, high: float, significant: bool,
                 short: str = "") -> str:
    """Why a comparison cannot be judged under `rule` ("" when it can): `short` names a run
    too short for the significance rule; an interval that is missing, or that reaches past the
    threshold while not excluding "no change", cannot tell a pass from a fail."""
    if short:
        return short
    if not (math.isfinite(low) and math.isfinite(high) and math.isfinite(ratio)):
        return "no interval (too few runs or blocks of time)"
    if significant:
        return ""  # resolved: judged by its point estimate
    edge = 1 + rule.threshold
    if (rule.op == ">" and high > edge) or (rule.op == "<" and low < edge):
        return (f"its interval [{low - 1:+.1%}, {high - 1:+.1%}] holds both no change and a "
                f"change past {rule.threshold:+.0%}: more timing would tell")
    return ""


def budget_why(rule: Rule, low: float, high: float, short: str = "") -> str:
    """Why a budget cannot be judged ("" when it can): a short run, no interval, or an interval
    (as a ratio to the budget) holding the budget itself."""
    if short:
        return short
    if not (math.isfinite(low) and math.isfinite(high)):
        return "no interval (too few runs or blocks of time)"
    if low <= 1.0 <= high:
        return "its interval holds the budget: more runs would tell"
    return ""



def exit_code(findings: Sequence[Finding]) -> int:
    """EXIT_FAILED when any finding failed its rule; else EXIT_INCONCLUSIVE when one could not
    be judged or nothing was compared; else EXIT_OK."""
    if any(f.failed for f in findings):
        return EXIT_FAILED
    if not findings or any(f.inconclusive for f in findings):
        return EXIT_INCONCLUSIVE
    return EXIT_OK


def rules_from(texts: Sequence[str]) -> list[Rule]:
    """Every --fail-on rule, parsed."""
    return [parse_rule(t) for t in texts]


def check_two(dirs: Sequence[Any], rules: Sequence[Rule]) -> None:
    """--fail-on compares exactly BASE and NEW."""
    if rules and len(dirs) != 2:
        raise InputError("--fail-on compares two runs: BASE NEW", key="--fail-on")



SHORT_RUN = "the run was too short for the significance rule"


def short_run_why(samples: Any, name: str = "") -> str:
    """Why a run's comparisons cannot be judged for its length ("" when it is long enough)."""
    span = timing_span_s(samples)
    if span >= intervals.FULL_SPAN_S:
        return ""
    return (f"{SHORT_RUN}: {name + ' has ' if name else ''}{span:.1f} s of timing, ≥ "
            f"{intervals.FULL_SPAN_S:g} s needed")
