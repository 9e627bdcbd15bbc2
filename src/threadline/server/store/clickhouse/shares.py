"""Share links in ClickHouse (migration 0005), append-only like the keys: a revocation
is the link's row again with ``is_revoked = 1``, which wins in reads and merges."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from threadline.server.store.base import StoredShare

Rows = Callable[[str, dict[str, Any]], list[tuple[Any, ...]]]
Insert = Callable[[str, list[list[Any]], list[str]], None]

TABLE = "share_links"
_FIELDS = (
    "project_id",
    "token_hash",
    "kind",
    "target_id",
    "created_ns",
    "expires_ns",
    "revoked_ns",
    "hide_io",
    "hide_metadata",
)
_INSERT_COLUMNS = ["id", *_FIELDS, "is_revoked"]


def _latest(where: str) -> str:
    """Each link's newest state (a revoked row wins), among links matching ``where``."""
    unpacked = ", ".join(f"tupleElement(row, {i}) AS {f}" for i, f in enumerate(_FIELDS, 1))
    return (
        f"SELECT id, {unpacked} FROM (SELECT id, argMax(({', '.join(_FIELDS)}), is_revoked)"
        f" AS row FROM {TABLE} WHERE {where} GROUP BY id)"
    )


def _share(row: Sequence[Any]) -> StoredShare:
    return StoredShare(
        id=row[0],
        project_id=row[1],
        token_hash=bytes.fromhex(row[2]),
        kind=row[3],
        target_id=row[4],
        created_ns=row[5],
        expires_ns=row[6],
        revoked_ns=row[7],
        hide_io=bool(row[8]),
        hide_metadata=tuple(row[9]),
    )


class ClickHouseShares:
    def __init__(self, rows: Rows, insert: Insert):
        self._rows = rows
        self._insert = insert

    def _row(self, s: StoredShare, revoked_ns: int | None) -> list[Any]:
        return [
            s.id,
            s.project_id,
            s.token_hash.hex(),
            s.kind,
            s.target_id,
            s.created_ns,
            s.expires_ns,
            revoked_ns,
            int(s.hide_io),
            list(s.hide_metadata),
            int(revoked_ns is not None),
        ]

    def add(self, share: StoredShare) -> None:
        self._insert(TABLE, [self._row(share, share.revoked_ns)], _INSERT_COLUMNS)

    def list_for(self, project_id: int) -> list[StoredShare]:
        return [
            _share(r)
            for r in self._rows(
                _latest("project_id = %(project)s") + " ORDER BY created_ns DESC, id DESC",
                {"project": project_id},
            )
        ]

    def revoke(self, project_id: int, share_id: str) -> bool:
        found = self._rows(
            _latest("project_id = %(project)s AND id = %(id)s"),
            {"project": project_id, "id": share_id},
        )
        if not found or found[0][7] is not None:
            return False
        self._insert(TABLE, [self._row(_share(found[0]), time.time_ns())], _INSERT_COLUMNS)
        return True

    def by_token_hash(self, token_hash: bytes) -> StoredShare | None:
        found = self._rows(_latest("token_hash = %(hash)s"), {"hash": token_hash.hex()})
        return _share(found[0]) if found else None
