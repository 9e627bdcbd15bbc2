"""``threadline projects retention`` and ``threadline projects redaction``: a project's
data rules, set in the store the server uses (like ``projects allow-origin``). A
running server sees a new retention at its next pass and new redaction rules within
two seconds (``redaction/project_rules.py``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from threadline.server.errors import BadRequest
from threadline.server.redaction.rules import DETECTORS, RedactionRules, parse
from threadline.server.store import Store

OpenStore = Callable[[argparse.Namespace], Store]
ProjectOf = Callable[[Store, str], Any]


def add_commands(
    project_commands: Any,
    add_settings: Callable[[argparse.ArgumentParser, list[str]], None],
    default_project: str,
    open_store: OpenStore,
    project_of: ProjectOf,
) -> None:
    retention = project_commands.add_parser(
        "retention",
        help="Show or set how many days the project keeps a trace after it ended.",
    )
    retention.add_argument(
        "days",
        nargs="?",
        help="Days (0: forever), or 'default' for the server's --retention-days; "
        "none: show the setting.",
    )
    redaction = project_commands.add_parser(
        "redaction",
        help="Show or set what is redacted from the project's spans at ingest.",
    )
    redaction.add_argument(
        "--detector",
        action="append",
        default=[],
        choices=list(DETECTORS),
        help="A built-in detector to apply (repeatable): "
        + "; ".join(f"{k}: {v}" for k, v in DETECTORS.items()),
    )
    redaction.add_argument(
        "--pattern",
        action="append",
        default=[],
        metavar="NAME=REGEX",
        help="Your own pattern (RE2 syntax), its matches replaced by [NAME] (repeatable).",
    )
    redaction.add_argument("--off", action="store_true", help="Remove every rule.")
    for command in (retention, redaction):
        add_settings(command, ["data_dir", "store"])
        command.add_argument(
            "--project", default=default_project, help="Project name (default: %(default)s)."
        )

    def run_retention(args: argparse.Namespace) -> None:
        store = open_store(args)
        try:
            project = project_of(store, args.project)
            if args.days is not None:
                store.set_retention_days(project.id, _days(args.days))
            days = store.retention_overrides().get(project.id)
        finally:
            store.close()
        shown = "the server's --retention-days" if days is None else _shown_days(days)
        print(f"Project '{project.name}' keeps traces: {shown}")

    def run_redaction(args: argparse.Namespace) -> None:
        changing = args.off or args.detector or args.pattern
        store = open_store(args)
        try:
            project = project_of(store, args.project)
            if changing:
                rules = RedactionRules() if args.off else _rules(args.detector, args.pattern)
                store.set_redaction_rules(project.id, rules)
            rules = store.redaction_rules(project.id)
        finally:
            store.close()
        print(f"Project '{project.name}' redacts: {_shown_rules(rules)}")

    retention.set_defaults(run=run_retention)
    redaction.set_defaults(run=run_redaction)


def _days(text: str) -> int | None:
    if text == "default":
        return None
    try:
        days = int(text)
    except ValueError:
        days = -1
    if not 0 <= days <= 36_500:
        sys.exit(f"threadline: {text!r} is not a number of days (0 to 36500) or 'default'")
    return days


def _shown_days(days: int) -> str:
    return "forever" if days == 0 else f"{days} days after they end"


def _rules(detectors: list[str], patterns: list[str]) -> RedactionRules:
    pairs = []
    for text in patterns:
        name, sep, regex = text.partition("=")
        if not sep:
            sys.exit(f"threadline: --pattern {text!r} is not NAME=REGEX")
        pairs.append((name, regex))
    try:
        return parse(detectors, pairs)
    except BadRequest as error:
        sys.exit(f"threadline: {error.message}")


def _shown_rules(rules: RedactionRules) -> str:
    if not rules.active:
        return "nothing"
    parts = [f"[{d}]" for d in rules.detectors]
    parts += [f"[{p.name}] = {p.regex}" for p in rules.patterns]
    return ", ".join(parts)
