"""The embedded default store: one SQLite file in WAL mode.

One writer connection behind a lock does every write; readers take connections from a
small pool and, thanks to WAL, never wait for the writer. Rollups are updated in the
same transaction as the spans that change them, so a committed export is immediately
visible, totals included.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import logging
import os
import queue
import secrets
import sqlite3
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple

from threadline.server.errors import StorageFull
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
    datetime_to_ns,
    ns_to_datetime,
)
from threadline.server.scoring import score as present_score
from threadline.server.store import cursors, span_records
from threadline.server.store import metrics as metric_rules
from threadline.server.store.base import (
    AccessRecords,
    ProjectAnnotations,
    StoredKey,
    StoredShare,
)
from threadline.server.store.rollups import (
    PREVIEW_CHARS,
    SessionRollup,
    SpanFacts,
    StoredSpanFacts,
    TraceRollup,
    merge_session,
    preview_sources,
    roll_up_session,
    roll_up_trace,
)
from threadline.server.store.sqlite import deletion, metrics, payloads, scores, shares, space, wal
from threadline.server.store.sqlite import rows as schema
from threadline.server.store.sqlite.evaluations import EvaluationTables
from threadline.server.store.sqlite.filters import (
    SESSION_SORTS,
    add_session_filters,
    add_trace_filters,
)
from threadline.server.store.trace_tally import TALLY_FROM_SPANS, TallyCache, TraceTally

_READERS = 8
# SQLite allows 32766 bound variables; batches of ids stay well under it.
_IN_CHUNK = 500
_WAL_SAFETY_PAGES = 16_384  # 64 MiB of 4 KiB pages
log = logging.getLogger("threadline.store")


class SQLiteStore(EvaluationTables):
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Reentrant: adopting a payload dictionary writes it while holding the lock.
        self._write_lock = threading.RLock()
        # Writer processes of this database take turns by this lock rather than by
        # SQLite's own: a process waiting for SQLite's lock polls, sleeping longer each
        # time (up to 100 ms), while a process waiting here wakes as soon as the writer
        # before it commits (docs/benchmarks.md).
        self._writer_turn = os.open(f"{self.path}-writer", os.O_CREAT | os.O_RDWR, 0o600)
        # Held by the one process training a payload dictionary (see _learn_dictionary).
        self._training_turn = os.open(f"{self.path}-training", os.O_CREAT | os.O_RDWR, 0o600)
        self._writer = self._connect()
        _migrate(self._writer)
        self._dictionaries = payloads.load_all(self._writer)
        # The dictionary new payloads are packed with (the newest), and until there is
        # one the payloads packed so far, to train it (None: no more training).
        self._packing = next(reversed(self._dictionaries.values()), None)
        self._samples: list[bytes] | None = [] if self._packing is None else None
        # Large traces' rollups, kept so that adding spans to one need not read it back.
        self._tallies = TallyCache()
        # Commits do not checkpoint the WAL into the database file: a background
        # thread does (wal.py). The high bound only stops the WAL from growing without
        # end should that thread ever fall behind; the size limit is what SQLite keeps
        # of the file when it starts the log over.
        self._writer.execute(f"PRAGMA wal_autocheckpoint={_WAL_SAFETY_PAGES}")
        self._writer.execute(f"PRAGMA journal_size_limit={wal.KEEP_BYTES}")
        self._readers: queue.LifoQueue[sqlite3.Connection] = queue.LifoQueue()
        self._closing = threading.Event()
        self._checkpointer = wal.Checkpointer(self._connect, Path(f"{self.path}-wal"))
        self._checkpointer.start()

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
        conn.execute("PRAGMA cache_size=-16384")  # 16 MiB a connection
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
            fcntl.flock(self._writer_turn, fcntl.LOCK_EX)
            conn = self._writer
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                    conn.execute("COMMIT")
                except BaseException:
                    # SQLite may have rolled back already (it does on some errors of a
                    # full disk); a failed ROLLBACK must not hide the error that led here.
                    if conn.in_transaction:
                        try:
                            conn.execute("ROLLBACK")
                        except sqlite3.Error:
                            log.exception("ROLLBACK failed")
                    raise
            except sqlite3.Error as error:
                full = space.storage_full(error, self.path.parent)
                if full is not None:
                    raise full from error
                raise
            finally:
                fcntl.flock(self._writer_turn, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._closing.is_set():
            return
        self._closing.set()
        self._checkpointer.close()
        with self._write_lock:
            try:
                self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error as error:
                # A full disk, say: the WAL stays, and the next start reads it back.
                log.warning("the WAL could not be folded in at close (%s): kept", error)
            try:
                self._writer.close()
            except sqlite3.Error as error:
                log.warning("closing the database: %s", error)
            os.close(self._writer_turn)
            os.close(self._training_turn)
        while True:
            try:
                self._readers.get_nowait().close()
            except queue.Empty:
                break

    # --- ingest ---------------------------------------------------------------------

    def write_spans(self, project_id: int, spans: Sequence[SpanRecord]) -> int:
        if not spans:
            return 0
        # The spans of one OTLP resource share one resource dict: encode it once.
        resources: dict[int, str] = {}
        packer = payloads.Packer(self._packing)
        rows: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
        for span in spans:
            resource = resources.get(id(span.resource))
            if resource is None:
                resource = resources[id(span.resource)] = schema.dumps(span.resource)
            rows[span.trace_id].append(schema.span_row(project_id, span, resource, packer))
        # Before the transaction: the workers' transactions take turns, and the shorter
        # each is, the sooner the next one begins.
        fresh = fresh_traces(project_id, spans)
        try:
            with self._transaction() as conn:
                before = conn.total_changes
                # Trace by trace, to know which traces got only new spans (a tally can
                # add those; a retry's spans it would count twice).
                all_new = set()
                for trace_id, trace_rows in rows.items():
                    start = conn.total_changes
                    conn.executemany(schema.INSERT_SPAN, trace_rows)
                    if conn.total_changes - start == len(fresh[trace_id].spans):
                        all_new.add(trace_id)
                new = conn.total_changes - before
                if new:
                    self._refresh_rollups(conn, project_id, fresh, all_new)
        except BaseException:
            # Tallies may have counted what was not committed.
            self._tallies.forget(project_id, fresh)
            raise
        if packer.samples:
            try:
                self._learn_dictionary(packer.samples)
            except StorageFull as error:
                # The spans are committed; the dictionary can wait for space.
                log.warning("payload dictionary not saved: %s", error.message)
        return new

    def _learn_dictionary(self, samples: list[bytes]) -> None:
        """Keep payloads packed without a dictionary; once there are enough, pack with
        one from then on: another worker's, if it trained one meanwhile, else one
        trained on them.

        Training takes tens of milliseconds of CPU, outside any transaction, so that
        the other workers keep writing meanwhile. One process trains at a time (a file
        lock, not waited for): the others keep packing without a dictionary and try
        again after their next write, when they find it and adopt it.
        """
        with self._write_lock:
            if self._samples is None:
                return
            # Training takes time in proportion to the samples: no more than needed.
            self._samples += samples[: payloads.TRAIN_AFTER - len(self._samples)]
            if len(self._samples) < payloads.TRAIN_AFTER:
                return
            try:
                fcntl.flock(self._training_turn, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return
            try:
                with self._read() as conn:
                    self._dictionaries.update(payloads.load_all(conn))
                dictionary = next(reversed(self._dictionaries.values()), None)
                if dictionary is None:
                    dictionary = payloads.train(self._samples)
                    if dictionary is not None:
                        with self._transaction() as conn:
                            payloads.save(conn, dictionary)
                        self._dictionaries[dictionary.dict_id()] = dictionary
                # Without one (zstd found none), payloads keep being packed without.
                self._samples = None
                self._packing = dictionary
            finally:
                fcntl.flock(self._training_turn, fcntl.LOCK_UN)

    def _unpacker(self) -> payloads.Unpacker:
        return payloads.Unpacker(self._dictionary)

    def _dictionary(self, dict_id: int) -> payloads.Dictionary:
        if dict_id not in self._dictionaries:
            # Trained by another worker process since this one last read them.
            with self._read() as conn:
                self._dictionaries.update(payloads.load_all(conn))
        try:
            return self._dictionaries[dict_id]
        except KeyError:
            raise LookupError(f"payload dictionary {dict_id} is missing") from None

    def _refresh_rollups(
        self,
        conn: sqlite3.Connection,
        project_id: int,
        fresh: dict[str, FreshTrace],
        all_new: set[str],
    ) -> None:
        """Roll up again the traces of a batch (``fresh``: each one's rollup and row as if
        it had no spans stored before the batch; ``all_new``: the traces none of whose
        spans in the batch was stored before) and their sessions."""
        trace_ids = sorted(fresh)
        # Traces stored before, with their rollup: their sessions need refreshing too,
        # since a late span may move a trace into a session.
        stored_rollups = {
            rollup.trace_id: rollup
            for rollup in map(
                schema.trace_rollup,
                _select_in(
                    conn, schema.SELECT_TRACES + " AND trace_id IN ({})", (project_id,), trace_ids
                ),
            )
        }
        stored = {trace_id: r.session_id for trace_id, r in stored_rollups.items()}
        # Sessions a stored trace was in, is in now, or changed in: rolled up again from
        # all of their traces.
        recount = {session_id for session_id in stored.values() if session_id}
        # A trace seen for the first time has all its spans in this batch: its rollup
        # needs no read. A large trace stored before, whose tally this writer keeps,
        # adds its new spans to the tally (trace_tally.py). Any other trace stored before
        # is read back whole: its new spans are in the table now.
        rolled_again: list[TraceRollup] = []
        to_read: list[str] = []
        for trace_id in stored:
            tally = self._tallies.get(project_id, stored_rollups[trace_id])
            if tally is not None and trace_id in all_new and tally.add(fresh[trace_id].spans):
                rolled_again.append(tally.rollup)
            else:
                self._tallies.forget(project_id, [trace_id])
                to_read.append(trace_id)
        read_back: dict[str, list[StoredSpanFacts]] = defaultdict(list)
        rowids: dict[int, int] = {}
        for row in _select_in(conn, schema.SELECT_SPAN_FACTS, (project_id,), to_read):
            fact = schema.span_facts(row)
            read_back[row[0]].append(fact)
            rowids[id(fact)] = row[17]
        _load_previews(conn, read_back.values(), rowids, self._unpacker())
        for trace_id, facts in read_back.items():
            rolled_again.append(self._roll_up(project_id, trace_id, facts))
        for trace_id, trace in fresh.items():
            if trace_id not in stored and len(trace.spans) >= TALLY_FROM_SPANS:
                self._roll_up(project_id, trace_id, trace.spans)
        conn.executemany(
            schema.UPSERT_TRACE,
            [
                *(trace.row for trace_id, trace in fresh.items() if trace_id not in stored),
                *(schema.trace_row(project_id, rollup) for rollup in rolled_again),
            ],
        )
        recount.update(rollup.session_id for rollup in rolled_again if rollup.session_id)
        # Traces new to the store join their sessions: the next turns of a conversation
        # are added to its stored rollup rather than reading all of its traces again.
        joining: dict[str, list[TraceRollup]] = defaultdict(list)
        for trace_id, trace in fresh.items():
            session_id = trace.rollup.session_id
            if session_id and session_id not in recount and trace_id not in stored:
                joining[session_id].append(trace.rollup)
        sessions: list[SessionRollup] = []
        if joining:
            known = {
                row[0]: schema.session_rollup(row)
                for row in _select_in(
                    conn,
                    schema.SELECT_SESSIONS + " AND session_id IN ({})",
                    (project_id,),
                    sorted(joining),
                )
            }
            for session_id, later in joining.items():
                merged = (
                    merge_session(known[session_id], later)
                    if session_id in known
                    # A session without a row has no trace stored: these are all of it.
                    else roll_up_session(session_id, later)
                )
                if merged is None:
                    recount.add(session_id)
                else:
                    sessions.append(merged)
        if recount:
            by_session: dict[str, list[TraceRollup]] = defaultdict(list)
            for row in _select_in(
                conn,
                schema.SELECT_TRACES + " AND session_id IN ({})",
                (project_id,),
                sorted(recount),
            ):
                rollup = schema.trace_rollup(row)
                by_session[rollup.session_id or ""].append(rollup)
            sessions += [
                roll_up_session(session_id, traces) for session_id, traces in by_session.items()
            ]
            # A session whose every trace moved away has no rollup any more.
            conn.executemany(
                "DELETE FROM sessions WHERE project_id = ? AND session_id = ?",
                [(project_id, sid) for sid in recount - by_session.keys()],
            )
        conn.executemany(
            schema.UPSERT_SESSION, [schema.session_row(project_id, r) for r in sessions]
        )

    def _roll_up(self, project_id: int, trace_id: str, spans: Sequence[SpanFacts]) -> TraceRollup:
        """The rollup of a trace from all of its spans; a large one's tally is kept."""
        if len(spans) >= TALLY_FROM_SPANS:
            tally = TraceTally.of(trace_id, spans)
            if tally is not None:
                self._tallies.keep(project_id, tally)
                return tally.rollup
        return roll_up_trace(trace_id, spans)

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
            _text_search(where, args, query.q, ("session_id", "first_input", "last_output"))
        add_session_filters(where, args, project_id, query)
        more, more_args = scores.filter_conditions(
            "session", "sessions.session_id", "sessions.project_id", query.scores
        )
        where += more
        args += more_args
        order, order_type = SESSION_SORTS[query.sort]
        if query.cursor:
            sort_key, session_id = cursors.decode(query.cursor, order_type, str)
            where.append(f"({order}, session_id) < (?, ?)")
            args += [sort_key, session_id]
        sql = (
            f"SELECT {schema.SESSION_COLUMNS}, {order} FROM sessions WHERE {' AND '.join(where)}"
            f" ORDER BY {order} DESC, session_id DESC LIMIT ?"
        )
        with self._read() as conn:
            rows = conn.execute(sql, [*args, query.limit + 1]).fetchall()
            summaries = scores.summaries(
                conn, project_id, "session", [row[0] for row in rows[: query.limit]]
            )
        items = [schema.session(row) for row in rows[: query.limit]]
        for item in items:
            item.scores = summaries.get(item.session_id, {})
        next_cursor = None
        if len(rows) > query.limit:
            last = rows[query.limit - 1]
            next_cursor = cursors.encode(last[-1], last[0])
        return Page[Session](items=items, next_cursor=next_cursor)

    def get_session(self, project_id: int, session_id: str) -> SessionDetail | None:
        with self._read() as conn:
            row = conn.execute(
                schema.SELECT_SESSIONS + " AND session_id = ?", (project_id, session_id)
            ).fetchone()
            if row is None:
                return None
            traces = conn.execute(
                schema.SELECT_TRACES + " AND session_id = ? ORDER BY start_ns, trace_id",
                (project_id, session_id),
            ).fetchall()
            own = scores.summaries(conn, project_id, "session", [session_id])
            by_trace = scores.summaries(conn, project_id, "trace", [t[0] for t in traces])
        detail = SessionDetail(
            **schema.session(row).model_dump(),
            traces=[schema.trace(schema.trace_rollup(t)) for t in traces],
        )
        detail.scores = own.get(session_id, {})
        for trace in detail.traces:
            trace.scores = by_trace.get(trace.trace_id, {})
        return detail

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
            _text_search(where, args, query.q, ("name", "input_preview", "output_preview"))
        add_trace_filters(where, args, project_id, query)
        more, more_args = scores.filter_conditions(
            "trace", "traces.trace_id", "traces.project_id", query.scores
        )
        where += more
        args += more_args
        if query.cursor:
            start_ns, trace_id = cursors.decode(query.cursor, int, str)
            where.append("(start_ns, trace_id) < (?, ?)")
            args += [start_ns, trace_id]
        sql = (
            f"{schema.SELECT_TRACES_FROM} WHERE {' AND '.join(where)}"
            " ORDER BY start_ns DESC, trace_id DESC LIMIT ?"
        )
        with self._read() as conn:
            rows = conn.execute(sql, [*args, query.limit + 1]).fetchall()
            summaries = scores.summaries(
                conn, project_id, "trace", [row[0] for row in rows[: query.limit]]
            )
        rollups = [schema.trace_rollup(row) for row in rows]
        next_cursor = None
        if len(rollups) > query.limit:
            last = rollups[query.limit - 1]
            next_cursor = cursors.encode(last.start_ns, last.trace_id)
        items = [schema.trace(r) for r in rollups[: query.limit]]
        for item in items:
            item.scores = summaries.get(item.trace_id, {})
        return Page[Trace](items=items, next_cursor=next_cursor)

    def get_trace(self, project_id: int, trace_id: str) -> TraceDetail | None:
        with self._read() as conn:
            row = conn.execute(
                schema.SELECT_TRACES + " AND trace_id = ?", (project_id, trace_id)
            ).fetchone()
            if row is None:
                return None
            spans = conn.execute(
                f"SELECT {schema.SPAN_COLUMNS} FROM spans WHERE project_id = ? AND trace_id = ?"
                " ORDER BY start_ns, span_id",
                (project_id, trace_id),
            ).fetchall()
            summaries = scores.summaries(conn, project_id, "trace", [trace_id])
        trace = schema.trace(schema.trace_rollup(row))
        trace.scores = summaries.get(trace_id, {})
        unpack = self._unpacker()
        return TraceDetail(**trace.model_dump(), spans=[schema.span(s, unpack) for s in spans])

    # --- share links ----------------------------------------------------------------

    def add_share(self, share: StoredShare) -> None:
        with self._transaction() as conn:
            shares.add(conn, share)

    def list_shares(self, project_id: int) -> list[StoredShare]:
        with self._read() as conn:
            return shares.list_for(conn, project_id)

    def revoke_share(self, project_id: int, share_id: str) -> bool:
        with self._transaction() as conn:
            return shares.revoke(conn, project_id, share_id)

    def share_by_token_hash(self, token_hash: bytes) -> StoredShare | None:
        with self._read() as conn:
            return shares.by_token_hash(conn, token_hash)

    # --- deletion -------------------------------------------------------------------

    def delete_traces(self, project_id: int, trace_ids: Sequence[str]) -> int:
        self._tallies.forget(project_id, trace_ids)
        with self._transaction() as conn:
            return deletion.delete_traces(conn, project_id, trace_ids)

    def delete_sessions(self, project_id: int, session_ids: Sequence[str]) -> int:
        with self._transaction() as conn:
            existed, trace_ids = deletion.delete_sessions(conn, project_id, session_ids)
        # As delete_traces does: no tally of a deleted trace stays to be added to.
        self._tallies.forget(project_id, trace_ids)
        return existed

    # --- scores, score configurations, notes ------------------------------------------

    def write_scores(self, project_id: int, records: Sequence[ScoreRecord]) -> None:
        if not records:
            return
        with self._transaction() as conn:
            scores.write(conn, project_id, records)

    def get_scores(self, project_id: int, score_ids: Sequence[str]) -> dict[str, Score]:
        with self._read() as conn:
            found = scores.get(conn, project_id, score_ids)
        return {score_id: present_score(r) for score_id, r in found.items()}

    def list_scores(self, project_id: int, query: ScoreQuery) -> Page[Score]:
        with self._read() as conn:
            return scores.list_scores(conn, project_id, query)

    def delete_score(self, project_id: int, score_id: str) -> bool:
        with self._transaction() as conn:
            return scores.delete(conn, project_id, score_id)

    def list_score_configs(self, project_id: int) -> list[ScoreConfig]:
        with self._read() as conn:
            return scores.list_configs(conn, project_id)

    def put_score_config(self, project_id: int, config: ScoreConfig) -> None:
        with self._transaction() as conn:
            scores.put_config(conn, project_id, config)

    def delete_score_config(self, project_id: int, name: str) -> bool:
        with self._transaction() as conn:
            return scores.delete_config(conn, project_id, name)

    def add_note(self, project_id: int, note: NoteIn) -> Note:
        with self._transaction() as conn:
            return scores.add_note(conn, project_id, note, time.time_ns())

    def list_notes(self, project_id: int, session_id: str) -> list[Note]:
        with self._read() as conn:
            return scores.list_notes(conn, project_id, session_id)

    def delete_note(self, project_id: int, note_id: str) -> bool:
        with self._transaction() as conn:
            return scores.delete_note(conn, project_id, note_id)

    def allowed_origins(self, project_id: int) -> list[str]:
        with self._read() as conn:
            return scores.allowed_origins(conn, project_id)

    def set_allowed_origins(self, project_id: int, origins: Sequence[str]) -> None:
        with self._transaction() as conn:
            scores.set_allowed_origins(conn, project_id, origins)

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

    def create_key(self, project_id: int, scope: KeyScope = "full") -> str:
        key = "tl_" + secrets.token_urlsafe(32)
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO api_keys (project_id, key_hash, prefix, scope, created_ns)"
                " VALUES (?, ?, ?, ?, ?)",
                (project_id, _hash_key(key), key[:10], scope, time.time_ns()),
            )
        return key

    def access_for_key(self, key: str) -> KeyAccess | None:
        digest = _hash_key(key)
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
        key = "tl_" + secrets.token_urlsafe(32)
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
                (row[0], _hash_key(key), key[:10], row[1], now),
            )
        return key

    # --- users, live feed -------------------------------------------------------------
    # The list filters and sort orders live in ``filters.py``.

    def list_users(self, project_id: int, query: UserQuery) -> Page[UserSummary]:
        """Users by last activity, aggregated over the traces that carry their id."""
        where = ["project_id = ?", "user_id IS NOT NULL"]
        args: list[Any] = [project_id]
        _time_overlap(where, args, query.start, query.end)
        if query.q:
            _text_search(where, args, query.q, ("user_id",))
        having = ""
        if query.cursor:
            last_ns, user_id = cursors.decode(query.cursor, int, str)
            having = " HAVING (MAX(end_ns), user_id) < (?, ?)"
            args += [last_ns, user_id]
        sql = (
            "SELECT user_id, COUNT(DISTINCT session_id), COUNT(*), SUM(input_tokens),"
            " SUM(output_tokens), SUM(total_tokens), SUM(cost_usd),"
            " SUM(status = 'error'), MIN(start_ns), MAX(end_ns)"
            f" FROM traces WHERE {' AND '.join(where)} GROUP BY user_id{having}"
            " ORDER BY MAX(end_ns) DESC, user_id DESC LIMIT ?"
        )
        with self._read() as conn:
            rows = conn.execute(sql, [*args, query.limit + 1]).fetchall()
            summaries = scores.user_summaries(conn, project_id, [r[0] for r in rows[: query.limit]])
        page = schema.user_page(rows, query.limit)
        for item in page.items:
            item.scores = summaries.get(item.user_id, {})
        return page

    def metrics(self, project_id: int, query: MetricsQuery, names: Sequence[str]) -> Metrics:
        span = metric_rules.bucket_range(query)
        with self._read() as conn:
            rows = metrics.read(conn, project_id, query, span)
        return metric_rules.build(query, span, rows, names)

    def live_watermark(self, project_id: int) -> int:
        """The feed position of the project's latest trace write (0 before any).

        Read it *before* querying with ``changed_after`` = the previous watermark: a
        write in between is then seen twice (harmless) rather than never.
        """
        with self._read() as conn:
            row = conn.execute(
                "SELECT COALESCE(MAX(seq), 0) FROM trace_feed WHERE project_id = ?",
                (project_id,),
            ).fetchone()
        return int(row[0])

    # --- migration between stores (``threadline migrate``) ---------------------------

    def dump_access(self) -> AccessRecords:
        with self._read() as conn:
            projects = conn.execute("SELECT id, name FROM projects ORDER BY id").fetchall()
            keys = conn.execute(
                "SELECT id, project_id, key_hash, prefix, scope, created_ns, revoked_ns"
                " FROM api_keys ORDER BY id"
            ).fetchall()
        return AccessRecords(
            projects=[Project(id=r[0], name=r[1]) for r in projects],
            keys=[StoredKey(*r) for r in keys],
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
                conn.execute(
                    "INSERT OR IGNORE INTO api_keys (project_id, key_hash, prefix, scope,"
                    " created_ns, revoked_ns) VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        ids[key.project_id],
                        key.key_hash,
                        key.prefix,
                        key.scope,
                        key.created_ns,
                        key.revoked_ns,
                    ),
                )
        return ids

    def count_spans(self) -> int:
        with self._read() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM spans").fetchone()[0])

    def iter_spans(self, batch_size: int) -> Iterator[tuple[int, list[SpanRecord]]]:
        after: tuple[Any, ...] = (-1, "", "")
        while True:
            with self._read() as conn:
                found = conn.execute(
                    f"SELECT {span_records.COLUMNS} FROM spans"
                    " WHERE (project_id, trace_id, span_id) > (?, ?, ?)"
                    " ORDER BY project_id, trace_id, span_id LIMIT ?",
                    (*after, batch_size),
                ).fetchall()
            if not found:
                return
            after = found[-1][:3]
            unpack = self._unpacker()
            by_project: dict[int, list[SpanRecord]] = defaultdict(list)
            for row in found:
                # Inputs and outputs may be stored packed (zstd): hand on the text.
                text = (*row[:11], unpack(row[11]), unpack(row[12]), *row[13:])
                by_project[row[0]].append(span_records.span_record(text))
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


# --- schema ----------------------------------------------------------------------------


class FreshTrace(NamedTuple):
    """A trace rolled up from the records of one batch as if none of it was stored
    before, its ``traces`` row, and those records (the first copy of each span)."""

    rollup: TraceRollup
    row: tuple[Any, ...]
    spans: list[SpanRecord]


def fresh_traces(project_id: int, spans: Sequence[SpanRecord]) -> dict[str, FreshTrace]:
    """Each trace of ``spans`` rolled up from these records as if none of it was stored
    before (the usual case: a trace's spans mostly arrive in one export). The first
    copy of a span wins, as the insert's does."""
    by_trace: dict[str, dict[str, SpanRecord]] = defaultdict(dict)
    for span in spans:
        by_trace[span.trace_id].setdefault(span.span_id, span)
    fresh = {}
    for trace_id, by_id in by_trace.items():
        records = list(by_id.values())
        rollup = roll_up_trace(trace_id, records)
        fresh[trace_id] = FreshTrace(rollup, schema.trace_row(project_id, rollup), records)
    return fresh


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


# --- query helpers ---------------------------------------------------------------------


def _load_previews(
    conn: sqlite3.Connection,
    traces: Iterable[list[StoredSpanFacts]],
    rowids: dict[int, int],
    unpack: payloads.Unpacker,
) -> None:
    """Read the input and output previews of just the spans that stand for each trace."""
    wanted: dict[str, dict[int, StoredSpanFacts]] = {"input": {}, "output": {}}
    for spans in traces:
        source_in, source_out = preview_sources(spans)
        if source_in:
            wanted["input"][rowids[id(source_in)]] = source_in
        if source_out:
            wanted["output"][rowids[id(source_out)]] = source_out
    # The whole input (its preview is its last messages); the output's beginning, and a
    # packed payload (a BLOB) is cut after unpacking it.
    columns = {
        "input": ("input_text", "input", None),
        "output": (
            "output_preview",
            "CASE typeof(output) WHEN 'blob' THEN output ELSE substr(output, 1, ?) END",
            PREVIEW_CHARS,
        ),
    }
    for column, by_rowid in wanted.items():
        field, value, chars = columns[column]
        ids = list(by_rowid)
        for i in range(0, len(ids), _IN_CHUNK):
            chunk = ids[i : i + _IN_CHUNK]
            marks = ", ".join("?" * len(chunk))
            for rowid, stored in conn.execute(
                f"SELECT rowid, {value} FROM spans WHERE rowid IN ({marks})",
                (chars, *chunk) if chars else chunk,
            ):
                text = unpack(stored)
                setattr(by_rowid[rowid], field, text[:chars] if text and chars else text)


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


def _text_search(where: list[str], args: list[Any], text: str, columns: tuple[str, ...]) -> None:
    """Keep rows with ``text`` in any of ``columns`` (ASCII case-insensitive, like
    SQLite's LIKE); ``%`` and ``_`` in the text are literal."""
    where.append("(" + " OR ".join(f"{c} LIKE ? ESCAPE '\\'" for c in columns) + ")")
    args += [_like(text)] * len(columns)


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
