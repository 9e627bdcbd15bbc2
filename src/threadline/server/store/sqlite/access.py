"""Projects and API keys in ``SQLiteStore``: keys are stored as digests only."""

from __future__ import annotations

import hmac
import time

from threadline.server.model import KeyAccess, KeyInfo, KeyScope, Project, ns_to_datetime
from threadline.server.store.keys import key_digest, key_prefix, new_key
from threadline.server.store.sqlite.database import Database


class Access(Database):
    def create_project(self, name: str) -> Project:
        with self._transaction() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO projects (name, created_ns) VALUES (?, ?)",
                (name, time.time_ns()),
            )
            row = conn.execute("SELECT id, name FROM projects WHERE name = ?", (name,)).fetchone()
        return Project(id=row[0], name=row[1])

    def list_projects(self) -> list[Project]:
        with self._read() as conn:
            rows = conn.execute("SELECT id, name FROM projects ORDER BY id").fetchall()
        return [Project(id=r[0], name=r[1]) for r in rows]

    def create_key(self, project_id: int, scope: KeyScope = "full") -> str:
        key = new_key()
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO api_keys (project_id, key_hash, prefix, scope, created_ns)"
                " VALUES (?, ?, ?, ?, ?)",
                (project_id, key_digest(key), key_prefix(key), scope, time.time_ns()),
            )
        return key

    def access_for_key(self, key: str) -> KeyAccess | None:
        digest = key_digest(key)
        with self._read() as conn:
            row = conn.execute(
                "SELECT p.id, p.name, k.key_hash, k.scope FROM api_keys k JOIN projects p"
                " ON p.id = k.project_id WHERE k.key_hash = ? AND k.revoked_ns IS NULL",
                (digest,),
            ).fetchone()
        # The lookup is by digest; comparing the digests once more in constant time
        # keeps the decision itself free of timing differences.
        if row is None or not hmac.compare_digest(row[2], digest):
            return None
        return KeyAccess(project=Project(id=row[0], name=row[1]), scope=row[3])

    def list_keys(self) -> list[KeyInfo]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT k.id, p.name, k.prefix, k.scope, k.created_ns, k.revoked_ns"
                " FROM api_keys k JOIN projects p ON p.id = k.project_id ORDER BY k.id"
            ).fetchall()
        return [
            KeyInfo(
                id=r[0],
                project=r[1],
                prefix=r[2],
                scope=r[3],
                created_at=ns_to_datetime(r[4]),
                revoked_at=ns_to_datetime(r[5]) if r[5] else None,
            )
            for r in rows
        ]

    def revoke_key(self, key_id: int) -> bool:
        with self._transaction() as conn:
            cursor = conn.execute(
                "UPDATE api_keys SET revoked_ns = ? WHERE id = ? AND revoked_ns IS NULL",
                (time.time_ns(), key_id),
            )
        return cursor.rowcount > 0

    def rotate_key(self, key_id: int) -> str | None:
        key = new_key()
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT project_id, scope FROM api_keys WHERE id = ? AND revoked_ns IS NULL",
                (key_id,),
            ).fetchone()
            if row is None:
                return None
            now = time.time_ns()
            conn.execute("UPDATE api_keys SET revoked_ns = ? WHERE id = ?", (now, key_id))
            conn.execute(
                "INSERT INTO api_keys (project_id, key_hash, prefix, scope, created_ns)"
                " VALUES (?, ?, ?, ?, ?)",
                (row[0], key_digest(key), key_prefix(key), row[1], now),
            )
        return key
