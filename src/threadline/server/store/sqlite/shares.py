"""Share links in SQLite (migration 0008): one row a link, found by its token's digest."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from threadline.server.store.base import StoredShare
from threadline.server.store.record_columns import SHARES
from threadline.server.store.sqlite.driver import sqlite3


def _share(row: Sequence[Any]) -> StoredShare:
    return SHARES.read(
        row,
        StoredShare,
        token_hash=bytes,
        hide_io=bool,
        hide_metadata=lambda text: tuple(json.loads(text)),
    )


def add(conn: sqlite3.Connection, share: StoredShare) -> None:
    values = SHARES.values(share, hide_io=int, hide_metadata=lambda names: json.dumps(list(names)))
    conn.execute(f"INSERT INTO share_links ({SHARES.sql}) VALUES ({SHARES.qmarks})", values)


def list_for(
    conn: sqlite3.Connection,
    project_id: int,
    limit: int | None = None,
    after: tuple[int, str] | None = None,
) -> list[StoredShare]:
    """Newest first, along ``share_links_by_project`` (0008) from ``after`` on."""
    where = "project_id = ?"
    args: list[Any] = [project_id]
    if after is not None:
        where += " AND (created_ns, id) < (?, ?)"
        args.extend(after)
    sql = f"SELECT {SHARES.sql} FROM share_links WHERE {where} ORDER BY created_ns DESC, id DESC"
    if limit is not None:
        sql += " LIMIT ?"
        args.append(limit)
    return [_share(r) for r in conn.execute(sql, args).fetchall()]


def revoke(conn: sqlite3.Connection, project_id: int, share_id: str) -> bool:
    cursor = conn.execute(
        "UPDATE share_links SET revoked_ns = ? WHERE project_id = ? AND id = ?"
        " AND revoked_ns IS NULL",
        (time.time_ns(), project_id, share_id),
    )
    return cursor.rowcount > 0


def by_token_hash(conn: sqlite3.Connection, token_hash: bytes) -> StoredShare | None:
    row = conn.execute(
        f"SELECT {SHARES.sql} FROM share_links WHERE token_hash = ?", (token_hash,)
    ).fetchone()
    return _share(row) if row is not None else None
