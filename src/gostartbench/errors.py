"""Errors a user can act on: each renders as one line naming file, line and key (exit code 2)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

# The command line's exit codes, one home: 0 complete; 1 cells or the run failed (a gate: a
# rule failed); 2 bad input or usage (one line naming file, line and key); 3 a gate that could
# not judge a comparison (inconclusive: never a pass); 130 interrupted (Ctrl-C, SIGTERM).
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_INCONCLUSIVE = 3
# The gate's rule when none is given, with its exit codes above the gate's contract: the `gate`
# command's, the action's (which passes none unless its `fail-on` input is set) and the README's.
DEFAULT_FAIL_ON = "startup>+5%"


class InputError(Exception):
    """Bad input or usage. Rendered as `FILE:LINE: KEY: MESSAGE`; the CLI exits with code 2."""

    def __init__(
        self, message: str, *, file: str | None = None, line: int | None = None,
        key: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line
        self.key = key

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = self.file + (f":{self.line}" if self.line else "") + ": "
        key = f"{self.key}: " if self.key else ""
        # One line, always: a YAML message may carry newlines.
        return (where + key + self.message).replace("\n", " ")


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """A ' (did you mean 'x'?)' suffix for a near miss, else ''."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def allowed(choices: Iterable[object]) -> str:
    """Choices as one comma-separated string."""
    return ", ".join(str(c) for c in choices)
