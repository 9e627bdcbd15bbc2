"""The scale-out store: ClickHouse, shared by any number of stateless Threadline servers.

Spans are appended to a ReplacingMergeTree keyed on (project, trace, span); trace and
session rollups are appended as new versions, computed with the same pure rules as
the SQLite store (``store/rollups.py``), and reads pick each row's newest version.
Why this stays right when the spans of one trace arrive through several servers at
once is explained in ``docs/architecture.md`` and ``migrations/0001_initial.sql``:
in short, every writer recomputes a rollup from what is stored *after* its own insert
is acknowledged, and the version (spans seen) makes the most complete rollup win.

An export is acknowledged only after ClickHouse has accepted the insert: inserts are
synchronous, or asynchronous with ``wait_for_async_insert=1`` (the default here).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from threadline.server.errors import Overloaded
from threadline.server.model import (
    KeyAccess,
    KeyInfo,
    KeyScope,
    Metrics,
    MetricsQuery,
    Note,
    NoteIn,
    Page,
    Project,
    Score,
    ScoreConfig,
    ScoreQuery,
    ScoreRecord,
    Session,
    SessionDetail,
    SessionQuery,
    SpanRecord,
    Trace,
    TraceDetail,
    TraceQuery,
    UserQuery,
    UserSummary,
    metadata_text,
    ns_to_datetime,
)
from threadline.server.store import cursors, span_records
from threadline.server.store import metrics as metric_rules
from threadline.server.store.base import (
    AccessRecords,
    ProjectAnnotations,
    StoredKey,
    StoredShare,
)
from threadline.server.store.clickhouse import (
    inference,
    metrics,
    queries,
    rows,
    schema,
    scores,
    shares,
)
from threadline.server.store.clickhouse.evaluations import EvaluationTables
from threadline.server.store.clickhouse.queries import Filters
from threadline.server.store.rollups import (
    PREVIEW_CHARS,
    SessionRollup,
    StoredSpanFacts,
    TraceRollup,
    preview_sources,
    roll_up_session,
    roll_up_trace,
)

# Trace ids per statement: keeps each statement well under ClickHouse's max_query_size.
_IN_CHUNK = 1000
# What each payload column fills in for the previews (``rollups.StoredSpanFacts``).
_PREVIEW_FIELDS = {"input": "input_text", "output": "output_preview"}
# The live feed's position is the ClickHouse server's clock at insert time; a part may
# become visible slightly after a later-stamped one. Watermarks lag by this much, so a
# write is seen twice (harmless) rather than never.
_FEED_SLACK_NS = 2_000_000_000
# Inserts are acknowledged once ClickHouse holds them; with async inserts, the server
# batches concurrent small inserts into one part and answers each after the flush.
_DEFAULT_SETTINGS = {"async_insert": 1, "wait_for_async_insert": 1}

_TRACE_INSERT_COLUMNS = ["project_id", "trace_id", "span_count", *queries.TRACE_FIELDS]
_SESSION_INSERT_COLUMNS = ["project_id", "session_id", "version", *queries.SESSION_FIELDS]
_KEY_COLUMNS = [
    "id",
    "project_id",
    "key_hash",
    "prefix",
    "scope",
    "created_ns",
    "revoked_ns",
    "is_revoked",
]


def _client(url: str) -> Any:
    """A clickhouse-connect client for ``clickhouse[s]://user:password@host:port/db``,
    the database created if missing. URL query parameters are ClickHouse settings."""
    try:
        import clickhouse_connect
    except ImportError:
        raise SystemExit(
            "threadline: the ClickHouse store needs clickhouse-connect:"
            " pip install 'threadline[clickhouse]'"
        ) from None
    parts = urlsplit(url)
    secure = parts.scheme == "clickhouses"
    database = unquote(parts.path.lstrip("/")) or "threadline"
    try:
        port = parts.port
    except ValueError:
        raise SystemExit(f"threadline: bad port in store URL {_without_password(url)!r}") from None
    connection: dict[str, Any] = {
        "host": parts.hostname or "localhost",
        "port": port or (8443 if secure else 8123),
        "username": unquote(parts.username or "default"),
        "password": unquote(parts.password or ""),
        "secure": secure,
        # One client is shared by the server's threads: no HTTP session, whose queries
        # ClickHouse would run one at a time.
        "autogenerate_session_id": False,
        "settings": {**_DEFAULT_SETTINGS, **dict(parse_qsl(parts.query))},
    }
    from clickhouse_connect.driver.exceptions import ClickHouseError

    try:
        bootstrap = clickhouse_connect.get_client(**connection)
        try:
            bootstrap.command(f"CREATE DATABASE IF NOT EXISTS `{database.replace('`', '')}`")
        finally:
            bootstrap.close()
        return clickhouse_connect.get_client(**connection, database=database)
    except ClickHouseError as error:
        raise SystemExit(
            f"threadline: cannot open the ClickHouse store {_without_password(url)}:"
            f" {_first_line(error)}"
        ) from None


def _without_password(url: str) -> str:
    """The URL as it may be printed: the password, if any, replaced."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


class ClickHouseStore(EvaluationTables):
    def __init__(self, url: str, retention_days: int | None = None):
        if retention_days is not None and retention_days < 0:
            raise SystemExit(f"threadline: retention_days must be 0 or more, not {retention_days}")
        self.url = url
        self._ch = _client(url)
        self.schema_version = schema.migrate(self._ch)
        if retention_days is not None:
            schema.apply_retention(self._ch, retention_days)
        # Column types, read once: clickhouse-connect would otherwise DESCRIBE the
        # table before every insert, one more round trip per export.
        self._types = {
            table: dict(
                self._rows(
                    f"SELECT name, type FROM system.columns WHERE"
                    f" database = currentDatabase() AND table = '{table}'"
                )
            )
            for table in (
                "projects",
                "api_keys",
                "spans",
                "traces",
                "sessions",
                shares.TABLE,
                inference.TABLE,
                *scores.TABLES,
            )
        }
        self._scores = scores.ClickHouseScores(self._rows, self._insert)
        self._shares = shares.ClickHouseShares(self._rows, self._insert)
        self._inference = inference.ClickHouseSessionInference(self._rows, self._insert)
        self._closed = False

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._ch.close()

    def _rows(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        with _unavailable_means_retry():
            return self._ch.query(sql, parameters=params or {}).result_rows

    def _insert(self, table: str, data: Sequence[Sequence[Any]], columns: list[str]) -> None:
        if data:
            types = self._types[table]
            with _unavailable_means_retry():
                self._ch.insert(
                    table, data, column_names=columns, column_type_names=[types[c] for c in columns]
                )

    # --- ingest ---------------------------------------------------------------------

    def write_spans(self, project_id: int, spans: Sequence[SpanRecord]) -> int:
        if not spans:
            return 0
        trace_ids = sorted({span.trace_id for span in spans})
        stored = {
            (trace_id, span_id)
            for chunk in _chunks(trace_ids)
            for trace_id, span_id in self._rows(
                "SELECT trace_id, span_id FROM spans"
                " WHERE project_id = %(project)s AND trace_id IN %(ids)s",
                {"project": project_id, "ids": chunk},
            )
        }
        # The first copy of a span wins, as on SQLite; a copy two servers insert at the
        # same moment is stored twice and read once.
        fresh: dict[tuple[str, str], SpanRecord] = {}
        for span in spans:
            identity = (span.trace_id, span.span_id)
            if identity not in stored:
                fresh.setdefault(identity, span)
        resources: dict[int, str] = {}
        data = []
        for span in fresh.values():
            resource = resources.get(id(span.resource))
            if resource is None:
                resource = resources[id(span.resource)] = rows.dumps(span.resource)
            data.append(rows.span_row(project_id, span, resource))
        self._insert("spans", data, rows.SPAN_INSERT_COLUMNS)
        # Rollups are recomputed even when every span was stored before: the request
        # may be the retry of one whose server failed between its span insert and its
        # rollups.
        self._refresh_rollups(project_id, trace_ids, spans)
        return len(fresh)

    def _refresh_rollups(
        self, project_id: int, trace_ids: list[str], batch: Sequence[SpanRecord]
    ) -> None:
        # Read after our insert was acknowledged: of the servers writing one trace at
        # once, the one whose insert became visible last sees every span.
        facts: dict[str, dict[str, StoredSpanFacts]] = defaultdict(dict)
        for chunk in _chunks(trace_ids):
            for row in self._rows(
                f"SELECT {rows.SPAN_FACT_COLUMNS} FROM spans"
                " WHERE project_id = %(project)s AND trace_id IN %(ids)s",
                {"project": project_id, "ids": chunk},
            ):
                facts[row[0]].setdefault(row[1], rows.span_facts(row))
        self._load_previews(project_id, facts, batch)
        rollups = [
            roll_up_trace(trace_id, list(by_id.values())) for trace_id, by_id in facts.items()
        ]
        self._insert(
            "traces",
            [[project_id, r.trace_id, r.span_count, *_trace_fields(r)] for r in rollups],
            _TRACE_INSERT_COLUMNS,
        )
        self._refresh_sessions(project_id, trace_ids)

    def _load_previews(
        self,
        project_id: int,
        facts: dict[str, dict[str, StoredSpanFacts]],
        batch: Sequence[SpanRecord],
    ) -> None:
        """Fill in the previews of just the spans that stand for each trace: from the
        batch in hand when the span is in it, else read (payloads are large)."""
        in_batch = {(s.trace_id, s.span_id): s for s in batch}
        wanted: dict[str, list[tuple[str, StoredSpanFacts]]] = {"input": [], "output": []}
        for trace_id, by_id in facts.items():
            for column, source in zip(
                ("input", "output"), preview_sources(list(by_id.values())), strict=True
            ):
                if source is None:
                    continue
                record = in_batch.get((trace_id, source.span_id))
                if record is not None:
                    field = _PREVIEW_FIELDS[column]
                    setattr(source, field, getattr(record, field))
                else:
                    wanted[column].append((trace_id, source))
        for column, sources in wanted.items():
            by_identity = {(trace_id, s.span_id): s for trace_id, s in sources}
            identities = list(by_identity)
            for i in range(0, len(identities), _IN_CHUNK):
                # The whole input (its preview is its last messages), the output's beginning.
                value = column if column == "input" else f"substringUTF8({column}, 1, %(chars)s)"
                for trace_id, span_id, text in self._rows(
                    f"SELECT trace_id, span_id, {value}"
                    " FROM spans WHERE project_id = %(project)s"
                    " AND (trace_id, span_id) IN %(ids)s LIMIT 1 BY trace_id, span_id",
                    {
                        "project": project_id,
                        "chars": PREVIEW_CHARS,
                        "ids": identities[i : i + _IN_CHUNK],
                    },
                ):
                    setattr(by_identity[(trace_id, span_id)], _PREVIEW_FIELDS[column], text)

    def _refresh_sessions(self, project_id: int, trace_ids: list[str]) -> None:
        """Recompute every session the traces belong or ever belonged to.

        Read after the trace rollups were inserted, for the reason ``_refresh_rollups``
        gives. A session's version sums the newest span counts of every trace ever in
        it, so it grows with any change to the session, including a trace leaving.
        """
        touched = set(trace_ids)
        sessions: set[str] = set()
        members: dict[str, list[str]] = defaultdict(list)
        latest: dict[str, tuple[TraceRollup, int]] = {}
        for chunk in _chunks(trace_ids):
            # In one statement: every trace ever in a session of the touched traces, with
            # its newest rollup and those of its sessions (``trace_sessions`` keeps
            # memberships a trace has left; see migration 0002).
            sessions_sql = (
                "SELECT session_id FROM trace_sessions"
                " WHERE project_id = %(project)s AND trace_id IN %(ids)s"
            )
            ever_sql = (
                "SELECT trace_id, groupUniqArray(session_id) AS sessions_ever"
                " FROM trace_sessions WHERE project_id = %(project)s"
                f" AND session_id IN ({sessions_sql}) GROUP BY trace_id"
            )
            newest = queries.latest_traces(
                "project_id = %(project)s AND trace_id IN (SELECT trace_id FROM trace_sessions"
                f" WHERE project_id = %(project)s AND session_id IN ({sessions_sql}))"
            )
            for row in self._rows(
                f"SELECT {queries.TRACE_COLUMNS}, sessions_ever FROM ({newest}) AS newest"
                f" INNER JOIN ({ever_sql}) AS ever USING trace_id",
                {"project": project_id, "ids": chunk},
            ):
                latest[row[0]] = (_trace_rollup(row), row[6])
                for session_id in row[17]:
                    members[session_id].append(row[0])
                if row[0] in touched:
                    sessions.update(row[17])
        data = []
        for session_id, trace_ids_ever in members.items():
            # Only the sessions of the touched traces are here with all their traces.
            if session_id not in sessions:
                continue
            known = [latest[t] for t in trace_ids_ever if t in latest]
            version = sum(span_count for _, span_count in known)
            traces = [trace for trace, _ in known if trace.session_id == session_id]
            # A session whose traces all moved away gets an empty row, which reads skip.
            rollup = (
                roll_up_session(session_id, traces) if traces else SessionRollup.empty(session_id)
            )
            data.append([project_id, session_id, version, *_session_fields(rollup)])
        self._insert("sessions", data, _SESSION_INSERT_COLUMNS)

    # --- share links ----------------------------------------------------------------

    def add_share(self, share: StoredShare) -> None:
        self._shares.add(share)

    def list_shares(self, project_id: int) -> list[StoredShare]:
        return self._shares.list_for(project_id)

    def revoke_share(self, project_id: int, share_id: str) -> bool:
        return self._shares.revoke(project_id, share_id)

    def share_by_token_hash(self, token_hash: bytes) -> StoredShare | None:
        return self._shares.by_token_hash(token_hash)

    # --- deletion -------------------------------------------------------------------
    # Rows are removed with lightweight DELETEs (rows masked at once, dropped by later
    # merges), not tombstone versions: a rollup's version counts the spans it saw, and a
    # trace or session that lost spans must be able to roll up again to a lower one.
    # The old rollup rows go first, then the new ones are inserted. A write racing the
    # deletion on the same session can leave that session's previous rollup in place;
    # docs/reliability.md says so.

    def _delete_rows(self, table: str, column: str, project_id: int, ids: Sequence[str]) -> None:
        for chunk in _chunks(list(ids)):
            with _unavailable_means_retry():
                self._ch.command(
                    f"DELETE FROM {table} WHERE project_id = %(project)s AND {column} IN %(ids)s",
                    parameters={"project": project_id, "ids": chunk},
                    settings={"lightweight_deletes_sync": 2},
                )

    def delete_traces(self, project_id: int, trace_ids: Sequence[str]) -> int:
        ids = sorted(set(trace_ids))
        stored: set[str] = set()
        sessions: set[str] = set()
        for chunk in _chunks(ids):
            params = {"project": project_id, "ids": chunk}
            stored.update(
                row[0]
                for row in self._rows(
                    "SELECT DISTINCT trace_id FROM traces"
                    " WHERE project_id = %(project)s AND trace_id IN %(ids)s",
                    params,
                )
            )
            sessions.update(
                row[0]
                for row in self._rows(
                    "SELECT DISTINCT session_id FROM trace_sessions"
                    " WHERE project_id = %(project)s AND trace_id IN %(ids)s",
                    params,
                )
            )
        for table in ("spans", "traces", "trace_sessions"):
            self._delete_rows(table, "trace_id", project_id, ids)
        self._scores.delete_annotations(project_id, "trace_id", ids)
        emptied = self._roll_up_sessions_again(project_id, sorted(sessions))
        self._scores.delete_annotations(project_id, "session_id", emptied)
        return len(stored)

    def delete_sessions(self, project_id: int, session_ids: Sequence[str]) -> int:
        ids = sorted(set(session_ids))
        existed = 0
        trace_ids: list[str] = []
        for chunk in _chunks(ids):
            params = {"project": project_id, "ids": chunk}
            existed += len(
                self._rows(
                    f"SELECT session_id FROM ({queries.latest_sessions()})"
                    " WHERE session_id IN %(ids)s",
                    params,
                )
            )
            trace_ids += [
                row[0]
                for row in self._rows(
                    f"SELECT trace_id FROM ({queries.latest_traces()}) WHERE session_id IN %(ids)s",
                    params,
                )
            ]
        self.delete_traces(project_id, trace_ids)
        self._scores.delete_annotations(project_id, "session_id", ids)
        return existed

    def _roll_up_sessions_again(self, project_id: int, session_ids: list[str]) -> list[str]:
        """Replace the rollups of sessions that lost traces by ones computed from the
        traces they keep; returns the sessions left with none."""
        members: list[str] = []
        for chunk in _chunks(session_ids):
            members += [
                row[0]
                for row in self._rows(
                    "SELECT DISTINCT trace_id FROM trace_sessions"
                    " WHERE project_id = %(project)s AND session_id IN %(ids)s",
                    {"project": project_id, "ids": chunk},
                )
            ]
        self._delete_rows("sessions", "session_id", project_id, session_ids)
        if members:
            self._refresh_sessions(project_id, sorted(set(members)))
        alive: set[str] = set()
        for chunk in _chunks(session_ids):
            alive.update(
                row[0]
                for row in self._rows(
                    f"SELECT session_id FROM ({queries.latest_sessions()})"
                    " WHERE session_id IN %(ids)s",
                    {"project": project_id, "ids": chunk},
                )
            )
        return [s for s in session_ids if s not in alive]

    # --- queries --------------------------------------------------------------------

    def list_sessions(self, project_id: int, query: SessionQuery) -> Page[Session]:
        f = Filters(project_id)
        if query.user_id:
            f.add(
                f"session_id IN (SELECT session_id FROM ({queries.latest_traces()})"
                f" WHERE user_id = {f.param(query.user_id)} AND session_id IS NOT NULL)"
            )
        f.time_overlap(query.start, query.end)
        if query.q:
            f.text_search(query.q, ("session_id", "first_input", "last_output"))
        if query.status == "error":
            f.add("error_count > 0")
        elif query.status == "ok":
            f.add("error_count = 0")
        conditions = f.trace_conditions(query)
        if conditions:
            # One trace of the session must meet all of them.
            f.add(
                f"session_id IN (SELECT session_id FROM ({queries.latest_traces()})"
                f" WHERE session_id IS NOT NULL AND {' AND '.join(conditions)})"
            )
        f.where += self._scores.filter_conditions(f, "session", "session_id", query.scores)
        order, order_type = queries.SESSION_SORTS[query.sort]
        if query.cursor:
            sort_key, session_id = cursors.decode(query.cursor, order_type, str)
            f.add(f"({order}, session_id) < ({f.param(sort_key)}, {f.param(session_id)})")
        found = self._rows(
            f"SELECT {queries.SESSION_COLUMNS}, {order} FROM ({queries.latest_sessions()})"
            f" WHERE {f.sql()} ORDER BY {order} DESC, session_id DESC"
            f" LIMIT {f.param(query.limit + 1)}",
            f.params,
        )
        items = [rows.session(row) for row in found[: query.limit]]
        summaries = self._scores.summaries(project_id, "session", [s.session_id for s in items])
        for item in items:
            item.scores = summaries.get(item.session_id, {})
        next_cursor = None
        if len(found) > query.limit:
            last = found[query.limit - 1]
            next_cursor = cursors.encode(last[-1], last[0])
        return Page[Session](items=items, next_cursor=next_cursor)

    def get_session(self, project_id: int, session_id: str) -> SessionDetail | None:
        params = {"project": project_id, "session": session_id}
        found = self._rows(
            f"SELECT {queries.SESSION_COLUMNS} FROM ({queries.latest_sessions()})"
            " WHERE session_id = %(session)s",
            params,
        )
        if not found:
            return None
        # Only the traces that were ever in the session, then only those whose newest
        # rollup still is.
        traces = self._rows(
            f"SELECT {queries.TRACE_COLUMNS} FROM ("
            + queries.latest_traces(
                "project_id = %(project)s AND trace_id IN (SELECT trace_id FROM trace_sessions"
                " WHERE project_id = %(project)s AND session_id = %(session)s)"
            )
            + ") WHERE session_id = %(session)s ORDER BY start_ns, trace_id",
            params,
        )
        detail = SessionDetail(
            **rows.session(found[0]).model_dump(),
            traces=[rows.trace(_trace_rollup(t)) for t in traces],
        )
        detail.scores = self._scores.summaries(project_id, "session", [session_id]).get(
            session_id, {}
        )
        by_trace = self._scores.summaries(project_id, "trace", [t.trace_id for t in detail.traces])
        for trace in detail.traces:
            trace.scores = by_trace.get(trace.trace_id, {})
        return detail

    def list_traces(self, project_id: int, query: TraceQuery) -> Page[Trace]:
        f = Filters(project_id)
        for column in ("session_id", "user_id", "status"):
            value = getattr(query, column)
            if value:
                f.add(f"{column} = {f.param(value)}")
        # A trace's newer rollups start no later and end no earlier than its older
        # ones: a row outside the window is never the newest of a trace inside it, so
        # the window can filter rows before the newest version is picked.
        inner = " AND ".join(
            ["project_id = %(project)s", *f.overlap_conditions(query.start, query.end)]
        )
        if query.q:
            f.text_search(query.q, ("name", "input_preview", "output_preview"))
        for condition in f.trace_conditions(query):
            f.add(condition)
        f.where += self._scores.filter_conditions(f, "trace", "trace_id", query.scores)
        if query.cursor:
            start_ns, trace_id = cursors.decode(query.cursor, int, str)
            f.add(f"(start_ns, trace_id) < ({f.param(start_ns)}, {f.param(trace_id)})")
        found = self._rows(
            f"SELECT {queries.TRACE_COLUMNS} FROM ({queries.latest_traces(inner)})"
            f" WHERE {f.sql()} ORDER BY start_ns DESC, trace_id DESC"
            f" LIMIT {f.param(query.limit + 1)}",
            f.params,
        )
        rollups = [_trace_rollup(row) for row in found]
        next_cursor = None
        if len(rollups) > query.limit:
            last = rollups[query.limit - 1]
            next_cursor = cursors.encode(last.start_ns, last.trace_id)
        items = [rows.trace(r) for r in rollups[: query.limit]]
        summaries = self._scores.summaries(project_id, "trace", [t.trace_id for t in items])
        for item in items:
            item.scores = summaries.get(item.trace_id, {})
        return Page[Trace](items=items, next_cursor=next_cursor)

    def get_trace(self, project_id: int, trace_id: str) -> TraceDetail | None:
        params = {"project": project_id, "trace": trace_id}
        found = self._rows(
            f"SELECT {queries.TRACE_COLUMNS} FROM ("
            + queries.latest_traces("project_id = %(project)s AND trace_id = %(trace)s")
            + ")",
            params,
        )
        if not found:
            return None
        spans = self._rows(
            f"SELECT {rows.SPAN_COLUMNS} FROM spans"
            " WHERE project_id = %(project)s AND trace_id = %(trace)s"
            " ORDER BY start_ns, span_id LIMIT 1 BY span_id",
            params,
        )
        trace = rows.trace(_trace_rollup(found[0]))
        trace.scores = self._scores.summaries(project_id, "trace", [trace_id]).get(trace_id, {})
        return TraceDetail(**trace.model_dump(), spans=[rows.span(s) for s in spans])

    # --- scores, score configurations, notes (``scores.py``) ------------------------

    def write_scores(self, project_id: int, records: Sequence[ScoreRecord]) -> None:
        if records:
            self._scores.write(project_id, records)

    def get_scores(self, project_id: int, score_ids: Sequence[str]) -> dict[str, Score]:
        return self._scores.get(project_id, score_ids)

    def list_scores(self, project_id: int, query: ScoreQuery) -> Page[Score]:
        return self._scores.list(project_id, query)

    def delete_score(self, project_id: int, score_id: str) -> bool:
        return self._scores.delete(project_id, score_id)

    def list_score_configs(self, project_id: int) -> list[ScoreConfig]:
        return self._scores.list_configs(project_id)

    def put_score_config(self, project_id: int, config: ScoreConfig) -> None:
        self._scores.put_config(project_id, config)

    def delete_score_config(self, project_id: int, name: str) -> bool:
        return self._scores.delete_config(project_id, name)

    def add_note(self, project_id: int, note: NoteIn) -> Note:
        return self._scores.add_note(project_id, note)

    def list_notes(self, project_id: int, session_id: str) -> list[Note]:
        return self._scores.list_notes(project_id, session_id)

    def delete_note(self, project_id: int, note_id: str) -> bool:
        return self._scores.delete_note(project_id, note_id)

    def allowed_origins(self, project_id: int) -> list[str]:
        return self._scores.allowed_origins(project_id)

    def set_allowed_origins(self, project_id: int, origins: Sequence[str]) -> None:
        self._scores.set_allowed_origins(project_id, origins)

    def session_inference(self, project_id: int) -> bool:
        return self._inference.enabled(project_id)

    def set_session_inference(self, project_id: int, enabled: bool) -> None:
        self._inference.set_enabled(project_id, enabled)

    # --- web UI: users, live feed -------------------------------------------------

    def list_users(self, project_id: int, query: UserQuery) -> Page[UserSummary]:
        """Users by last activity, aggregated over the traces that carry their id."""
        f = Filters(project_id)
        f.add("user_id IS NOT NULL")
        # As in list_traces, the window filters rows before the newest is picked.
        inner = " AND ".join(
            ["project_id = %(project)s", *f.overlap_conditions(query.start, query.end)]
        )
        if query.q:
            f.text_search(query.q, ("user_id",))
        having = ""
        if query.cursor:
            last_ns, user_id = cursors.decode(query.cursor, int, str)
            having = f" HAVING (max(end_ns), user) < ({f.param(last_ns)}, {f.param(user_id)})"
        found = self._rows(
            "SELECT assumeNotNull(user_id) AS user, uniqExact(session_id), count(),"
            " sum(input_tokens), sum(output_tokens), sum(total_tokens), sum(cost_usd),"
            " countIf(status = 'error'), min(start_ns), max(end_ns)"
            f" FROM ({queries.latest_traces(inner)}) WHERE {f.sql()} GROUP BY user{having}"
            f" ORDER BY max(end_ns) DESC, user DESC LIMIT {f.param(query.limit + 1)}",
            f.params,
        )
        page = rows.user_page(found, query.limit)
        summaries = self._scores.user_summaries(project_id, [u.user_id for u in page.items])
        for item in page.items:
            item.scores = summaries.get(item.user_id, {})
        return page

    def metrics(self, project_id: int, query: MetricsQuery, names: Sequence[str]) -> Metrics:
        span = metric_rules.bucket_range(query)
        rows = metrics.read(self._rows, project_id, query, span)
        return metric_rules.build(query, span, rows, names)

    def live_watermark(self, project_id: int) -> int:
        """The feed position of the project's latest trace write, less the slack above
        (0 before any). Read it *before* querying with ``changed_after``."""
        ((latest,),) = self._rows(
            "SELECT max(written_ns) FROM traces WHERE project_id = %(project)s",
            {"project": project_id},
        )
        return max(0, int(latest) - _FEED_SLACK_NS) if latest else 0

    # --- migration between stores (``threadline migrate``) ---------------------------

    def dump_access(self) -> AccessRecords:
        found = self._rows(
            f"SELECT {', '.join(_KEY_COLUMNS[:7])} FROM ({queries.latest_keys()}) ORDER BY id"
        )
        return AccessRecords(
            projects=self.list_projects(),
            keys=[StoredKey(r[0], r[1], bytes.fromhex(r[2]), *r[3:]) for r in found],
        )

    def load_access(self, records: AccessRecords) -> dict[int, int]:
        ids: dict[int, int] = {}
        taken = {p.id for p in self.list_projects()}
        for project in records.projects:
            existing = self._project_named(project.name)
            if existing is None:
                new_id = project.id if project.id not in taken else _project_id(project.name)
                self._insert(
                    "projects",
                    [[new_id, project.name, time.time_ns()]],
                    ["id", "name", "created_ns"],
                )
                existing = self._project_named(project.name)
                assert existing is not None, "a project just inserted must be readable"
            ids[project.id] = existing.id
        # Keys keep their ids: a key inserted twice is one row (the sort key is the id).
        self._insert(
            "api_keys",
            [
                [
                    k.id,
                    ids[k.project_id],
                    k.key_hash.hex(),
                    k.prefix,
                    k.scope,
                    k.created_ns,
                    k.revoked_ns,
                    int(k.revoked_ns is not None),
                ]
                for k in records.keys
            ],
            _KEY_COLUMNS,
        )
        return ids

    def count_spans(self) -> int:
        ((count,),) = self._rows(
            "SELECT count() FROM (SELECT 1 FROM spans GROUP BY project_id, trace_id, span_id)"
        )
        return int(count)

    def iter_spans(self, batch_size: int) -> Iterator[tuple[int, list[SpanRecord]]]:
        after: tuple[Any, ...] = (0, "", "")
        first = True
        while True:
            found = self._rows(
                f"SELECT {span_records.COLUMNS} FROM spans"
                f" WHERE (project_id, trace_id, span_id) {'>=' if first else '>'}"
                " (%(p)s, %(t)s, %(s)s) ORDER BY project_id, trace_id, span_id"
                " LIMIT 1 BY project_id, trace_id, span_id LIMIT %(n)s",
                {"p": after[0], "t": after[1], "s": after[2], "n": batch_size},
            )
            if not found:
                return
            first = False
            after = found[-1][:3]
            by_project: dict[int, list[SpanRecord]] = defaultdict(list)
            for row in found:
                by_project[row[0]].append(span_records.span_record(row))
            yield from by_project.items()

    def iter_scores(self, batch_size: int) -> Iterator[tuple[int, list[ScoreRecord]]]:
        return self._scores.iter_records(batch_size)

    def dump_annotations(self, project_id: int) -> ProjectAnnotations:
        return ProjectAnnotations(
            configs=self._scores.list_configs(project_id),
            notes=self._scores.stored_notes(project_id),
            allowed_origins=self._scores.allowed_origins(project_id),
        )

    def load_annotations(self, project_id: int, annotations: ProjectAnnotations) -> None:
        configs = self._scores.list_configs(project_id)
        for config in annotations.configs:
            if config not in configs:
                self._scores.put_config(project_id, config)
        known = {n.id for n in self._scores.stored_notes(project_id)}
        self._scores.load_notes(project_id, [n for n in annotations.notes if n.id not in known])
        if annotations.allowed_origins:
            origins = self._scores.allowed_origins(project_id)
            self._scores.set_allowed_origins(project_id, [*origins, *annotations.allowed_origins])

    # --- projects and keys --------------------------------------------------------

    def create_project(self, name: str) -> Project:
        existing = self._project_named(name)
        if existing is not None:
            return existing
        self._insert(
            "projects", [[_project_id(name), name, time.time_ns()]], ["id", "name", "created_ns"]
        )
        found = self._project_named(name)
        assert found is not None, "a project just inserted must be readable"
        return found

    def _project_named(self, name: str) -> Project | None:
        found = self._rows(
            f"SELECT id, name FROM ({queries.LATEST_PROJECTS}) WHERE name = %(name)s",
            {"name": name},
        )
        return Project(id=found[0][0], name=found[0][1]) if found else None

    def list_projects(self) -> list[Project]:
        found = self._rows(f"SELECT id, name FROM ({queries.LATEST_PROJECTS}) ORDER BY id")
        return [Project(id=r[0], name=r[1]) for r in found]

    def create_key(self, project_id: int, scope: KeyScope = "full") -> str:
        key = "tl_" + secrets.token_urlsafe(32)
        self._insert_key(secrets.randbits(48), project_id, key, scope, time.time_ns())
        return key

    def _insert_key(
        self, key_id: int, project_id: int, key: str, scope: str, created_ns: int
    ) -> None:
        self._insert(
            "api_keys",
            [[key_id, project_id, _hash_key(key), key[:10], scope, created_ns, None, 0]],
            _KEY_COLUMNS,
        )

    def access_for_key(self, key: str) -> KeyAccess | None:
        digest = _hash_key(key)
        found = self._rows(
            "SELECT p.id, p.name, k.key_hash, k.scope FROM ("
            + queries.latest_keys("key_hash = %(digest)s")
            + f") AS k INNER JOIN ({queries.LATEST_PROJECTS}) AS p ON p.id = k.project_id"
            " WHERE k.revoked_ns IS NULL",
            {"digest": digest},
        )
        # The lookup is by digest; comparing the digests once more in constant time
        # keeps the decision itself free of timing differences.
        if not found or not hmac.compare_digest(found[0][2], digest):
            return None
        return KeyAccess(project=Project(id=found[0][0], name=found[0][1]), scope=found[0][3])

    def list_keys(self) -> list[KeyInfo]:
        found = self._rows(
            f"SELECT k.id, p.name, k.prefix, k.scope, k.created_ns, k.revoked_ns"
            f" FROM ({queries.latest_keys()}) AS k"
            f" INNER JOIN ({queries.LATEST_PROJECTS}) AS p ON p.id = k.project_id"
            " ORDER BY k.created_ns, k.id"
        )
        return [
            KeyInfo(
                id=r[0],
                project=r[1],
                prefix=r[2],
                scope=r[3],
                created_at=ns_to_datetime(r[4]),
                revoked_at=ns_to_datetime(r[5]) if r[5] is not None else None,
            )
            for r in found
        ]

    def _active_key(self, key_id: int) -> tuple[Any, ...] | None:
        found = self._rows(
            f"SELECT {', '.join(_KEY_COLUMNS[:6])} FROM ({queries.latest_keys('id = %(id)s')})"
            " WHERE revoked_ns IS NULL",
            {"id": key_id},
        )
        return found[0] if found else None

    def revoke_key(self, key_id: int) -> bool:
        active = self._active_key(key_id)
        if active is None:
            return False
        self._insert("api_keys", [[*active, time.time_ns(), 1]], _KEY_COLUMNS)
        return True

    def rotate_key(self, key_id: int) -> str | None:
        active = self._active_key(key_id)
        if active is None:
            return None
        now = time.time_ns()
        key = "tl_" + secrets.token_urlsafe(32)
        # The successor first: should the revocation fail, the old key still works and
        # the caller sees an error, rather than a project left without its key.
        self._insert_key(secrets.randbits(48), active[1], key, active[4], now)
        self._insert("api_keys", [[*active, now, 1]], _KEY_COLUMNS)
        return key


# ClickHouse errors that mean "busy or out of reach now", not "wrong": timeouts, too many
# queries or parts, memory, network, read-only or missing replicas, an insert of unknown
# outcome (retrying it is safe: spans are idempotent).
_TRANSIENT_CODES = {159, 202, 209, 210, 241, 242, 252, 285, 319}


@contextmanager
def _unavailable_means_retry() -> Iterator[None]:
    """Turn ClickHouse being unreachable or overloaded into a 503 with Retry-After (gRPC
    UNAVAILABLE), which OTLP exporters retry, instead of a 500, which they drop."""
    from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

    try:
        yield
    except OperationalError as error:
        raise Overloaded(f"storage unavailable, retry: {_first_line(error)}") from error
    except DatabaseError as error:
        if getattr(error, "code", None) in _TRANSIENT_CODES:
            raise Overloaded(f"storage busy, retry: {_first_line(error)}") from error
        raise


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0][:300] if str(error).strip() else type(error).__name__


# --- rows ------------------------------------------------------------------------------


def _chunks(ids: list[str]) -> Iterator[list[str]]:
    for i in range(0, len(ids), _IN_CHUNK):
        yield ids[i : i + _IN_CHUNK]


def _project_id(name: str) -> int:
    """The id follows from the name, so servers creating the same project at once
    insert the same row (48 bits: exact in JavaScript numbers too)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:6], "big")


def _hash_key(key: str) -> str:
    # Keys are 256-bit random secrets, so a fast hash is enough (as on SQLite).
    return hashlib.sha256(key.encode()).hexdigest()


def _trace_fields(r: TraceRollup) -> list[Any]:
    """A rollup's values in ``queries.TRACE_FIELDS`` order."""
    return [
        r.session_id,
        r.user_id,
        r.name,
        r.start_ns,
        r.end_ns,
        r.error_count,
        r.input_tokens,
        r.output_tokens,
        r.total_tokens,
        r.cost_usd,
        r.status,
        r.tags,
        rows.dumps(r.metadata),
        {
            key: text
            for key, value in r.metadata.items()
            if (text := metadata_text(value)) is not None
        },
        r.input_preview,
        r.output_preview,
    ]


def _trace_rollup(row: tuple[Any, ...]) -> TraceRollup:
    """A row of ``queries.TRACE_COLUMNS``."""
    return TraceRollup(
        trace_id=row[0],
        session_id=row[1],
        user_id=row[2],
        name=row[3],
        start_ns=row[4],
        end_ns=row[5],
        span_count=row[6],
        error_count=row[7],
        input_tokens=row[8],
        output_tokens=row[9],
        total_tokens=row[10],
        cost_usd=row[11],
        status=row[12],
        tags=list(row[13]),
        metadata=rows.json_container(row[14]),
        input_preview=row[15],
        output_preview=row[16],
    )


def _session_fields(r: SessionRollup) -> list[Any]:
    """A rollup's values in ``queries.SESSION_FIELDS`` order."""
    return [
        r.trace_count,
        r.span_count,
        r.start_ns,
        r.end_ns,
        r.input_tokens,
        r.output_tokens,
        r.total_tokens,
        r.cost_usd,
        r.error_count,
        json.dumps(r.user_ids),
        r.first_input,
        r.last_output,
    ]
