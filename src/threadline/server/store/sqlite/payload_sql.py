"""The SQLite store opened read-only for SQL of one's own, every payload readable.

Inputs and outputs of ``payloads.PACK_FROM_BYTES`` and more are stored as zstd frames,
some packed with a dictionary of the ``payload_dictionaries`` table. A connection made
here has the SQL function ``payload(column)``: a payload column's text, whether it was
stored packed or not (``threadline sql`` uses it; docs/configuration.md).
"""

from __future__ import annotations

from pathlib import Path

from threadline.server.store.sqlite import payloads
from threadline.server.store.sqlite.driver import sqlite3


def connect_read_only(path: Path) -> sqlite3.Connection:
    """A connection that cannot write (SQLite refuses any write), with ``payload()``."""
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    conn.execute("PRAGMA query_only=ON")
    add_payload_function(conn)
    return conn


def add_payload_function(conn: sqlite3.Connection) -> None:
    # The dictionaries are read once, lazily: a query that unpacks none reads none.
    known: dict[int, payloads.Dictionary] = {}

    def dictionary(dict_id: int) -> payloads.Dictionary:
        if not known:
            known.update(payloads.load_all(conn))
        try:
            return known[dict_id]
        except KeyError:
            raise LookupError(f"payload dictionary {dict_id} is missing") from None

    conn.create_function("payload", 1, payloads.Unpacker(dictionary), deterministic=True)
