"""``threadline sql``: a read-only SQL query on the SQLite store, printed as JSON Lines or
CSV, with ``payload(column)`` giving a packed input or output as its text."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from threadline.server.cli.terminal import VisibleText
from threadline.server.settings import Settings
from threadline.server.store import sqlite_path
from threadline.server.store.sqlite.driver import sqlite3

AddSettings = Callable[[argparse.ArgumentParser, list[str]], None]
_STORE = ["data_dir", "store"]


def add_command(commands: Any, add_settings: AddSettings) -> None:
    sql = commands.add_parser(
        "sql",
        help="Run a read-only SQL query on the SQLite store; payload(column) is an input's"
        " or output's text.",
        description="Run a read-only SQL query on the SQLite store. Inputs and outputs may"
        " be stored as zstd frames: payload(input) and payload(output) give their text,"
        ' e.g. threadline sql "SELECT trace_id, payload(input) FROM spans LIMIT 5".',
    )
    add_settings(sql, _STORE)
    sql.add_argument("query", help="One SQL statement (reads only).")
    sql.add_argument(
        "--format",
        choices=["jsonl", "csv"],
        default="jsonl",
        help="Output: a JSON object a row, or CSV with a header (default: %(default)s).",
    )
    sql.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    from threadline.server.store.sqlite.payload_sql import connect_read_only

    settings = Settings.resolve({name: getattr(args, name, None) for name in _STORE})
    path = sqlite_path(settings.store_url)
    if path is None:
        sys.exit(
            "threadline sql: for the SQLite store only (ClickHouse keeps payloads as plain"
            " text: query it with its own client)"
        )
    if not Path(path).exists():
        sys.exit(f"threadline sql: no store at {path} (pass --data-dir or --store)")
    # Stored text holds what clients sent, escape sequences too: on a terminal, shown.
    out = VisibleText(sys.stdout) if sys.stdout.isatty() else sys.stdout
    conn = connect_read_only(Path(path))
    try:
        cursor = conn.execute(args.query)
        columns = [d[0] for d in cursor.description or ()]
        if args.format == "csv":
            writer = csv.writer(out)
            writer.writerow(columns)
            for row in cursor:
                writer.writerow([_shown(v) for v in row])
        else:
            for row in cursor:
                record = {c: _shown(v) for c, v in zip(columns, row, strict=True)}
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
    except (sqlite3.Error, LookupError) as error:
        sys.exit(f"threadline sql: {error}")
    finally:
        conn.close()


def _shown(value: Any) -> Any:
    # A BLOB selected as it is (a packed payload without payload()): its bytes in hex.
    return value.hex() if isinstance(value, bytes) else value
