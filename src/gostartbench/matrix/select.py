"""`-k EXPR`: select cells by id like pytest's -k (case-insensitive substrings; and/or/not)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from gostartbench.errors import InputError
from gostartbench.matrix.model import Cell


def select(cells: Sequence[Cell], expr: str | None) -> list[Cell]:
    """`-k EXPR` like pytest's: words match substrings of the cell id, case-insensitively;
    and/or/not/parentheses."""
    if not expr:
        return list(cells)
    tokens = re.findall(r"\(|\)|[^\s()]+", expr)

    def ev(cid: str) -> bool:
        pos = 0

        def parse_or() -> bool:
            nonlocal pos
            v = parse_and()
            while pos < len(tokens) and tokens[pos] == "or":
                pos += 1
                rhs = parse_and()
                v = v or rhs
            return v

        def parse_and() -> bool:
            nonlocal pos
            v = parse_not()
            while pos < len(tokens) and tokens[pos] == "and":
                pos += 1
                rhs = parse_not()
                v = v and rhs
            return v

        def parse_not() -> bool:
            nonlocal pos
            if pos < len(tokens) and tokens[pos] == "not":
                pos += 1
                return not parse_not()
            if pos < len(tokens) and tokens[pos] == "(":
                pos += 1
                v = parse_or()
                if pos >= len(tokens) or tokens[pos] != ")":
                    raise InputError(f"unbalanced parentheses in -k {expr!r}", key="-k")
                pos += 1
                return v
            if pos >= len(tokens):
                raise InputError(f"incomplete expression -k {expr!r}", key="-k")
            word = tokens[pos]
            pos += 1
            return word.lower() in cid.lower()  # like pytest: case-insensitive

        v = parse_or()
        if pos != len(tokens):
            raise InputError(f"cannot parse -k {expr!r} near {tokens[pos]!r}", key="-k")
        return v

    return [c for c in cells if ev(c.id)]
