"""The scale-out store: ClickHouse, shared by any number of stateless Threadline servers.

Writes never read: an export's spans go into ``span_intake``, whose materialized views
store the spans and partial trace rollups that ClickHouse merges by itself (migration
0010, ``intake.py``), so totals are exact whichever server wrote what, in whatever order
it became visible; sessions are rolled up from their traces when read. A group of
exports ready together is one insert per table (``export_rows.py``). Why this stays
right under replica lag and duplicate delivery: ``docs/architecture.md``.

An export is acknowledged only after ClickHouse has accepted the insert: inserts are
synchronous, or asynchronous with ``wait_for_async_insert=1`` (the default here).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from threadline.server.errors import ConfigurationError, Overloaded, Unavailable
from threadline.server.model import (
    GenAIEvent,
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
    SessionMatch,
    SessionQuery,
    SpanRecord,
    Trace,
    TraceDetail,
    TraceQuery,
    UserQuery,
    UserSummary,
    ns_to_datetime,
)
from threadline.server.redaction.rules import RedactionRules
from threadline.server.search.query import SearchQuery
from threadline.server.search.query import parse as parse_search
from threadline.server.store import cursors, score_sorts, sorts, user_score_filters
from threadline.server.store import metrics as metric_rules
from threadline.server.store import rows as table_rows
from threadline.server.store.base import (
    AccessRecords,
    ProjectAnnotations,
    SpanBatch,
    StoredKey,
    StoredShare,
)
from threadline.server.store.clickhouse import (
    context,
    deletion_leftovers,
    export_rows,
    genai_events,
    inference,
    inferred_sessions,
    intake,
    merged_traces,
    metric_labels_read,
    metric_slices,
    metric_slices_read,
    metrics,
    model_usage,
    numbers,
    picked_traces,
    project_rules,
    queries,
    recent_sessions,
    recent_traces,
    schema,
    score_sorted,
    scores,
    search,
    session_detail,
    session_filters,
    shares,
    trace_detail,
    user_activity,
)
from threadline.server.store.clickhouse.evaluations import EvaluationTables
from threadline.server.store.clickhouse.queries import Filters
from threadline.server.store.clickhouse.run_transfer import RunTransfer
from threadline.server.store.columns import SPAN_RECORD
from threadline.server.store.genai_events import (
    may_take_late_events,
    takes_late_events,
    with_late_events,
)
from threadline.server.store.keys import key_digest, key_prefix, new_key
from threadline.server.store.record_columns import KEYS, KEYS_NAMED, PROJECTS, key_info
from threadline.server.store.rollups import TraceRollup, roll_up_session
from threadline.server.store.session_turns import TurnPage
from threadline.server.store.sorts import SESSION_SORTS

# Trace ids per statement: keeps each statement well under ClickHouse's max_query_size.
_IN_CHUNK = 1000
# The live feed's position is the ClickHouse server's clock at insert time; a part may
# become visible slightly after a later-stamped one. Watermarks lag by this much, so a
# write is seen twice (harmless) rather than never.
_FEED_SLACK_NS = 2_000_000_000
# Inserts are acknowledged once ClickHouse holds them; with async inserts, the server
# batches concurrent small inserts into one part and answers each after the flush.
_DEFAULT_SETTINGS = {"async_insert": 1, "wait_for_async_insert": 1}

# A key's row is its record's fields and whether this version revokes it; the digest
# is kept as hex.
_KEY_COLUMNS = [*KEYS.names, "is_revoked"]


def _key_row(key: StoredKey) -> list[Any]:
    return [*KEYS.values(key, key_hash=bytes.hex), int(key.revoked_ns is not None)]


def _stored_key(row: Sequence[Any]) -> StoredKey:
    return KEYS.read(row, StoredKey, key_hash=bytes.fromhex)


def _keys_named(where: str = "1") -> str:
    """The newest state of each key matching ``where`` with its project's name
    (``KEYS_NAMED``), for a WHERE or ORDER BY on ``k`` to follow."""
    return (
        f"SELECT {KEYS.qualified('k')}, p.name AS project_name FROM ({queries.latest_keys(where)})"
        f" AS k INNER JOIN ({queries.LATEST_PROJECTS}) AS p ON p.id = k.project_id"
    )


def _client(url: str) -> Any:
    """A clickhouse-connect client for ``clickhouse[s]://user:password@host:port/db``,
    the database created if missing. URL query parameters are ClickHouse settings."""
    try:
        import clickhouse_connect
    except ImportError:
        raise ConfigurationError(
            "the ClickHouse store needs clickhouse-connect: pip install 'threadline[clickhouse]'"
        ) from None
    parts = urlsplit(url)
    secure = parts.scheme == "clickhouses"
    database = unquote(parts.path.lstrip("/")) or "threadline"
    try:
        port = parts.port
    except ValueError:
        raise ConfigurationError(f"bad port in store URL {_without_password(url)!r}") from None
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
        raise ConfigurationError(
            f"cannot open the ClickHouse store {_without_password(url)}: {_first_line(error)}"
        ) from None


def _without_password(url: str) -> str:
    """The URL as it may be printed: the password, if any, replaced."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


class ClickHouseStore(RunTransfer, EvaluationTables):
    def __init__(self, url: str, retention_days: int | None = None):
        if retention_days is not None and retention_days < 0:
            raise ConfigurationError(f"retention_days must be 0 or more, not {retention_days}")
        self.url = url
        self._ch = _client(url)
        # This server's span writes and trace deletes take turns. A delete is a
        # lightweight DELETE per table, one after another: an export inserted between
        # two of them kept its spans (their table already done) and lost its rollup part
        # (the next table's delete took it), so the trace counted fewer spans than it
        # kept, for good (parts are added, never recounted). Servers sharing a store can
        # still meet so: docs/reliability.md, Deleting.
        self._span_writes = threading.Lock()
        # Score writes take turns in this server, so that a ``scores`` key's check that
        # it replaces only end users' scores and its write are one step (write_scores).
        self._score_writes = threading.Lock()
        self.schema_version = schema.migrate(self._ch)
        model_usage.ensure(self._ch)
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
                "span_intake",
                search.TABLE,
                shares.TABLE,
                inference.TABLE,
                inferred_sessions.RESPONSES_TABLE,
                context.TABLE,
                metric_slices.TABLE,
                metric_slices.DIRTY_TABLE,
                "metric_passes",
                genai_events.TABLE,
                *scores.TABLES,
                *project_rules.TABLES,
            )
        }
        self._scores = scores.ClickHouseScores(self._rows, self._insert)
        self._shares = shares.ClickHouseShares(self._rows, self._insert)
        self._inference = inference.ClickHouseSessionInference(self._rows, self._insert)
        self._rules = project_rules.ClickHouseProjectRules(self._rows, self._insert)
        self._metric_slices = metric_slices.MetricSlices(self._rows, self._insert, self._command)
        # The TTL this store was opened with (None: left as it was, unknown here).
        self._ttl_days = retention_days
        # The search and context inserts of a write, sent beside its intake insert.
        self._beside = ThreadPoolExecutor(max_workers=2, thread_name_prefix="clickhouse-insert")
        self._closed = False

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._beside.shutdown()
            self._ch.close()

    def _rows(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        with _unavailable_means_retry():
            return self._ch.query(sql, parameters=params or {}).result_rows

    def _command(self, sql: str) -> None:
        with _unavailable_means_retry():
            self._ch.command(sql)

    def _insert(self, table: str, data: Sequence[Sequence[Any]], columns: list[str]) -> None:
        if data:
            types = self._types[table]
            with _unavailable_means_retry():
                self._ch.insert(
                    table, data, column_names=columns, column_type_names=[types[c] for c in columns]
                )

    # --- ingest ---------------------------------------------------------------------

    def span_preparer(
        self, project_id: int | None = None, *, read: bool = False
    ) -> export_rows.RowsPreparer | None:
        """An export's rows, made in a worker process (``export_rows.py``), with the
        project's inference setting: the copy the writer keeps known while the project's
        exports come (``inference.py``), None when it is not known (a start, or a lull
        past ``SETTING_SECONDS``), read with ``read``. For any project: without it."""
        if project_id is None:
            return export_rows.RowsPreparer()
        if read:
            return export_rows.RowsPreparer(self._inference.recently_enabled(project_id))
        infers = self._inference.known(project_id)
        return None if infers is None else export_rows.RowsPreparer(infers)

    def write_spans(
        self, project_id: int, spans: Sequence[SpanRecord], prepared: object | None = None
    ) -> int:
        """One insert per table, no read (``prepared``: the rows ``span_preparer`` made,
        if it made them): ClickHouse's materialized views store the spans and the
        partial rollups (``intake.py``, migration 0010). Every span is sent, even one
        stored before: a retry must be able to finish what a failed attempt began, and
        a span stored twice is counted once."""
        self.write_span_batches([SpanBatch(project_id, spans, prepared)])
        return len({(span.trace_id, span.span_id) for span in spans})

    def write_span_batches(self, batches: Sequence[SpanBatch]) -> None:
        """The batches' rows as one insert per table (``export_rows.merged``), the three
        sent at once: nothing is read, and ClickHouse pays most of an insert's cost per
        insert, not per row."""
        with self._span_writes:
            self._write_span_batches(batches)

    def _write_span_batches(self, batches: Sequence[SpanBatch]) -> None:
        rows = [self._batch_rows(batch) for batch in batches if batch.spans]
        if not rows:
            return
        together = export_rows.merged(rows)
        beside = [
            self._beside.submit(self._insert, search.TABLE, together.search, search.COLUMNS),
            self._beside.submit(self._insert, context.TABLE, together.context, context.COLUMNS),
        ]
        try:
            self._insert("span_intake", together.intake, intake.COLUMNS)
        finally:
            # Answered only once every insert is: the first failure is the group's.
            for insert in beside:
                insert.exception()
        for insert in beside:
            insert.result()

    def _batch_rows(self, batch: SpanBatch) -> export_rows.ExportRows:
        """The rows the worker made (the sessions of the response ids it named stored
        first), or, for a batch it left (records whole), the rows of its spans with
        their inferred sessions named."""
        prepared = batch.prepared_as(export_rows.ExportRows, "ClickHouse rows")
        if prepared is None:
            spans = self._infer_sessions(batch.project_id, batch.spans)
            return export_rows.rows_of(batch.project_id, spans)
        self._inference.write_responses(prepared.responses)
        if any(span.session_signals is not None for span in batch.spans):
            self._inference.keep_known(batch.project_id)
        return prepared

    def _infer_sessions(self, project_id: int, spans: Sequence[SpanRecord]) -> Sequence[SpanRecord]:
        """The spans with their inferred sessions named (``inferred_sessions.py``), the
        response ids' sessions written first (a later turn looks them up)."""
        if all(span.session_signals is None for span in spans):
            return spans
        if not self._inference.recently_enabled(project_id):
            return spans
        placement = inferred_sessions.place(
            project_id, spans, lambda keys: self._inference.look_up_responses(project_id, keys)
        )
        self._inference.write_responses(placement.responses)
        return placement.spans

    # --- share links ----------------------------------------------------------------

    def add_share(self, share: StoredShare) -> None:
        self._shares.add(share)

    def list_shares(
        self, project_id: int, limit: int | None = None, after: tuple[int, str] | None = None
    ) -> list[StoredShare]:
        return self._shares.list_for(project_id, limit, after)

    def revoke_share(self, project_id: int, share_id: str) -> bool:
        return self._shares.revoke(project_id, share_id)

    def share_by_token_hash(self, token_hash: bytes) -> StoredShare | None:
        return self._shares.by_token_hash(token_hash)

    # --- deletion -------------------------------------------------------------------
    # Rows are removed with lightweight DELETEs (rows masked at once, dropped by later
    # merges): a trace's spans, its rollup parts, session memberships and the rest. Sessions
    # are rolled up from their traces when read, so a session that lost traces shows
    # what it keeps at once. This server's span writes wait for a delete in hand
    # (``_span_writes``); another server's write racing the deletion of the same trace
    # can leave the parts it inserted mid-deletion; docs/reliability.md says so.

    def _delete_rows(self, table: str, column: str, project_id: int, ids: Sequence[str]) -> None:
        self._delete_where(table, f"{column} IN %(ids)s", project_id, ids)

    def _deleter(self, project_id: int) -> deletion_leftovers.DeleteWhere:
        return lambda table, condition, ids: self._delete_where(table, condition, project_id, ids)

    def _delete_where(
        self, table: str, condition: str, project_id: int, ids: Sequence[str]
    ) -> None:
        """Delete the project's rows of ``table`` that ``condition`` (naming ``%(ids)s``)
        picks, a chunk of ``ids`` at a time."""
        for chunk in _chunks(list(ids)):
            with _unavailable_means_retry():
                self._ch.command(
                    f"DELETE FROM {table} WHERE project_id = %(project)s AND {condition}",
                    parameters={"project": project_id, "ids": chunk},
                    settings={"lightweight_deletes_sync": 2},
                )

    def delete_traces(self, project_id: int, trace_ids: Sequence[str]) -> int:
        with self._span_writes:
            return self._delete_traces(project_id, trace_ids)

    def _delete_traces(self, project_id: int, trace_ids: Sequence[str]) -> int:
        ids = sorted(set(trace_ids))
        # Before the rows that say where they were go: the dashboard's next refresh
        # recomputes the slices these traces and their sessions were in.
        for chunk in _chunks(ids):
            self._metric_slices.mark_traces(project_id, chunk)
        stored: set[str] = set()
        sessions: set[str] = set()
        for chunk in _chunks(ids):
            params = {"project": project_id, "ids": chunk}
            stored.update(
                row[0]
                for row in self._rows(
                    "SELECT DISTINCT trace_id FROM trace_parts_by_id"
                    " WHERE project_id = %(project)s AND trace_id IN %(ids)s",
                    params,
                )
            )
            sessions.update(
                row[0]
                for row in self._rows(
                    "SELECT DISTINCT session_id FROM session_members"
                    " WHERE project_id = %(project)s AND trace_id IN %(ids)s",
                    params,
                )
            )
        for table in schema.TRACE_TABLES:
            self._delete_rows(table, "trace_id", project_id, ids)
        self._scores.delete_annotations(project_id, "trace_id", ids)
        emptied = self._sessions_without_traces(project_id, sorted(sessions))
        self._scores.delete_annotations(project_id, "session_id", emptied)
        deletion_leftovers.forget(self._deleter(project_id), ids, emptied)
        return len(stored)

    def delete_sessions(self, project_id: int, session_ids: Sequence[str]) -> int:
        ids = sorted(set(session_ids))
        existed: set[str] = set()
        trace_ids: list[str] = []
        for chunk in _chunks(ids):
            params = {"project": project_id, "ids": chunk}
            for session_id, trace_id in self._rows(
                f"SELECT session_id, trace_id FROM ({self._traces_of_sessions('%(ids)s')})",
                params,
            ):
                existed.add(session_id)
                trace_ids.append(trace_id)
        self.delete_traces(project_id, trace_ids)
        self._scores.delete_annotations(project_id, "session_id", ids)
        deletion_leftovers.forget(self._deleter(project_id), (), ids)
        return len(existed)

    @staticmethod
    def _traces_of_sessions(session_ids: str) -> str:
        """The merged rollups of the traces now in the sessions ``session_ids`` (a
        parameter or subquery): found through every session a trace was ever in."""
        return (
            queries.latest_traces(
                "project_id = %(project)s AND trace_id IN (SELECT trace_id FROM session_members"
                f" WHERE project_id = %(project)s AND session_id IN {session_ids})"
            )
            + f" WHERE session_id IN {session_ids}"
        )

    def _sessions_without_traces(self, project_id: int, session_ids: list[str]) -> list[str]:
        alive: set[str] = set()
        for chunk in _chunks(session_ids):
            alive.update(
                row[0]
                for row in self._rows(
                    f"SELECT DISTINCT session_id FROM ({self._traces_of_sessions('%(ids)s')})",
                    {"project": project_id, "ids": chunk},
                )
            )
        return [s for s in session_ids if s not in alive]

    # --- bulk export ------------------------------------------------------------------
    # Through the detail reads: the export's fast path is the SQLite store's
    # (sqlite/trace_json.py); on ClickHouse a trace's read-back dominates either way.

    def reading_once(self) -> AbstractContextManager[None]:
        return nullcontext()  # the server's caches are the server's to bound

    def session_trace_ids(
        self, project_id: int, session_ids: Sequence[str]
    ) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for session_id in dict.fromkeys(session_ids):
            detail = self.get_session(project_id, session_id)
            if detail is not None and detail.traces:
                out[session_id] = [t.trace_id for t in detail.traces]
        return out

    def trace_details_json(self, project_id: int, trace_ids: Sequence[str]) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        for trace_id in dict.fromkeys(trace_ids):
            detail = self.get_trace(project_id, trace_id)
            if detail is not None:
                out[trace_id] = detail.model_dump_json().encode()
        return out

    # --- retention and redaction (project_rules.py) ------------------------------------

    def expired_traces(self, project_id: int, ended_before_ns: int, limit: int) -> list[str]:
        return self._rules.expired_traces(project_id, ended_before_ns, limit)

    def expires_by_itself(self, days: int) -> bool:
        # The table TTL drops what is older than the server's --retention-days: only a
        # project's own, shorter retention needs deletes.
        return days > 0 and days == self._ttl_days

    def reclaim_space(self, max_pages: int) -> int:
        return 0  # merges give the space of deleted rows back

    def retention_overrides(self) -> dict[int, int]:
        return self._rules.retention_overrides()

    def set_retention_days(self, project_id: int, days: int | None) -> None:
        self._rules.set_retention_days(project_id, days)

    def redaction_rules(self, project_id: int) -> RedactionRules:
        return self._rules.redaction_rules(project_id)

    def set_redaction_rules(self, project_id: int, rules: RedactionRules) -> None:
        self._rules.set_redaction_rules(project_id, rules)

    # --- queries --------------------------------------------------------------------

    def list_sessions(self, project_id: int, query: SessionQuery) -> Page[Session]:
        sorted_by = sorts.sessions_by(query)
        if recent_sessions.serves(query):
            # The list as it opens: picked from narrow rows sorted by time.
            cursor = (
                cursors.decode(query.cursor, int, str, made_by=sorted_by) if query.cursor else None
            )
            picked = recent_sessions.pick(self._rows, project_id, query, cursor)
            seen = {trace: root_start for row in picked for trace, root_start in row[2]}
            page = [(row[0], row[1]) for row in picked]
            return self._session_page(project_id, query, page, parse_search(""), sorted_by, seen)
        f = Filters(project_id)
        # The user's and the traces' filters hold on merged traces: those their values'
        # labels name only (``trace_labels``), not every trace of the project.
        trace_filters = session_filters.of_list(f, query)
        # A window reads only the sessions of the traces near it (``sessions_near``);
        # without one, every session of the project is rolled up (its cost grows with
        # the project: the UI and API default to a window).
        bounds = f.overlap_bounds(query.start, query.end)
        sessions = (
            queries.sessions_near(*bounds) if bounds != (None, None) else queries.latest_sessions()
        )
        f.time_overlap_between(*bounds)
        found_text = parse_search(query.q or "")
        relevance = bool(query.q) and query.sort == "relevance" and query.score_sort is None
        source = f"({sessions})"
        if relevance:
            named = f"positionCaseInsensitive(session_id, {f.param(query.q)}) > 0"
            source += (
                f" AS s LEFT JOIN ({search.ranked_sessions(f, found_text)}) AS ranked"
                " USING (session_id)"
            )
            f.add(f"({named} OR relevance > 0)")
        elif query.q:
            f.add(search.session_condition(f, found_text, query.q))
        numbers.add_conditions(f, numbers.SESSION_COLUMNS, query.numbers)
        if query.min_context_use is not None:
            f.add(f"peak_context_use >= {f.param(query.min_context_use)}")
        if query.status == "error":
            f.add("error_count > 0")
        elif query.status == "ok":
            f.add("error_count = 0")
        # A window's score filters read the rollups of its sessions only.
        window = None if bounds == (None, None) else f"({queries.session_ids_near(*bounds)})"
        f.where += self._scores.filter_conditions(f, "session", "session_id", query.scores, window)
        own = list(f.where)
        f.where += trace_filters(None)
        if query.score_sort is not None:
            ranked = score_sorted.pick(
                self._rows,
                f,
                source,
                queries.sessions_of,
                "session",
                "session_id",
                "end_ns",
                query.score_sort,
                query.limit,
                query.cursor,
                sorts.filtered_by(query),
                newest=self._recent_sessions(project_id, query),
                kept_among=lambda ids: " AND ".join([*own, *trace_filters(ids)]) or "1",
                windowed=query.start is not None,
            )
            return self._session_page(
                project_id,
                query,
                [(p.row_id, p.page_key()) for p in ranked],
                found_text,
                score_sorts.made_by(query.score_sort, "session", where=sorts.filtered_by(query)),
                page_key=lambda row: row[1],
            )
        order_type: type
        if relevance:
            order, order_type = search.relevance_order(named), float
        else:
            order, order_type = SESSION_SORTS[
                "last_activity" if query.sort == "relevance" else query.sort
            ]
        if query.cursor:
            sort_key, session_id = cursors.decode(query.cursor, order_type, str, made_by=sorted_by)
            f.add(f"({order}, session_id) < ({f.param(sort_key)}, {f.param(session_id)})")
        # The page is picked on its sort key alone, then its sessions are rolled up in
        # full: ClickHouse computes every selected column of every candidate before it
        # sorts, and a session's columns are the costly part.
        picked = self._rows(
            f"SELECT session_id, {order} FROM {source}"
            f" WHERE {f.sql()} ORDER BY {order} DESC, session_id DESC"
            f" LIMIT {f.param(query.limit + 1)}",
            f.params,
        )
        return self._session_page(project_id, query, picked, found_text, sorted_by)

    def _recent_sessions(self, project_id: int, query: SessionQuery) -> score_sorted.Newest | None:
        """The sessions newest first as the list opens picks them, for a query that is
        that list but for its score sort (None for any other)."""
        opening = query.model_copy(update={"score_sort": None, "sort": "last_activity"})
        if not recent_sessions.serves(opening):
            return None

        def newest(after: tuple[Any, str] | None, count: int) -> list[tuple[str, Any]]:
            wanted = opening.model_copy(update={"limit": count - 1})
            picked = recent_sessions.pick(self._rows, project_id, wanted, after)
            return [(row[0], row[1]) for row in picked]

        return newest

    def _recent_traces(self, project_id: int, query: TraceQuery) -> score_sorted.Newest | None:
        """The traces newest first as the list opens picks them, for a query that is that
        list but for its score sort (None for any other)."""
        opening = query.model_copy(update={"score_sort": None, "sort": "time"})
        if not recent_traces.serves(opening):
            return None

        def newest(after: tuple[Any, str] | None, count: int) -> list[tuple[str, Any]] | None:
            picked = recent_traces.pick(
                self._rows,
                lambda ids: merged_traces.by_ids(self._rows, project_id, ids),
                project_id,
                opening.model_copy(update={"limit": count - 1}),
                after,
            )
            return None if picked is None else [(t.trace_id, t.start_ns) for t in picked]

        return newest

    def _session_page(
        self,
        project_id: int,
        query: SessionQuery,
        picked: Sequence[tuple[Any, ...]],
        found_text: SearchQuery,
        made_by: str,
        seen: Mapping[str, int | None] | None = None,
        page_key: Callable[[tuple[Any, ...]], Sequence[Any]] = lambda row: (row[1], row[0]),
    ) -> Page[Session]:
        """The page of the sessions ``picked`` ((session id, sort key), in page order,
        one more than the page holds when there is a next page), rolled up in full;
        ``made_by``: the list's sort, as its cursors name it; ``seen``: some of their
        traces, known from picking them, by id with their root span's start;
        ``page_key``: a picked row's cursor."""
        ids = [row[0] for row in picked]
        with ThreadPoolExecutor(max_workers=2) as beside:
            # Score summaries and snippets need only the ids: read side by side with the
            # merge (a page waits for the longest read, not for their sum).
            scored = beside.submit(self._scores.summaries, project_id, "session", ids)
            snipped = beside.submit(
                search.session_snippets, self._rows, project_id, found_text, ids
            )
            traces = picked_traces.of_sessions(self._rows, project_id, ids, seen or {})
        # (A session deleted between the two statements is left out.)
        found = [(s, key) for s, key in picked if s in traces]
        page, next_cursor = cursors.page(found, query.limit, page_key, made_by=made_by)
        items = [table_rows.session_of(roll_up_session(s, traces[s])) for s, _ in page]
        summaries, snippets = scored.result(), snipped.result()
        for item in items:
            item.scores = summaries.get(item.session_id, {})
            item.snippet = snippets.get(item.session_id)
            item.mark_inferred(inferred_sessions.signals_of(item.session_id))
        return Page[Session](items=items, next_cursor=next_cursor)

    def find_in_session(self, project_id: int, session_id: str, q: str) -> list[SessionMatch]:
        return search.session_matches(self._rows, project_id, session_id, parse_search(q))

    def get_session(
        self, project_id: int, session_id: str, turns: TurnPage | None = None
    ) -> SessionDetail | None:
        return session_detail.read(self._rows, project_id, session_id, turns)

    def list_traces(self, project_id: int, query: TraceQuery) -> Page[Trace]:
        sorted_by = sorts.traces_by(query)
        if recent_traces.serves(query):
            # The list as it opens: picked from narrow rows sorted by start, if the
            # last month holds the page.
            cursor = (
                cursors.decode(query.cursor, int, str, made_by=sorted_by) if query.cursor else None
            )
            recent = recent_traces.pick(
                self._rows,
                lambda ids: merged_traces.by_ids(self._rows, project_id, ids),
                project_id,
                query,
                cursor,
            )
            if recent is not None:
                return self._trace_page(
                    project_id,
                    query,
                    [(t, t.start_ns) for t in recent],
                    parse_search(""),
                    sorted_by,
                )
        f = Filters(project_id)
        for column in ("session_id", "user_id", "status"):
            value = getattr(query, column)
            if value:
                f.add(f"{column} = {f.param(value)}")
        # Only the parts of traces near the window are merged; the exact overlap is
        # checked on the merged rows.
        bounds = f.overlap_bounds(query.start, query.end)
        inner = queries.traces_near(*bounds)
        f.time_overlap_between(*bounds)
        found_text = parse_search(query.q or "")
        source = f"({queries.latest_traces(inner)})"
        order: str = "start_ns"
        order_type: type = int
        if query.q and query.sort == "relevance" and query.score_sort is None:
            named = f"trace_id = {f.param(query.q.strip().lower())}"
            source += (
                f" AS t LEFT JOIN ({search.ranked_traces(f, found_text)}) AS ranked"
                " USING (trace_id)"
            )
            f.add(f"({named} OR relevance > 0)")
            order, order_type = search.relevance_order(named), float
        elif query.q:
            f.add(search.trace_condition(f, found_text, query.q))
        numbers.add_conditions(f, numbers.TRACE_COLUMNS, query.numbers)
        for condition in f.trace_conditions(query):
            f.add(condition)
        # A window's score filters read the rollups of its traces only.
        window = None if bounds == (None, None) else f"({queries.trace_ids_near(*bounds)})"
        f.where += self._scores.filter_conditions(f, "trace", "trace_id", query.scores, window)
        if query.score_sort is not None:
            ranked = score_sorted.pick(
                self._rows,
                f,
                source,
                queries.traces_of,
                "trace",
                "trace_id",
                "start_ns",
                query.score_sort,
                query.limit,
                query.cursor,
                sorts.filtered_by(query),
                newest=self._recent_traces(project_id, query),
                windowed=query.start is not None,
            )
            return self._trace_page(
                project_id,
                query,
                self._merged(project_id, [(p.row_id, p.page_key()) for p in ranked]),
                found_text,
                score_sorts.made_by(query.score_sort, "trace", where=sorts.filtered_by(query)),
                page_key=lambda row: row[1],
            )
        if query.cursor:
            sort_key, trace_id = cursors.decode(query.cursor, order_type, str, made_by=sorted_by)
            f.add(f"({order}, trace_id) < ({f.param(sort_key)}, {f.param(trace_id)})")
        # As for sessions: the page is picked on its sort key, then merged in full.
        picked = self._rows(
            f"SELECT trace_id, {order} FROM {source}"
            f" WHERE {f.sql()} ORDER BY {order} DESC, trace_id DESC"
            f" LIMIT {f.param(query.limit + 1)}",
            f.params,
        )
        return self._trace_page(
            project_id, query, self._merged(project_id, picked), found_text, sorted_by
        )

    def _merged(
        self, project_id: int, picked: Sequence[tuple[str, Any]]
    ) -> list[tuple[TraceRollup, Any]]:
        """The traces ``picked`` ((trace id, sort key), in page order) merged in full,
        each with its key; a trace deleted since it was picked is left out."""
        merged = {
            t.trace_id: t
            for t in merged_traces.by_ids(self._rows, project_id, [row[0] for row in picked])
        }
        return [(merged[t], key) for t, key in picked if t in merged]

    def _trace_page(
        self,
        project_id: int,
        query: TraceQuery,
        found: Sequence[tuple[TraceRollup, Any]],
        found_text: SearchQuery,
        made_by: str,
        page_key: Callable[[tuple[TraceRollup, Any]], Sequence[Any]] = lambda row: (
            row[1],
            row[0].trace_id,
        ),
    ) -> Page[Trace]:
        """The page of the merged traces ``found`` (with their sort key, in page order,
        one more than the page holds when there is a next page); ``made_by``: the list's
        sort, as its cursors name it; ``page_key``: a row's cursor."""
        page, next_cursor = cursors.page(found, query.limit, page_key, made_by=made_by)
        items = [table_rows.trace(t) for t, _ in page]
        page_ids = [t.trace_id for t in items]
        summaries = self._scores.summaries(project_id, "trace", page_ids)
        snippets = search.trace_snippets(self._rows, project_id, found_text, page_ids)
        for item in items:
            item.scores = summaries.get(item.trace_id, {})
            item.snippet = snippets.get(item.trace_id)
        return Page[Trace](items=items, next_cursor=next_cursor)

    def get_trace(self, project_id: int, trace_id: str) -> TraceDetail | None:
        detail = trace_detail.read(self._rows, project_id, trace_id)
        if detail is None or not may_take_late_events(detail):
            return detail
        return with_late_events(detail, genai_events.of_trace(self._rows, project_id, trace_id))

    # --- GenAI log events (genai_events.py) -------------------------------------------

    def write_genai_events(self, project_id: int, events: Sequence[GenAIEvent]) -> list[GenAIEvent]:
        return genai_events.write(self._rows, self._insert, project_id, events)

    def attach_genai_events(self, project_id: int, events: Sequence[GenAIEvent]) -> None:
        genai_events.attach(self._insert, project_id, events)

    def spans_taking_late_events(
        self, project_id: int, spans: Sequence[tuple[str, str]]
    ) -> list[SpanRecord]:
        """The spans' last written copies (as the detail reads them)."""
        if not spans:
            return []
        found = self._rows(
            f"SELECT {SPAN_RECORD.sql} FROM spans WHERE project_id = %(project)s"
            " AND trace_id IN %(traces)s AND (trace_id, span_id) IN %(spans)s"
            " ORDER BY trace_id, span_id, ingested_ns DESC LIMIT 1 BY trace_id, span_id",
            {
                "project": project_id,
                "traces": sorted({trace_id for trace_id, _ in spans}),
                "spans": [tuple(key) for key in spans],
            },
        )
        return [span for span in map(table_rows.span_record, found) if takes_late_events(span)]

    def replace_spans(self, project_id: int, spans: Sequence[SpanRecord]) -> int:
        """Written again: the spans table keeps a span's last written copy, and the
        copy's partial rollup and search rows are merged with the others (previews are
        picked from the spans that have one first). Only the spans still stored are: a
        trace deleted since they were read is not written again (a deletion between
        this read and the insert is not seen: no transactions)."""
        if not spans:
            return 0
        stored = set(
            self._rows(
                "SELECT DISTINCT trace_id, span_id FROM spans WHERE project_id = %(project)s"
                " AND trace_id IN %(traces)s",
                {"project": project_id, "traces": sorted({s.trace_id for s in spans})},
            )
        )
        present = [span for span in spans if (span.trace_id, span.span_id) in stored]
        return self.write_spans(project_id, present) if present else 0

    def waiting_genai_events(self, received_after_ns: int) -> dict[int, list[GenAIEvent]]:
        return genai_events.waiting(self._rows, received_after_ns)

    def delete_waiting_genai_events(self, received_before_ns: int) -> int:
        return genai_events.delete_waiting(self._rows, self._command_with, received_before_ns)

    def _command_with(self, sql: str, params: dict[str, Any]) -> None:
        with _unavailable_means_retry():
            self._ch.command(sql, parameters=params, settings={"lightweight_deletes_sync": 2})

    # --- scores, score configurations, notes (``scores.py``) ------------------------

    def write_scores(
        self,
        project_id: int,
        records: Sequence[ScoreRecord],
        *,
        check_types: bool = True,
        over_end_user_only: bool = False,
        configs: Sequence[ScoreConfig] | None = None,
    ) -> frozenset[str]:
        if not records:
            return frozenset()
        # The check and the write in one step for this server (``_score_writes``);
        # servers sharing a store can still interleave them.
        with self._score_writes:
            if over_end_user_only:
                stored = self._scores.get(project_id, [r.id for r in records])
                refused = frozenset(i for i, r in stored.items() if r.source != "end-user")
                if refused:
                    return refused
            self._scores.write(project_id, records, check_types, configs)
        return frozenset()

    def get_scores(self, project_id: int, score_ids: Sequence[str]) -> dict[str, Score]:
        return self._scores.get(project_id, score_ids)

    def list_scores(self, project_id: int, query: ScoreQuery) -> Page[Score]:
        return self._scores.list(project_id, query)

    def delete_score(self, project_id: int, score_id: str) -> bool:
        return self._scores.delete(project_id, score_id)

    def list_score_configs(self, project_id: int) -> list[ScoreConfig]:
        return self._scores.list_configs(project_id)

    def put_score_config(self, project_id: int, config: ScoreConfig) -> None:
        self._scores.put_checked_config(project_id, config)

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
        """Users by last activity, over the traces in the window that carry their id
        (``user_activity.py``), with the scores of those traces and their sessions."""
        return user_score_filters.filtered_users(
            lambda page: user_activity.list_users(self._rows, project_id, page), query
        )

    def metrics(self, project_id: int, query: MetricsQuery, names: Sequence[str]) -> Metrics:
        span = metric_rules.bucket_range(query)
        # The dashboard as it opens, grouped or narrowed by labels reads the figures
        # derived in the background; a user's filter rolls up the user's traces and
        # sessions when asked (few: merged by id), as does every view before a store's
        # first refresh pass.
        derived = not (query.user_id or query.tag or query.metadata or query.group_by)
        labelled = metric_labels_read.handles(query)
        up_to = self._metric_slices.figures_up_to() if derived or labelled else None
        if up_to is None:
            return metric_rules.build(
                query, span, metrics.read(self._rows, project_id, query, span), names
            )
        if labelled:
            found = metric_labels_read.read(self._rows, project_id, query, span)
        else:
            found = metric_slices_read.read(self._rows, project_id, span)
        result = metric_rules.build(query, span, found, names)
        result.figures_up_to = ns_to_datetime(up_to)
        return result

    def refresh_metrics(self, margin_s: float = 60.0) -> int | None:
        return self._metric_slices.refresh(int(margin_s * 1e9)).slices

    def live_watermark(self, project_id: int) -> int:
        """The feed position of the project's latest trace write, less the slack above
        (0 before any). Read it *before* querying with ``changed_after``."""
        ((latest,),) = self._rows(
            "SELECT max(written_ns) FROM trace_parts_by_id WHERE project_id = %(project)s",
            {"project": project_id},
        )
        return max(0, int(latest) - _FEED_SLACK_NS) if latest else 0

    # --- migration between stores (``threadline migrate``) ---------------------------

    def dump_access(self) -> AccessRecords:
        found = self._rows(f"SELECT {KEYS.sql} FROM ({queries.latest_keys()}) ORDER BY id")
        return AccessRecords(projects=self.list_projects(), keys=[_stored_key(r) for r in found])

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
            [_key_row(replace(k, project_id=ids[k.project_id])) for k in records.keys],
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
                f"SELECT {SPAN_RECORD.sql} FROM spans"
                f" WHERE (project_id, trace_id, span_id) {'>=' if first else '>'}"
                " (%(p)s, %(t)s, %(s)s) ORDER BY project_id, trace_id, span_id"
                " LIMIT 1 BY project_id, trace_id, span_id LIMIT %(n)s",
                {"p": after[0], "t": after[1], "s": after[2], "n": batch_size},
            )
            if not found:
                return
            first = False
            after = table_rows.span_record_key(found[-1])
            by_project: dict[int, list[SpanRecord]] = defaultdict(list)
            for row in found:
                span = table_rows.span_record(row)
                # An inferred session's name is written on the spans here; the copy gets
                # the spans as they were sent, for the target to infer by its own rules.
                if span.session_id and inferred_sessions.signals_of(span.session_id):
                    span.session_id = None
                by_project[table_rows.span_record_key(row)[0]].append(span)
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
            f"SELECT {PROJECTS.sql} FROM ({queries.LATEST_PROJECTS}) WHERE name = %(name)s",
            {"name": name},
        )
        return PROJECTS.read(found[0], Project) if found else None

    def list_projects(self) -> list[Project]:
        found = self._rows(f"SELECT {PROJECTS.sql} FROM ({queries.LATEST_PROJECTS}) ORDER BY id")
        return [PROJECTS.read(r, Project) for r in found]

    def create_key(self, project_id: int, scope: KeyScope = "full") -> str:
        key = new_key()
        self._insert_key(secrets.randbits(48), project_id, key, scope, time.time_ns())
        return key

    def _insert_key(
        self, key_id: int, project_id: int, key: str, scope: KeyScope, created_ns: int
    ) -> None:
        new = StoredKey(
            key_id, project_id, key_digest(key), key_prefix(key), scope, created_ns, None
        )
        self._insert("api_keys", [_key_row(new)], _KEY_COLUMNS)

    def access_for_key(self, key: str) -> KeyAccess | None:
        digest = key_digest(key).hex()
        found = self._rows(
            _keys_named("key_hash = %(digest)s") + " WHERE k.revoked_ns IS NULL",
            {"digest": digest},
        )
        if not found:
            return None
        named = KEYS_NAMED.named(found[0])
        # The lookup is by digest; comparing the digests once more in constant time
        # keeps the decision itself free of timing differences.
        if not hmac.compare_digest(named["key_hash"], digest):
            return None
        project = Project(id=named["project_id"], name=named["project_name"])
        return KeyAccess(project=project, scope=named["scope"])

    def list_keys(self) -> list[KeyInfo]:
        found = self._rows(_keys_named() + " ORDER BY k.created_ns, k.id")
        return [key_info(r) for r in found]

    def _active_key(self, key_id: int) -> StoredKey | None:
        found = self._rows(
            f"SELECT {KEYS.sql} FROM ({queries.latest_keys('id = %(id)s')})"
            " WHERE revoked_ns IS NULL",
            {"id": key_id},
        )
        return _stored_key(found[0]) if found else None

    def _revoke(self, key: StoredKey, now: int) -> None:
        self._insert("api_keys", [_key_row(replace(key, revoked_ns=now))], _KEY_COLUMNS)

    def revoke_key(self, key_id: int) -> bool:
        active = self._active_key(key_id)
        if active is None:
            return False
        self._revoke(active, time.time_ns())
        return True

    def rotate_key(self, key_id: int) -> str | None:
        active = self._active_key(key_id)
        if active is None:
            return None
        now = time.time_ns()
        key = new_key()
        # The successor first: should the revocation fail, the old key still works and
        # the caller sees an error, rather than a project left without its key.
        self._insert_key(secrets.randbits(48), active.project_id, key, active.scope, now)
        self._revoke(active, now)
        return key


# ClickHouse errors that mean "busy or out of reach now", not "wrong": timeouts, too many
# queries or parts, memory, network, read-only or missing replicas, an insert of unknown
# outcome (retrying it is safe: spans are idempotent).
_TRANSIENT_CODES = {159, 202, 209, 210, 241, 242, 252, 285, 319}


@contextmanager
def _unavailable_means_retry() -> Iterator[None]:
    """Turn ClickHouse being unreachable or overloaded into a 503 with Retry-After (gRPC
    UNAVAILABLE or RESOURCE_EXHAUSTED with RetryInfo), which OTLP exporters retry,
    instead of a 500, which they drop."""
    from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

    try:
        yield
    except OperationalError as error:
        raise Unavailable(f"storage unavailable, retry: {_first_line(error)}") from error
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
