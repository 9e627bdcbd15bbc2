"""The embedded default store: one SQLite file in WAL mode.

One writer connection behind a lock does every write; readers take connections from a
small pool and, thanks to WAL, never wait for the writer. Rollups are updated in the
same transaction as the spans that change them, so a committed export is immediately
visible, totals included.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import queue
import secrets
import sqlite3
import threading
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from threadline.server.model import (
    KeyInfo,
    Page,
    Project,
    Session,
    SessionDetail,
    SessionQuery,
    Span,
    SpanEvent,
    SpanRecord,
    Trace,
    TraceDetail,
    TraceQuery,
    datetime_to_ns,
    ns_to_datetime,
)
from threadline.server.store import cursors
from threadline.server.store.rollups import (
    PREVIEW_CHARS,
    SpanFacts,
    TraceRollup,
    roll_up_session,
    roll_up_trace,
)

_READERS = 8
# SQLite allows 32766 bound variables; batches of ids stay well under it.
_IN_CHUNK = 500


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class SQLiteStore:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._write_lock = threading.Lock()
        self._writer = self._connect()
        _migrate(self._writer)
        self._readers: queue.LifoQueue[sqlite3.Connection] = queue.LifoQueue()
        self._reader_count = 0
        self._reader_lock = threading.Lock()

    # --- connections ----------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE ... COMMIT).
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a commit survives a crash of the process (what SIGKILL
        # tests), and only a power loss may roll back the last transactions.
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=10000")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA cache_size=-65536")
        conn.execute("PRAGMA temp_store=MEMORY")
        return conn

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        try:
            conn = self._readers.get_nowait()
        except queue.Empty:
            conn = self._connect()
        try:
            yield conn
        finally:
            if self._readers.qsize() < _READERS:
                self._readers.put(conn)
            else:
                conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._write_lock:
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def close(self) -> None:
        with self._write_lock:
            self._writer.close()
        while True:
            try:
                self._readers.get_nowait().close()
            except queue.Empty:
                break

    # --- ingest ---------------------------------------------------------------------

    def write_spans(self, project_id: int, spans: Sequence[SpanRecord]) -> int:
        if not spans:
            return 0
        rows = [_span_row(project_id, span) for span in spans]
        trace_ids = sorted({span.trace_id for span in spans})
        with self._transaction() as conn:
            before = conn.total_changes
            conn.executemany(_INSERT_SPAN, rows)
            new = conn.total_changes - before
            if new:
                self._refresh_rollups(conn, project_id, trace_ids)
        return new

    def _refresh_rollups(
        self, conn: sqlite3.Connection, project_id: int, trace_ids: list[str]
    ) -> None:
        # Sessions to refresh: those the traces belonged to before and after, since a
        # late span may move a trace into a session.
        sessions = {
            row[0]
            for row in _select_in(
                conn,
                "SELECT session_id FROM traces WHERE project_id = ? AND session_id IS NOT NULL"
                " AND trace_id IN ({})",
                (project_id,),
                trace_ids,
            )
        }
        facts: dict[str, list[SpanFacts]] = defaultdict(list)
        preview = (PREVIEW_CHARS, PREVIEW_CHARS, project_id)
        for row in _select_in(conn, _SELECT_SPAN_FACTS, preview, trace_ids):
            facts[row[0]].append(_span_facts(row))
        rollups = [roll_up_trace(trace_id, spans) for trace_id, spans in facts.items()]
        conn.executemany(_UPSERT_TRACE, [_trace_row(project_id, r) for r in rollups])
        sessions.update(r.session_id for r in rollups if r.session_id)
        if not sessions:
            return
        by_session: dict[str, list[TraceRollup]] = defaultdict(list)
        for row in _select_in(
            conn, _SELECT_TRACES + " AND session_id IN ({})", (project_id,), sorted(sessions)
        ):
            trace = _trace_rollup(row)
            by_session[trace.session_id or ""].append(trace)
        conn.executemany(
            _UPSERT_SESSION,
            [_session_row(project_id, roll_up_session(sid, ts)) for sid, ts in by_session.items()],
        )
        # A session whose every trace moved away has no rollup any more.
        gone = sessions - by_session.keys()
        conn.executemany(
            "DELETE FROM sessions WHERE project_id = ? AND session_id = ?",
            [(project_id, sid) for sid in gone],
        )

    # --- queries --------------------------------------------------------------------

    def list_sessions(self, project_id: int, query: SessionQuery) -> Page[Session]:
        where = ["project_id = ?"]
        args: list[Any] = [project_id]
        if query.user_id:
            where.append(
                "session_id IN (SELECT session_id FROM traces"
                " WHERE project_id = ? AND user_id = ? AND session_id IS NOT NULL)"
            )
            args += [project_id, query.user_id]
        _time_overlap(where, args, query.start, query.end)
        if query.q:
            pattern = _like(query.q)
            where.append(
                "(session_id LIKE ? ESCAPE '\\' OR first_input LIKE ? ESCAPE '\\'"
                " OR last_output LIKE ? ESCAPE '\\')"
            )
            args += [pattern] * 3
        if query.cursor:
            end_ns, session_id = cursors.decode(query.cursor, int, str)
            where.append("(end_ns, session_id) < (?, ?)")
            args += [end_ns, session_id]
        sql = (
            f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE {' AND '.join(where)}"
            " ORDER BY end_ns DESC, session_id DESC LIMIT ?"
        )
        with self._read() as conn:
            rows = conn.execute(sql, [*args, query.limit + 1]).fetchall()
        items = [_session(row) for row in rows[: query.limit]]
        next_cursor = None
        if len(rows) > query.limit:
            last = rows[query.limit - 1]
            next_cursor = cursors.encode(last[4], last[0])
        return Page[Session](items=items, next_cursor=next_cursor)

    def get_session(self, project_id: int, session_id: str) -> SessionDetail | None:
        with self._read() as conn:
            row = conn.execute(
                f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE project_id = ? AND session_id = ?",
                (project_id, session_id),
            ).fetchone()
            if row is None:
                return None
            traces = conn.execute(
                _SELECT_TRACES + " AND session_id = ? ORDER BY start_ns, trace_id",
                (project_id, session_id),
            ).fetchall()
        session = _session(row)
        return SessionDetail(
            **session.model_dump(), traces=[_trace(_trace_rollup(t)) for t in traces]
        )

    def list_traces(self, project_id: int, query: TraceQuery) -> Page[Trace]:
        where = ["project_id = ?"]
        args: list[Any] = [project_id]
        for column in ("session_id", "user_id", "status"):
            value = getattr(query, column)
            if value:
                where.append(f"{column} = ?")
                args.append(value)
        _time_overlap(where, args, query.start, query.end)
        if query.q:
            pattern = _like(query.q)
            where.append(
                "(name LIKE ? ESCAPE '\\' OR input_preview LIKE ? ESCAPE '\\'"
                " OR output_preview LIKE ? ESCAPE '\\')"
            )
            args += [pattern] * 3
        if query.cursor:
            start_ns, trace_id = cursors.decode(query.cursor, int, str)
            where.append("(start_ns, trace_id) < (?, ?)")
            args += [start_ns, trace_id]
        sql = (
            f"{_SELECT_TRACES_FROM} WHERE {' AND '.join(where)}"
            " ORDER BY start_ns DESC, trace_id DESC LIMIT ?"
        )
        with self._read() as conn:
            rows = conn.execute(sql, [*args, query.limit + 1]).fetchall()
        rollups = [_trace_rollup(row) for row in rows]
        next_cursor = None
        if len(rollups) > query.limit:
            last = rollups[query.limit - 1]
            next_cursor = cursors.encode(last.start_ns, last.trace_id)
        return Page[Trace](items=[_trace(r) for r in rollups[: query.limit]],
                           next_cursor=next_cursor)

    def get_trace(self, project_id: int, trace_id: str) -> TraceDetail | None:
        with self._read() as conn:
            row = conn.execute(
                _SELECT_TRACES + " AND trace_id = ?", (project_id, trace_id)
            ).fetchone()
            if row is None:
                return None
            spans = conn.execute(
                f"SELECT {_SPAN_COLUMNS} FROM spans WHERE project_id = ? AND trace_id = ?"
                " ORDER BY start_ns, span_id",
                (project_id, trace_id),
            ).fetchall()
        trace = _trace(_trace_rollup(row))
        return TraceDetail(**trace.model_dump(), spans=[_span(s) for s in spans])

    # --- projects and keys --------------------------------------------------------

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

    def create_key(self, project_id: int) -> str:
        key = "tl_" + secrets.token_urlsafe(32)
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO api_keys (project_id, key_hash, prefix, created_ns)"
                " VALUES (?, ?, ?, ?)",
                (project_id, _hash_key(key), key[:10], time.time_ns()),
            )
        return key

    def project_for_key(self, key: str) -> Project | None:
        digest = _hash_key(key)
        with self._read() as conn:
            row = conn.execute(
                "SELECT p.id, p.name, k.key_hash FROM api_keys k JOIN projects p"
                " ON p.id = k.project_id WHERE k.key_hash = ? AND k.revoked_ns IS NULL",
                (digest,),
            ).fetchone()
        if row is None or not hmac.compare_digest(row[2], digest):
            return None
        return Project(id=row[0], name=row[1])

    def list_keys(self) -> list[KeyInfo]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT k.id, p.name, k.prefix, k.created_ns, k.revoked_ns FROM api_keys k"
                " JOIN projects p ON p.id = k.project_id ORDER BY k.id"
            ).fetchall()
        return [
            KeyInfo(
                id=r[0],
                project=r[1],
                prefix=r[2],
                created_at=ns_to_datetime(r[3]),
                revoked_at=ns_to_datetime(r[4]) if r[4] else None,
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


# --- schema ----------------------------------------------------------------------------


def _migrate(conn: sqlite3.Connection) -> None:
    """Apply the numbered files of ``migrations/`` above the recorded user_version."""
    folder = resources.files("threadline.server.store.sqlite") / "migrations"
    scripts = sorted(
        (int(entry.name.split("_", 1)[0]), entry)
        for entry in folder.iterdir()
        if entry.name.endswith(".sql")
    )
    current = conn.execute("PRAGMA user_version").fetchone()[0]
    for version, entry in scripts:
        if version <= current:
            continue
        # executescript commits first, so the script and its version bump run in one
        # explicit transaction of their own.
        conn.executescript(
            f"BEGIN IMMEDIATE;\n{entry.read_text()}\nPRAGMA user_version = {version};\nCOMMIT;"
        )


def _hash_key(key: str) -> bytes:
    # Keys are 256-bit random secrets, so a fast hash is enough: there is nothing to
    # brute-force that a slow hash would protect.
    return hashlib.sha256(key.encode()).digest()


# --- rows ------------------------------------------------------------------------------

_INSERT_SPAN = """
INSERT OR IGNORE INTO spans (
    project_id, trace_id, span_id, parent_span_id, name, kind, start_ns, end_ns, status,
    status_message, span_type, input, output, model, input_tokens, output_tokens,
    total_tokens, cost_usd, attributes, events, resource, scope, session_id, user_id,
    metadata, tags
) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""


def _span_row(project_id: int, s: SpanRecord) -> tuple[Any, ...]:
    return (
        project_id, s.trace_id, s.span_id, s.parent_span_id, s.name, s.kind, s.start_ns,
        s.end_ns, s.status, s.status_message, s.span_type, s.input, s.output, s.model,
        s.input_tokens, s.output_tokens, s.total_tokens, s.cost_usd, _dumps(s.attributes),
        _dumps(s.events), _dumps(s.resource), s.scope, s.session_id, s.user_id,
        _dumps(s.metadata), _dumps(s.tags),
    )


_SELECT_SPAN_FACTS = (
    "SELECT trace_id, span_id, parent_span_id, name, start_ns, end_ns, status,"
    " input_tokens, output_tokens, total_tokens, cost_usd, session_id, user_id, metadata,"
    " tags, substr(input, 1, ?), substr(output, 1, ?)"
    " FROM spans WHERE project_id = ? AND trace_id IN ({})"
)


def _span_facts(row: tuple[Any, ...]) -> SpanFacts:
    return SpanFacts(
        span_id=row[1], parent_span_id=row[2], name=row[3], start_ns=row[4], end_ns=row[5],
        is_error=row[6] == "error", input_tokens=row[7], output_tokens=row[8],
        total_tokens=row[9], cost_usd=row[10], session_id=row[11], user_id=row[12],
        metadata=json.loads(row[13]), tags=json.loads(row[14]), input_preview=row[15],
        output_preview=row[16],
    )


_TRACE_COLUMNS = (
    "trace_id, session_id, user_id, name, start_ns, end_ns, span_count, error_count,"
    " input_tokens, output_tokens, total_tokens, cost_usd, status, tags, metadata,"
    " input_preview, output_preview"
)
_SELECT_TRACES_FROM = f"SELECT {_TRACE_COLUMNS} FROM traces"
_SELECT_TRACES = _SELECT_TRACES_FROM + " WHERE project_id = ?"
_UPSERT_TRACE = (
    f"INSERT OR REPLACE INTO traces (project_id, {_TRACE_COLUMNS})"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _trace_row(project_id: int, r: TraceRollup) -> tuple[Any, ...]:
    return (
        project_id, r.trace_id, r.session_id, r.user_id, r.name, r.start_ns, r.end_ns,
        r.span_count, r.error_count, r.input_tokens, r.output_tokens, r.total_tokens,
        r.cost_usd, r.status, _dumps(r.tags), _dumps(r.metadata), r.input_preview,
        r.output_preview,
    )


def _trace_rollup(row: tuple[Any, ...]) -> TraceRollup:
    return TraceRollup(
        trace_id=row[0], session_id=row[1], user_id=row[2], name=row[3], start_ns=row[4],
        end_ns=row[5], span_count=row[6], error_count=row[7], input_tokens=row[8],
        output_tokens=row[9], total_tokens=row[10], cost_usd=row[11], status=row[12],
        tags=json.loads(row[13]), metadata=json.loads(row[14]), input_preview=row[15],
        output_preview=row[16],
    )


def _trace(r: TraceRollup) -> Trace:
    return Trace(
        trace_id=r.trace_id,
        session_id=r.session_id,
        user_id=r.user_id,
        name=r.name,
        start_time=ns_to_datetime(r.start_ns),
        end_time=ns_to_datetime(r.end_ns),
        duration_ms=(r.end_ns - r.start_ns) / 1e6,
        span_count=r.span_count,
        error_count=r.error_count,
        input_tokens=r.input_tokens,
        output_tokens=r.output_tokens,
        total_tokens=r.total_tokens,
        cost_usd=r.cost_usd,
        status=r.status,  # type: ignore[arg-type]
        tags=r.tags,
        metadata=r.metadata,
        input_preview=r.input_preview,
        output_preview=r.output_preview,
    )


_SESSION_COLUMNS = (
    "session_id, trace_count, span_count, start_ns, end_ns, input_tokens, output_tokens,"
    " total_tokens, cost_usd, error_count, user_ids, first_input, last_output"
)
_UPSERT_SESSION = (
    f"INSERT OR REPLACE INTO sessions (project_id, {_SESSION_COLUMNS})"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _session_row(project_id: int, r: Any) -> tuple[Any, ...]:
    return (
        project_id, r.session_id, r.trace_count, r.span_count, r.start_ns, r.end_ns,
        r.input_tokens, r.output_tokens, r.total_tokens, r.cost_usd, r.error_count,
        _dumps(r.user_ids), r.first_input, r.last_output,
    )


def _session(row: tuple[Any, ...]) -> Session:
    return Session(
        session_id=row[0],
        trace_count=row[1],
        span_count=row[2],
        start_time=ns_to_datetime(row[3]),
        end_time=ns_to_datetime(row[4]),
        duration_ms=(row[4] - row[3]) / 1e6,
        input_tokens=row[5],
        output_tokens=row[6],
        total_tokens=row[7],
        cost_usd=row[8],
        error_count=row[9],
        user_ids=json.loads(row[10]),
        first_input=row[11],
        last_output=row[12],
    )


_SPAN_COLUMNS = (
    "span_id, parent_span_id, name, span_type, kind, start_ns, end_ns, status,"
    " status_message, input, output, model, input_tokens, output_tokens, total_tokens,"
    " cost_usd, attributes, events, resource"
)


def _span(row: tuple[Any, ...]) -> Span:
    return Span(
        span_id=row[0],
        parent_span_id=row[1],
        name=row[2],
        span_type=row[3],
        kind=row[4],
        start_time=ns_to_datetime(row[5]),
        end_time=ns_to_datetime(row[6]),
        duration_ms=(row[6] - row[5]) / 1e6,
        status=row[7],
        status_message=row[8],
        input=_json_or_text(row[9]),
        output=_json_or_text(row[10]),
        model=row[11],
        input_tokens=row[12],
        output_tokens=row[13],
        total_tokens=row[14],
        cost_usd=row[15],
        attributes=json.loads(row[16]),
        events=[
            SpanEvent(name=e["name"], time=ns_to_datetime(e["time_ns"]),
                      attributes=e["attributes"])
            for e in json.loads(row[17])
        ],
        resource=json.loads(row[18]),
    )


def _json_or_text(value: str | None) -> Any:
    if value is None:
        return None
    try:
        return json.loads(value)
    except ValueError:
        return value


# --- query helpers ---------------------------------------------------------------------


def _select_in(
    conn: sqlite3.Connection, sql: str, params: Sequence[Any], ids: Sequence[str]
) -> Iterator[tuple[Any, ...]]:
    """Run ``sql`` (``params`` first, then one ``{}`` for the IN list) over ``ids`` in
    chunks, since SQLite bounds the number of parameters of a statement."""
    for i in range(0, len(ids), _IN_CHUNK):
        chunk = ids[i : i + _IN_CHUNK]
        yield from conn.execute(sql.format(", ".join("?" * len(chunk))), (*params, *chunk))


def _time_overlap(where: list[str], args: list[Any], start: Any, end: Any) -> None:
    """Keep what was active in [start, end]: a long session shows in every window."""
    if start is not None:
        where.append("end_ns >= ?")
        args.append(datetime_to_ns(start))
    if end is not None:
        where.append("start_ns <= ?")
        args.append(datetime_to_ns(end))


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
