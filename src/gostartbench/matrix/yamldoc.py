"""YAML with line numbers: every value of the document with the line of its key path, so any
error names file, line and key. Loaded safely; aliases are counted as they expand."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml

from gostartbench.errors import InputError, allowed, did_you_mean

MAX_YAML_NODES = 100_000  # values in the document after YAML aliases are expanded



class Doc:
    """The composed YAML document: plain values plus the line of every key path."""

    def __init__(self, file: str, text: str) -> None:
        self.file = file
        self.lines: dict[tuple[Any, ...], int] = {}
        self.nodes = 0
        self._loader = yaml.SafeLoader("")
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark is not None else None
            problem = getattr(exc, "problem", None) or str(exc)
            raise InputError(f"YAML syntax error: {problem}", file=file, line=line) from None
        self.value = self._walk(node, ()) if node is not None else None

    def _walk(self, node: yaml.Node, path: tuple[Any, ...]) -> Any:
        self.nodes += 1
        if self.nodes > MAX_YAML_NODES:
            # Aliases can make a small file expand exponentially (a "billion laughs"): count
            # values as they are expanded and stop at the bound.
            raise InputError(f"the document expands to more than {MAX_YAML_NODES:,} values "
                             "(YAML aliases?); a matrix is far smaller", file=self.file,
                             line=node.start_mark.line + 1, key=_dotted(path) or None)
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for knode, vnode in node.value:
                k = self._scalar(knode)
                if k in out:
                    raise InputError(f"duplicate key {k!r}", file=self.file,
                                     line=knode.start_mark.line + 1, key=_dotted((*path, k)))
                self.lines[(*path, k)] = knode.start_mark.line + 1
                out[k] = self._walk(vnode, (*path, k))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self._walk(v, (*path, i)) for i, v in enumerate(node.value)]
        return self._scalar(node)

    def _scalar(self, node: yaml.Node) -> Any:
        # One safe constructor for the whole document (a new loader per value made a large
        # document slow to refuse); scalars only, so its cache of constructed nodes is harmless.
        return self._loader.construct_object(node, deep=True)

    def line(self, path: Sequence[Any]) -> int | None:
        """The line of a key path (or of its nearest parent)."""
        p = tuple(path)
        while p not in self.lines and p:
            p = p[:-1]
        return self.lines.get(p)

    def error(self, path: Sequence[Any], message: str) -> InputError:
        """An InputError naming this document's file, the key path's line and the key."""
        return InputError(message, file=self.file, line=self.line(path), key=_dotted(path))


def _dotted(path: Sequence[Any]) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def expect_mapping(doc: Doc, value: Any, path: Sequence[Any], keys: Sequence[str] | None
             ) -> dict[Any, Any]:
    if not isinstance(value, dict):
        raise doc.error(path, f"expected a mapping, found {typename(value)}")
    if keys is not None:
        for k in value:
            if not isinstance(k, str) or k not in keys:
                raise doc.error((*path, k), f"unknown key {k!r}; allowed: {allowed(keys)}"
                                + did_you_mean(str(k), keys))
    return value


def typename(v: Any) -> str:
    if v is None:
        return "nothing (null)"
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean",
            int: "an integer", float: "a number"}.get(type(v), type(v).__name__) + f" ({v!r})"


def as_str(doc: Doc, v: Any, path: Sequence[Any]) -> str:
    """Axis values: scalars as canonical strings (YAML's 0 → '0', true → 'true')."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return ""
    if isinstance(v, int | float | str):
        return str(v)
    raise doc.error(path, f"expected a scalar value, found {typename(v)}")


def values_of(doc: Doc, v: Any, path: Sequence[Any]) -> list[str]:
    items = v if isinstance(v, list) else [v]
    if not items:
        raise doc.error(path, "empty list: an axis needs at least one value")
    out = [as_str(doc, x, (*path, i)) for i, x in enumerate(items)]
    seen: set[str] = set()
    for i, x in enumerate(out):
        if x in seen:
            raise doc.error((*path, i), f"duplicate value {x!r}")
        seen.add(x)
    return out
