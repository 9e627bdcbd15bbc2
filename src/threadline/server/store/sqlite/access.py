"""Projects and API keys in ``SQLiteStore``: keys are stored as digests only."""

from __future__ import annotations

import hmac
import time

from threadline.server.model import KeyAccess, KeyInfo, KeyScope, Project
from threadline.server.store.base import StoredKey
from threadline.server.store.columns import Columns
from threadline.server.store.keys import key_digest, key_prefix, new_key
from threadline.server.store.record_columns import KEYS, KEYS_NAMED, PROJECTS, key_info
from threadline.server.store.sqlite.database import Database
from threadline.server.store.sqlite.driver import sqlite3


class Access(Database):
    def create_project(self, name: str) -> Project:
        with self._transaction() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO projects (name, created_ns) VALUES (?, ?)",
                (name, time.time_ns()),
            )
            row = conn.execute(
                f"SELECT {PROJECTS.sql} FROM projects WHERE name = ?", (name,)
            ).fetchone()
        return PROJECTS.read(row, Project)

    def list_projects(self) -> list[Project]:
        with self._read() as conn:
            rows = conn.execute(f"SELECT {PROJECTS.sql} FROM projects ORDER BY id").fetchall()
        return [PROJECTS.read(r, Project) for r in rows]

    def create_key(self, project_id: int, scope: KeyScope = "full") -> str:
        key = new_key()
        with self._transaction() as conn:
            insert_key(conn, _new_key(project_id, key, scope, time.time_ns()))
        return key

    def access_for_key(self, key: str) -> KeyAccess | None:
        digest = key_digest(key)
        with self._read() as conn:
            row = conn.execute(
                f"SELECT {_KEYS_NAMED} WHERE k.key_hash = ? AND k.revoked_ns IS NULL", (digest,)
            ).fetchone()
        if row is None:
            return None
        found = KEYS_NAMED.named(row)
        # The lookup is by digest; comparing the digests once more in constant time
        # keeps the decision itself free of timing differences.
        if not hmac.compare_digest(found["key_hash"], digest):
            return None
        project = Project(id=found["project_id"], name=found["project_name"])
        return KeyAccess(project=project, scope=found["scope"])

    def list_keys(self) -> list[KeyInfo]:
        with self._read() as conn:
            rows = conn.execute(f"SELECT {_KEYS_NAMED} ORDER BY k.id").fetchall()
        return [key_info(r) for r in rows]

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
                f"SELECT {KEYS.sql} FROM api_keys WHERE id = ? AND revoked_ns IS NULL", (key_id,)
            ).fetchone()
            if row is None:
                return None
            old = KEYS.read(row, StoredKey)
            now = time.time_ns()
            conn.execute("UPDATE api_keys SET revoked_ns = ? WHERE id = ?", (now, key_id))
            insert_key(conn, _new_key(old.project_id, key, old.scope, now))
        return key


# Every key with its project's name (KEYS_NAMED), for a WHERE or ORDER BY to follow.
_KEYS_NAMED = (
    f"{KEYS.qualified('k')}, p.name AS project_name"
    " FROM api_keys k JOIN projects p ON p.id = k.project_id"
)
# A new key's columns: all but the id, which SQLite numbers.
_NEW_KEY = Columns(*(name for name in KEYS.names if name != "id"))


def insert_key(conn: sqlite3.Connection, key: StoredKey, *, or_ignore: bool = False) -> None:
    """Store ``key`` under a new id (a copied key whose digest is there already is left
    alone with ``or_ignore``)."""
    verb = "INSERT OR IGNORE" if or_ignore else "INSERT"
    conn.execute(
        f"{verb} INTO api_keys ({_NEW_KEY.sql}) VALUES ({_NEW_KEY.qmarks})", _NEW_KEY.values(key)
    )


def _new_key(project_id: int, key: str, scope: KeyScope, created_ns: int) -> StoredKey:
    return StoredKey(0, project_id, key_digest(key), key_prefix(key), scope, created_ns, None)
