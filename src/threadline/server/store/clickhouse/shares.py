"""Share links in ClickHouse (migration 0005), append-only like the keys: a revocation
is the link's row again with ``is_revoked = 1``, which wins in reads and merges."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from threadline.server.store.base import StoredShare
from threadline.server.store.record_columns import SHARES

Rows = Callable[[str, dict[str, Any]], list[tuple[Any, ...]]]
Insert = Callable[[str, list[list[Any]], list[str]], None]

TABLE = "share_links"
# A link's row is its record's fields and whether this version revokes it.
_INSERT_COLUMNS = [*SHARES.names, "is_revoked"]
_VERSIONED = SHARES.names[1:]  # all but the id, which versions of a link share


def _latest(where: str) -> str:
    """Each link's newest state (a revoked row wins), among links matching ``where``."""
    unpacked = ", ".join(f"tupleElement(row, {i}) AS {f}" for i, f in enumerate(_VERSIONED, 1))
    return (
        f"SELECT id, {unpacked} FROM (SELECT id, argMax(({', '.join(_VERSIONED)}), is_revoked)"
        f" AS row FROM {TABLE} WHERE {where} GROUP BY id)"
    )


def _share(row: Sequence[Any]) -> StoredShare:
    return SHARES.read(
        row, StoredShare, token_hash=bytes.fromhex, hide_io=bool, hide_metadata=tuple
    )


class ClickHouseShares:
    def __init__(self, rows: Rows, insert: Insert):
        self._rows = rows
        self._insert = insert

    def _row(self, s: StoredShare, revoked_ns: int | None) -> list[Any]:
        revoked = replace(s, revoked_ns=revoked_ns)
        values = SHARES.values(revoked, token_hash=bytes.hex, hide_io=int, hide_metadata=list)
        return [*values, int(revoked_ns is not None)]

    def add(self, share: StoredShare) -> None:
        self._insert(TABLE, [self._row(share, share.revoked_ns)], _INSERT_COLUMNS)

    def list_for(
        self, project_id: int, limit: int | None = None, after: tuple[int, str] | None = None
    ) -> list[StoredShare]:
        # A link's versions share its creation time: the keyset may cut its rows.
        where = "project_id = %(project)s"
        params: dict[str, Any] = {"project": project_id}
        if after is not None:
            where += " AND (created_ns, id) < (%(created)s, %(id)s)"
            params.update(created=after[0], id=after[1])
        sql = _latest(where) + " ORDER BY created_ns DESC, id DESC"
        if limit is not None:
            sql += " LIMIT %(limit)s"
            params["limit"] = limit
        return [_share(r) for r in self._rows(sql, params)]

    def revoke(self, project_id: int, share_id: str) -> bool:
        found = self._rows(
            _latest("project_id = %(project)s AND id = %(id)s"),
            {"project": project_id, "id": share_id},
        )
        if not found:
            return False
        share = _share(found[0])
        if share.revoked_ns is not None:
            return False
        self._insert(TABLE, [self._row(share, time.time_ns())], _INSERT_COLUMNS)
        return True

    def by_token_hash(self, token_hash: bytes) -> StoredShare | None:
        found = self._rows(_latest("token_hash = %(hash)s"), {"hash": token_hash.hex()})
        return _share(found[0]) if found else None
