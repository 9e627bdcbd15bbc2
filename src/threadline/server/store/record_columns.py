"""The columns of the tables that hold one record a row, declared once for both backends.

Share links, projects and API keys, scores (their rollups, configurations and notes)
and evaluation runs: each table's columns are its
record's fields, in the record's order, so the SQL column lists, an insert's values
(``Columns.values``) and a row read back (``Columns.read``) all come from the record
and no code counts positions. A backend that stores a field otherwise (ClickHouse
keeps digests as hex, SQLite lists as JSON) passes its conversion by field name. Kept
apart from ``columns.py``, which the ingest worker processes import for span rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import fields
from typing import Any

from threadline.server.evaluation.model import RunRecord
from threadline.server.model import (
    KeyInfo,
    Note,
    NoteIn,
    ScoreConfig,
    ScoreRecord,
    ns_to_datetime,
)
from threadline.server.store.base import StoredKey, StoredNote, StoredShare
from threadline.server.store.columns import Columns
from threadline.server.store.score_rollups import ScoreRollup

SHARES = Columns(*(f.name for f in fields(StoredShare)))
PROJECTS = Columns("id", "name")
KEYS = Columns(*(f.name for f in fields(StoredKey)))
# A key read with the name of its project (joined), as the keys list shows it.
KEYS_NAMED = KEYS + Columns("project_name")
SCORES = Columns(*(f.name for f in fields(ScoreRecord)))
SCORE_ROLLUPS = Columns(*(f.name for f in fields(ScoreRollup)))
SCORE_CONFIGS = Columns(*ScoreConfig.model_fields)
NOTES = Columns(*(f.name for f in fields(StoredNote)))
RUNS = Columns(*(f.name for f in fields(RunRecord)))


def key_info(row: Sequence[Any]) -> KeyInfo:
    """A ``KEYS_NAMED`` row as the keys list shows it (the digest is not shown)."""
    named = KEYS_NAMED.named(row)
    revoked = named["revoked_ns"]
    return KeyInfo(
        id=named["id"],
        project=named["project_name"],
        prefix=named["prefix"],
        scope=named["scope"],
        created_at=ns_to_datetime(named["created_ns"]),
        revoked_at=ns_to_datetime(revoked) if revoked is not None else None,
    )


def new_note(note: NoteIn, created_ns: int) -> StoredNote:
    """A note as written: a new id, its trace id in the stored (lower) case."""
    return StoredNote(
        id=uuid.uuid4().hex,
        session_id=note.session_id,
        trace_id=note.trace_id.lower() if note.trace_id else None,
        body=note.body,
        author=note.author,
        created_ns=created_ns,
    )


def note(stored: StoredNote) -> Note:
    """A stored note as the API shows it."""
    return Note(
        id=stored.id,
        session_id=stored.session_id,
        trace_id=stored.trace_id,
        body=stored.body,
        author=stored.author,
        created_at=ns_to_datetime(stored.created_ns),
    )
