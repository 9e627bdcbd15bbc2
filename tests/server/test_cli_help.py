"""Every command's --help says what an option does when it is left out: the default of
each option that has one is in its help (``threadline demo --help`` said "How many chat
sessions." and "Random seed.", and left the reader to guess 12 and 7)."""

from __future__ import annotations

import argparse
import subprocess
import sys

from threadline.server.cli.commands import _parser


def _options_with_defaults(
    parser: argparse.ArgumentParser, path: tuple[str, ...]
) -> list[tuple[str, argparse.Action]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, command in action.choices.items():
                found += _options_with_defaults(command, (*path, name))
        elif action.option_strings and action.default not in (None, False, "", []):
            if action.default is argparse.SUPPRESS:
                continue
            found.append((" ".join(path), action))
    return found


def test_every_option_with_a_default_names_it_in_its_help() -> None:
    options = _options_with_defaults(_parser(), ("threadline",))
    assert len(options) > 20  # the walk reaches the subcommands
    silent = []
    for command, action in options:
        shown = (action.help or "") % {"default": action.default, "prog": command}
        if "default" not in shown.lower():
            silent.append(f"{command} {action.option_strings[0]} (default {action.default!r})")
    assert not silent, "\n".join(silent)


def test_the_demo_help_gives_its_defaults() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "threadline.server", "demo", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert "How many chat sessions (default: 12)." in text
    assert "(default: 7)" in text and "new on every run" in text
