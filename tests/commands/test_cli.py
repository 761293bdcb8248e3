"""The command line's help serves users: every command and every option says what it does,
and the top-level help opens with what the tool is for (not with the module's docstring)."""

from __future__ import annotations

import argparse

import pytest

from gostartbench.cli import DESCRIPTION, build_parser


def _commands() -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in build_parser()._actions
               if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def test_the_top_level_help_is_for_users() -> None:
    text = build_parser().format_help()
    assert DESCRIPTION.split()[0] in text and "parses and dispatches" not in text
    assert "Exit codes" in text
    for name, sp in _commands().items():
        assert name in text
        assert sp.description, f"`{name}` has no description"


@pytest.mark.parametrize("name", sorted(_commands()))
def test_every_option_is_described(name: str) -> None:
    sp = _commands()[name]
    for action in sp._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        what = action.option_strings or [action.dest]
        assert action.help and len(action.help) > 12, f"{name} {what}: no help"
        sp.format_help()  # every help string renders (a stray % would raise here)
