"""``threadline delete``: the data commands, run against a server through its JSON API
(``api_client.py``), so they act on whatever store the server uses, with its checks."""

from __future__ import annotations

import argparse
import sys
import urllib.parse
from collections.abc import Sequence

from threadline.server.api_client import ApiClient, ApiError

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
)


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
            raise ApiError(f"{matched} sessions match: add --yes to delete them")
        answer = input(f"Delete {matched} sessions with all their traces? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            return "Nothing deleted."
    done = client.call("POST", "/api/v1/sessions/delete", query, {"confirm_count": matched})[
        "deleted"
    ]
    return f"Deleted {done} sessions."
