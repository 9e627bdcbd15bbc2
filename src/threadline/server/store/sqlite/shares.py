"""Share links in SQLite (migration 0008): one row a link, found by its token's digest."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from typing import Any

from threadline.server.store.base import StoredShare

_COLUMNS = (
    "id, project_id, token_hash, kind, target_id, created_ns, expires_ns, revoked_ns,"
    " hide_io, hide_metadata"
)


def _share(row: Sequence[Any]) -> StoredShare:
    return StoredShare(
        id=row[0],
        project_id=row[1],
        token_hash=bytes(row[2]),
        kind=row[3],
        target_id=row[4],
        created_ns=row[5],
        expires_ns=row[6],
        revoked_ns=row[7],
        hide_io=bool(row[8]),
        hide_metadata=tuple(json.loads(row[9])),
    )


def add(conn: sqlite3.Connection, share: StoredShare) -> None:
    conn.execute(
        f"INSERT INTO share_links ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            share.id,
            share.project_id,
            share.token_hash,
            share.kind,
            share.target_id,
            share.created_ns,
            share.expires_ns,
            share.revoked_ns,
            int(share.hide_io),
            json.dumps(list(share.hide_metadata)),
        ),
    )


def list_for(conn: sqlite3.Connection, project_id: int) -> list[StoredShare]:
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM share_links WHERE project_id = ?"
        " ORDER BY created_ns DESC, id DESC",
        (project_id,),
    ).fetchall()
    return [_share(r) for r in rows]


def revoke(conn: sqlite3.Connection, project_id: int, share_id: str) -> bool:
    cursor = conn.execute(
        "UPDATE share_links SET revoked_ns = ? WHERE project_id = ? AND id = ?"
        " AND revoked_ns IS NULL",
        (time.time_ns(), project_id, share_id),
    )
    return cursor.rowcount > 0


def by_token_hash(conn: sqlite3.Connection, token_hash: bytes) -> StoredShare | None:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM share_links WHERE token_hash = ?", (token_hash,)
    ).fetchone()
    return _share(row) if row is not None else None
