"""``SQLiteStore`` read whole and written whole, for ``threadline migrate`` (one store
copied into another): access, spans and scores in keyset batches, annotations."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from threadline.server.model import Project, ScoreRecord, SpanRecord
from threadline.server.store import rows as table_rows
from threadline.server.store.base import AccessRecords, ProjectAnnotations, StoredKey
from threadline.server.store.columns import SPAN_RECORD
from threadline.server.store.record_columns import KEYS, PROJECTS
from threadline.server.store.sqlite import scores
from threadline.server.store.sqlite.access import insert_key
from threadline.server.store.sqlite.database import Database


class Transfer(Database):
    def dump_access(self) -> AccessRecords:
        with self._read() as conn:
            projects = conn.execute(f"SELECT {PROJECTS.sql} FROM projects ORDER BY id").fetchall()
            keys = conn.execute(f"SELECT {KEYS.sql} FROM api_keys ORDER BY id").fetchall()
        return AccessRecords(
            projects=[PROJECTS.read(r, Project) for r in projects],
            keys=[KEYS.read(r, StoredKey) for r in keys],
        )

    def load_access(self, records: AccessRecords) -> dict[int, int]:
        ids: dict[int, int] = {}
        with self._transaction() as conn:
            for project in records.projects:
                row = conn.execute(
                    "SELECT id FROM projects WHERE name = ?", (project.name,)
                ).fetchone()
                if row is None:
                    taken = conn.execute(
                        "SELECT 1 FROM projects WHERE id = ?", (project.id,)
                    ).fetchone()
                    cursor = conn.execute(
                        "INSERT INTO projects (id, name, created_ns) VALUES (?, ?, ?)",
                        (None if taken else project.id, project.name, time.time_ns()),
                    )
                    assert cursor.lastrowid is not None  # set by every INSERT
                    ids[project.id] = cursor.lastrowid
                else:
                    ids[project.id] = row[0]
            for key in records.keys:
                insert_key(conn, replace(key, project_id=ids[key.project_id]), or_ignore=True)
        return ids

    def count_spans(self) -> int:
        with self._read() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM spans").fetchone()[0])

    def iter_spans(self, batch_size: int) -> Iterator[tuple[int, list[SpanRecord]]]:
        after: tuple[Any, ...] = (-1, "")
        span_id = SPAN_RECORD.position("span_id")
        while True:
            with self._read() as conn:
                # In the order of the spans' uniqueness index: a trace's spans together.
                found = conn.execute(
                    f"SELECT {SPAN_RECORD.sql}, trace_key FROM spans"
                    " WHERE (trace_key, span_id) > (?, ?) ORDER BY trace_key, span_id LIMIT ?",
                    (*after, batch_size),
                ).fetchall()
            if not found:
                return
            after = (found[-1][-1], found[-1][span_id])
            unpack = self._payloads.unpacker()
            by_project: dict[int, list[SpanRecord]] = defaultdict(list)
            for row in found:
                # Inputs and outputs may be stored packed (zstd): hand on the text.
                record = table_rows.span_record(row, unpack)
                by_project[table_rows.span_record_key(row)[0]].append(record)
            yield from by_project.items()

    def iter_scores(self, batch_size: int) -> Iterator[tuple[int, list[ScoreRecord]]]:
        after: tuple[int, str] = (-1, "")
        while True:
            with self._read() as conn:
                found = scores.iter_records(conn, after, batch_size)
            if not found:
                return
            after = (found[-1][0], found[-1][1].id)
            by_project: dict[int, list[ScoreRecord]] = defaultdict(list)
            for project_id, record in found:
                by_project[project_id].append(record)
            yield from by_project.items()

    def dump_annotations(self, project_id: int) -> ProjectAnnotations:
        with self._read() as conn:
            return ProjectAnnotations(
                configs=scores.list_configs(conn, project_id),
                notes=scores.stored_notes(conn, project_id),
                allowed_origins=scores.allowed_origins(conn, project_id),
            )

    def load_annotations(self, project_id: int, annotations: ProjectAnnotations) -> None:
        with self._transaction() as conn:
            for config in annotations.configs:
                scores.put_config(conn, project_id, config)
            scores.load_notes(conn, project_id, annotations.notes)
            if annotations.allowed_origins:
                origins = scores.allowed_origins(conn, project_id)
                scores.set_allowed_origins(
                    conn, project_id, [*origins, *annotations.allowed_origins]
                )
