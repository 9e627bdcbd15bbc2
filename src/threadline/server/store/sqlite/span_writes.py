"""The write transaction of ``SQLiteStore``: spans in, and the rollups they change.

An export's spans and the trace and session rollups they change are committed in one
transaction, so a committed export is immediately visible, totals included. Rollups
are computed by ``store/rollups.py``; a large trace's by a tally this writer keeps
(``store/trace_tally.py``).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

from threadline.server.errors import StorageFull
from threadline.server.model import SpanRecord
from threadline.server.store import rows as table_rows
from threadline.server.store.base import SpanBatch
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
from threadline.server.store.sqlite import (
    inference,
    metric_upkeep,
    model_usage,
    payloads,
    search,
    session_writes,
    span_groups,
    trace_keys,
)
from threadline.server.store.sqlite import rows as schema
from threadline.server.store.sqlite.chunked import IN_CHUNK, select_in
from threadline.server.store.sqlite.database import Database
from threadline.server.store.sqlite.driver import sqlite3
from threadline.server.store.sqlite.span_batch import (
    FreshTrace,
    PreparedSpans,
    SpanPreparer,
    restore_payloads,
)
from threadline.server.store.trace_tally import TALLY_FROM_SPANS, TallyCache, TraceTally

log = logging.getLogger("threadline.store")


class SpanWrites(Database):
    def __init__(self, path: str | Path):
        super().__init__(path)
        # Large traces' rollups, kept so that adding spans to one need not read it back.
        self._tallies = TallyCache()

    def span_preparer(self, project_id: int | None = None, *, read: bool = False) -> SpanPreparer:
        """The work of ``write_spans`` before its transaction, for another process to do
        (span_batch.py): packing with this store's payload dictionary, if it has one
        (the same for every project: nothing to read)."""
        packing = self._payloads.packing
        return SpanPreparer(None if packing is None else packing.as_bytes())

    def _prepare(self, project_id: int, spans: Sequence[SpanRecord]) -> PreparedSpans:
        return self.span_preparer()(project_id, spans)

    def write_spans(
        self, project_id: int, spans: Sequence[SpanRecord], prepared: object | None = None
    ) -> int:
        return self._write_groups([SpanBatch(project_id, spans, prepared)])

    def write_span_batches(self, batches: Sequence[SpanBatch]) -> None:
        self._write_groups(batches)

    def replace_spans(self, project_id: int, spans: Sequence[SpanRecord]) -> int:
        """Write ``spans`` over their stored rows in one transaction: each stored row is
        deleted and the span written again as a late span of its trace is, so the
        trace's rollup (its previews), its session's and the search index follow (the
        new text is a document of the trace's own; the old one keeps its words). A span
        whose row is gone (its trace deleted meanwhile) is not written again."""
        trace_ids = sorted({span.trace_id for span in spans})
        # A tally counts the deleted rows: the traces are read back instead.
        self._tallies.forget(project_id, trace_ids)
        new = 0
        try:
            with self._transaction() as conn:
                present = [
                    span
                    for span in spans
                    if conn.execute(
                        f"DELETE FROM spans WHERE trace_key = {trace_keys.KEY_OF} AND span_id = ?",
                        (project_id, span.trace_id, span.span_id),
                    ).rowcount
                ]
                if present:
                    for group in span_groups.by_project(
                        [SpanBatch(project_id, present)], self._prepare, self._payloads.unpacker()
                    ):
                        new += self._write_batch(conn, project_id, group.spans, group.prepared)
        finally:
            self._tallies.forget(project_id, trace_ids)
        return new

    def _write_groups(self, batches: Sequence[SpanBatch]) -> int:
        """Write the batches in one transaction, a project's as one batch
        (span_groups.py); how many spans were new."""
        groups = span_groups.by_project(batches, self._prepare, self._payloads.unpacker())
        if not groups:
            return 0
        new = 0
        try:
            with self._transaction() as conn:
                for group in groups:
                    new += self._write_batch(conn, group.project_id, group.spans, group.prepared)
        except BaseException:
            # Tallies may have counted what was not committed.
            for group in groups:
                self._tallies.forget(group.project_id, group.prepared.fresh)
            raise
        samples = [s for group in groups for s in group.prepared.samples or ()]
        if samples:
            try:
                self._payloads.learn(samples)
            except StorageFull as error:
                # The spans are committed; the dictionary can wait for space.
                log.warning("payload dictionary not saved: %s", error.message)
        return new

    def _write_batch(
        self,
        conn: sqlite3.Connection,
        project_id: int,
        spans: Sequence[SpanRecord],
        prepared: PreparedSpans,
    ) -> int:
        """Insert a batch's spans and bring the rollups they change up to date."""
        rows, fresh, documents = prepared.rows, prepared.fresh, prepared.documents
        minted = trace_keys.mint(conn, project_id, list(rows), set(documents.trace_ids))
        # A trace stored before (its search document made again without the spans
        # stored, its tally added to) or a large one (its tally made) is made from the
        # records' inputs and outputs, which may have travelled only in the rows.
        again = [
            trace_id
            for trace_id, trace in fresh.items()
            if trace_id not in minted.new or len(trace.spans) >= TALLY_FROM_SPANS
        ]
        if again:
            restore_payloads(spans, rows, again, self._payloads.unpacker())
        # Before the spans go in: the index takes the spans new to the store.
        search.index(conn, project_id, documents, spans, minted)
        before = conn.total_changes
        # Trace by trace, to know which traces got only new spans (a tally can
        # add those; a retry's spans it would count twice).
        all_new = set()
        for trace_id, trace_rows in rows.items():
            start = conn.total_changes
            key = minted.keys[trace_id]
            conn.executemany(schema.INSERT_SPAN, [[*row, key] for row in trace_rows])
            if conn.total_changes - start == len(fresh[trace_id].spans):
                all_new.add(trace_id)
        new = conn.total_changes - before
        if new:
            rollups = {trace_id: trace.rollup for trace_id, trace in fresh.items()}
            placement = inference.place(conn, project_id, spans, rollups)
            self._refresh_rollups(
                conn, project_id, fresh, all_new, placement, minted.keys, prepared.aggregates
            )
        return new

    def _refresh_rollups(
        self,
        conn: sqlite3.Connection,
        project_id: int,
        fresh: dict[str, FreshTrace],
        all_new: set[str],
        placement: inference.Placement,
        keys: dict[str, int],
        aggregates: metric_upkeep.NewTraces,
    ) -> None:
        """Roll up again the traces of a batch (``fresh``: each one's rollup and row as if
        it had no spans stored before the batch; ``all_new``: the traces none of whose
        spans in the batch was stored before) and their sessions (``placement``: the
        sessions inferred for traces sent without one, and those to recount; ``keys``:
        each trace's key, its rollup row's primary key; ``aggregates``: what the fresh
        traces add to the dashboard's aggregates as if none was stored before)."""
        trace_ids = sorted(fresh)
        # Traces stored before, with their rollup: their sessions need refreshing too,
        # since a late span may move a trace into a session.
        stored_rollups = {
            rollup.trace_id: rollup
            for rollup in map(
                table_rows.trace_rollup,
                select_in(conn, schema.SELECT_TRACES_BY_ID, (project_id,), trace_ids),
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
        for row in select_in(conn, schema.SELECT_SPAN_FACTS, (project_id,), to_read):
            fact = table_rows.span_facts(row)
            named = schema.SPAN_FACTS_ROWID.named(row)
            read_back[named["trace_id"]].append(fact)
            rowids[id(fact)] = named["rowid"]
        _load_previews(conn, read_back.values(), rowids, self._payloads.unpacker())
        for trace_id, facts in read_back.items():
            rolled_again.append(self._roll_up(project_id, trace_id, facts))
        for trace_id, trace in fresh.items():
            if trace_id not in stored and len(trace.spans) >= TALLY_FROM_SPANS:
                self._roll_up(project_id, trace_id, trace.spans)
        placement.fill(rolled_again)
        # What the traces add to the aggregates and their usage by model were worked
        # out with the batch as if none was stored before (metric_upkeep.py): those
        # that were have theirs taken back (traces_written), and their usage read and
        # replaced here.
        usage = metric_upkeep.batch_usage(
            conn,
            project_id,
            stored_rollups,
            rolled_again,
            {trace_id: fresh[trace_id].spans for trace_id in stored},
            all_new,
        )
        conn.executemany(
            model_usage.UPSERT_TRACE,
            [
                *(
                    [
                        *(
                            schema.trace_row(project_id, t.rollup)
                            if trace_id in placement.sessions
                            else t.row
                        ),
                        keys[trace_id],
                        aggregates.packed.get(trace_id),
                    ]
                    for trace_id, t in fresh.items()
                    if trace_id not in stored
                ),
                *(
                    [
                        *schema.trace_row(project_id, rollup),
                        keys[rollup.trace_id],
                        usage.packed.get(rollup.trace_id),
                    ]
                    for rollup in rolled_again
                ),
            ],
        )
        changes = metric_upkeep.traces_written(
            aggregates,
            stored_rollups,
            rolled_again,
            usage,
            [fresh[trace_id].rollup for trace_id in stored],
        )
        recount.update(rollup.session_id for rollup in rolled_again if rollup.session_id)
        recount.update(placement.recount)
        # Traces new to the store join their sessions: the next turns of a conversation
        # are added to its stored rollup rather than reading all of its traces again.
        joining: dict[str, list[TraceRollup]] = defaultdict(list)
        for trace_id, trace in fresh.items():
            session_id = trace.rollup.session_id
            if session_id and session_id not in recount and trace_id not in stored:
                joining[session_id].append(trace.rollup)
        sessions: list[SessionRollup] = []
        known: dict[str, SessionRollup] = {}  # the joined sessions' stored rollups
        if joining:
            known = {
                rollup.session_id: rollup
                for rollup in map(
                    table_rows.session_rollup,
                    select_in(
                        conn,
                        schema.SELECT_SESSIONS + " AND session_id IN ({})",
                        (project_id,),
                        sorted(joining),
                    ),
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
            for row in select_in(
                conn,
                schema.SELECT_TRACES + " AND session_id IN ({})",
                (project_id,),
                sorted(recount),
            ):
                rollup = table_rows.trace_rollup(row)
                by_session[rollup.session_id or ""].append(rollup)
            sessions += [
                roll_up_session(session_id, traces) for session_id, traces in by_session.items()
            ]
            # A session whose every trace moved away has no rollup any more (its own
            # scores count nowhere until it has one again).
            emptied = sorted(recount - by_session.keys())
            conn.executemany(
                "DELETE FROM sessions WHERE project_id = ? AND session_id = ?",
                [(project_id, sid) for sid in emptied],
            )
            changes.scored_targets.update((("session", sid), None) for sid in emptied)
            changes.moved_targets.update(("session", sid) for sid in emptied)
        # The joined sessions without a row are new: nothing to read back for them.
        session_writes.write(
            conn, project_id, sessions, known, joining.keys() - known.keys(), changes
        )
        changes.write(conn, project_id)

    def _roll_up(self, project_id: int, trace_id: str, spans: Sequence[SpanFacts]) -> TraceRollup:
        """The rollup of a trace from all of its spans; a large one's tally is kept."""
        if len(spans) >= TALLY_FROM_SPANS:
            tally = TraceTally.of(trace_id, spans)
            if tally is not None:
                self._tallies.keep(project_id, tally)
                return tally.rollup
        return roll_up_trace(trace_id, spans)


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
        for i in range(0, len(ids), IN_CHUNK):
            chunk = ids[i : i + IN_CHUNK]
            marks = ", ".join("?" * len(chunk))
            for rowid, stored in conn.execute(
                f"SELECT rowid, {value} FROM spans WHERE rowid IN ({marks})",
                (chars, *chunk) if chars else chunk,
            ):
                text = unpack(stored)
                setattr(by_rowid[rowid], field, text[:chars] if text and chars else text)
