"""``threadline delete`` and ``threadline export``: the data commands, run against a
server through its JSON API (``api_client.py``), so they act on whatever store the
server uses, with its checks."""

from __future__ import annotations

import argparse
import re
import sys
import urllib.parse
from collections.abc import Sequence
from typing import Protocol

from tqdm import tqdm

from threadline.server.cli.api_client import ApiClient, ApiError
from threadline.server.cli.terminal import VisibleWriter

# The list filters a --filter may name (the API's query parameters).
SESSION_FILTERS = (
    "user_id",
    "start",
    "end",
    "q",
    "status",
    "tag",
    "metadata",
    "score",
    "missing_score",
    "filter",
    "min_context_use",
)


# The Traces list's filters, for ``export traces``.
TRACE_FILTERS = (
    "session_id",
    "user_id",
    "start",
    "end",
    "q",
    "status",
    "tag",
    "metadata",
    "score",
    "missing_score",
    "filter",
)
# What the export takes besides its list's filters: the list's time window (the last
# 7 days unless given start, end or window=all; docs/api.md) and its order.
EXPORT_EXTRA = ("window", "sort")
_READ_BYTES = 256 * 1024


def add_connection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--base-url", default=None, help="Server URL (or THREADLINE_BASE_URL; default local)."
    )
    parser.add_argument("--api-key", default=None, help="A full key (or THREADLINE_API_KEY).")


def parse_filters(pairs: Sequence[str], allowed: Sequence[str]) -> list[tuple[str, str]]:
    """``["user_id=ana", "metadata=env=prod", "score=quality<3"]`` into query pairs: the
    part before the first ``=`` names a list filter, the rest is its value."""
    query = []
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or name not in allowed:
            raise ApiError(
                f"--filter {pair!r}: expected NAME=VALUE with NAME one of {', '.join(allowed)}"
            )
        query.append((name, value))
    return query


def run_delete(args: argparse.Namespace) -> None:
    try:
        client = ApiClient.from_args(args.base_url, args.api_key)
        print(_delete(client, args))
    except ApiError as exc:
        sys.exit(f"threadline delete: {exc}")


def _delete(client: ApiClient, args: argparse.Namespace) -> str:
    if args.what == "session":
        client.call("DELETE", "/api/v1/sessions/" + urllib.parse.quote(args.id, safe=""))
        return f"Deleted session {args.id!r}."
    if args.what == "trace":
        client.call("DELETE", "/api/v1/traces/" + urllib.parse.quote(args.id, safe=""))
        return f"Deleted trace {args.id!r}."
    query = parse_filters(args.filter, SESSION_FILTERS)
    if not query and not args.all:
        raise ApiError("no --filter given: add --all to delete every session of the project")
    matched = client.call("POST", "/api/v1/sessions/delete", query, {"dry_run": True})["matched"]
    if matched == 0:
        return "No session matches: nothing deleted."
    if not args.yes:
        if not sys.stdin.isatty():
            raise ApiError(f"{_sessions(matched)} match: add --yes to delete them")
        answer = input(f"Delete {_sessions(matched)} with all their traces? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            return "Nothing deleted."
    done = client.call("POST", "/api/v1/sessions/delete", query, {"confirm_count": matched})[
        "deleted"
    ]
    return f"Deleted {_sessions(done)}."


def _sessions(count: int) -> str:
    return f"{count} session" if count == 1 else f"{count} sessions"


def run_export(args: argparse.Namespace) -> None:
    try:
        client = ApiClient.from_args(args.base_url, args.api_key)
        if args.output:
            with open(args.output, "wb") as out:
                rows = _export(client, args, out)
            what = args.what.removesuffix("s") if rows == 1 else args.what
            print(f"Exported {rows} {what} to {args.output}.", file=sys.stderr)
        elif sys.stdout.isatty():
            # Spans hold what clients sent, escape sequences too: shown, not acted on.
            shown = VisibleWriter(sys.stdout.buffer)
            _export(client, args, shown)
            shown.close()
        else:
            _export(client, args, sys.stdout.buffer)
    except ApiError as exc:
        sys.exit(f"threadline export: {exc}")


class _Output(Protocol):
    def write(self, data: bytes, /) -> object: ...


def _export(client: ApiClient, args: argparse.Namespace, out: _Output) -> int:
    """Stream the export into ``out`` as it arrives; returns how many rows it had."""
    allowed = (SESSION_FILTERS if args.what == "sessions" else TRACE_FILTERS) + EXPORT_EXTRA
    query = [("format", args.format), *parse_filters(args.filter, allowed)]
    if args.include_spans:
        query.append(("include", "spans"))
    # A CSV's first record is its header, not a row.
    csv = args.format == "csv"
    counter = RecordCounter(quoted=csv, header=csv)
    with (
        client.open("GET", f"/api/v1/export/{args.what}", query) as response,
        # On stderr, so that stdout carries the export alone.
        tqdm(unit=" rows", desc=args.what, file=sys.stderr) as bar,
    ):
        while chunk := response.read(_READ_BYTES):
            out.write(chunk)
            bar.update(counter.feed(chunk))
    return max(counter.records, 0)


class RecordCounter:
    """Counts the records of a stream as it passes: JSONL lines, or CSV records, whose
    quoted fields may hold line breaks (a line end counts only outside quotes; an
    escaped quote ``""`` toggles twice, so it changes nothing). With ``header`` the first
    record is not counted."""

    _MARKS = re.compile(rb'["\n]')

    def __init__(self, quoted: bool, header: bool = False) -> None:
        self.quoted = quoted
        self.records = -1 if header else 0
        self._in_quotes = False

    def feed(self, chunk: bytes) -> int:
        before = max(self.records, 0)
        if not self.quoted:
            self.records += chunk.count(b"\n")
        else:
            for mark in self._MARKS.finditer(chunk):
                if mark.group() == b'"':
                    self._in_quotes = not self._in_quotes
                elif not self._in_quotes:
                    self.records += 1
        return max(self.records, 0) - before
