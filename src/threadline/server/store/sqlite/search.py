"""Full-text search in the SQLite store: the index kept on write, and the lists' search.

The index (migration 0009) is a contentless FTS5 table: the words of each span's
searchable text (``search/text.py``) and where they are, never the text itself, which
stays in ``spans``, packed. A document is the text of the spans of one trace that one
batch brought (``search/text.py``'s ``document_text``: a text two of them say is indexed
once), and ``search_docs`` names its spans. Its rowid is its trace's key times 2^20 plus
its number in the trace, so a match names its trace (``rowid >> 20``) with no read, and
"does this trace match" is a range of rowids, which FTS5 seeks to. Which of a matching
document's spans match, and where, the snippets find in the spans' own text.

Two plans, chosen by how many documents match (``is_common``, counting no more than
needed): a rare query's matches are few, so the traces they name are collected
and the list keeps its rows among them; a common query's are many, so the list walks its
rows in its own order and asks the index of each row's traces, and the first page is
found after a few rows.

Since migration 0016 the table is made with ``contentless_delete`` (SQLite 3.43+): a
document is forgotten by its rowid, so deleting a trace is one range of rowids. On an
older engine, which leaves that migration pending, a contentless table forgets a
document only when given the text it indexed: deletion reads the spans back and gives
``document_text`` of each document, before they go.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections import defaultdict
from collections.abc import Callable, Container, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from threadline.server.model import SessionMatch, Snippet, SpanRecord
from threadline.server.search.query import SearchQuery
from threadline.server.search.snippets import snippet
from threadline.server.search.text import document_text, span_parts, span_text
from threadline.server.store import rows as table_rows
from threadline.server.store.columns import SPAN_RECORD
from threadline.server.store.sqlite import filters, trace_keys
from threadline.server.store.sqlite.driver import sqlite3

Unpack = Callable[[Any], Any]
log = logging.getLogger("threadline.store")

DOC_BITS = 20
_SPAN = 1 << DOC_BITS
# A query is common past ``_COMMON_SCALE * sqrt(traces)`` matching documents (within
# these bounds): then the list is walked in its own order. Walking costs a few index
# seeks per row and needs about rows / (share of rows matching) of them; collecting
# costs a lookup per match; the two meet near the square root of the store's size
# (measured in docs/benchmarks.md).
_COMMON_SCALE = 40
_COMMON_BOUNDS = (2_000, 50_000)
# Relevance ranks at most this many matching documents, the newest (trace keys grow as
# traces arrive): all of a rare query's, and a bounded share of a word in every span.
RANKED_DOCS = 5_000
_IN_CHUNK = 500

# A span's columns and its trace key, last.
_SPAN_COLUMNS_KEYED = f"SELECT {SPAN_RECORD.sql}, trace_key FROM spans"
_SPAN_ID = SPAN_RECORD.position("span_id")


# --- writing ---------------------------------------------------------------------------


@dataclass
class Documents:
    """The documents of the index that a batch brings, made before the write
    transaction: one per trace with searchable text, held as three columns. They travel
    from a worker to the writer in the worker's answer, where a few lists of strings
    pickle and load in C (a tuple type per document cost a Python call each way, and
    one on making it: benchmarks.md)."""

    trace_ids: list[str] = field(default_factory=list)
    span_ids: list[str] = field(default_factory=list)  # of each, space-separated, in order
    texts: list[str] = field(default_factory=list)  # of each, its ``document_text``

    def __len__(self) -> int:
        return len(self.trace_ids)

    def add(self, trace_id: str, span_ids: str, text: str) -> None:
        self.trace_ids.append(trace_id)
        self.span_ids.append(span_ids)
        self.texts.append(text)

    def extend(self, other: Documents, leaving: Container[str] = ()) -> None:
        """Add ``other``'s documents but those of the traces in ``leaving``."""
        for document in zip(other.trace_ids, other.span_ids, other.texts, strict=True):
            if document[0] not in leaving:
                self.add(*document)


def documents(traces: Iterable[Sequence[SpanRecord]]) -> Documents:
    """The documents of a batch's traces (each given by its records, the first copy of
    each span, in order: ``span_batch.fresh_traces`` has them so), made before the write
    transaction: walking the JSON of inputs and outputs and joining the texts is most of
    the index's cost, and the ingest pipeline does it in a worker process, not in the
    writer's turn."""
    trace_ids, span_ids, texts = [], [], []
    for spans in traces:
        document = _document(spans)
        if document is not None:
            trace_ids.append(spans[0].trace_id)
            span_ids.append(document[0])
            texts.append(document[1])
    return Documents(trace_ids, span_ids, texts)


def by_trace(spans: Iterable[SpanRecord]) -> list[list[SpanRecord]]:
    """``spans`` as ``documents`` takes them: by trace, in the order each trace first
    comes, the first copy of a span winning, as INSERT OR IGNORE keeps it."""
    traces: dict[str, dict[str, SpanRecord]] = defaultdict(dict)
    for span in spans:
        traces[span.trace_id].setdefault(span.span_id, span)
    return [list(by_id.values()) for by_id in traces.values()]


def _document(spans: Iterable[SpanRecord]) -> tuple[str, str] | None:
    """The document of these spans of one trace, in this order: their ids,
    space-separated, and its text; None if none of them has searchable text."""
    span_ids = []
    texts = []
    for span in spans:
        parts = span_parts(span)
        if parts:
            span_ids.append(span.span_id)
            texts.append(parts)
    if not texts:
        return None
    return " ".join(span_ids), document_text(texts)


def index(
    conn: sqlite3.Connection,
    project_id: int,
    batch: Documents,
    spans: Sequence[SpanRecord],
    minted: trace_keys.Minted,
) -> None:
    """Index the spans of a batch new to the store (``batch``: its ``documents``;
    ``spans``: its records; ``minted``: its traces' keys, a new trace's minted with its
    one document numbered, ``trace_keys.mint``'s ``indexed``). Called in the write
    transaction before the spans are inserted: a span already stored keeps its first
    version, and so does the index.

    A trace's first document, the usual case, costs the document's rows. A
    trace the store has spans of already is checked for spans of the batch stored before
    (an export sent again): its document is then made again here, without them."""
    docs: list[tuple[int, str]] = []
    texts: list[tuple[int, str]] = []
    numbered: list[tuple[int, int]] = []
    keys, new = minted.keys, minted.new
    for trace_id, span_ids, text in zip(batch.trace_ids, batch.span_ids, batch.texts, strict=True):
        key = keys[trace_id]
        if trace_id in new:
            doc = key << DOC_BITS
        else:
            (count,) = conn.execute(
                "SELECT numbered FROM trace_keys WHERE key = ?", (key,)
            ).fetchone()
            if count >= _SPAN:
                continue  # a trace of a million documents: no more
            fresh = _without_stored(conn, project_id, trace_id, (span_ids, text), spans)
            if fresh is None:
                continue
            (span_ids, text), doc = fresh, (key << DOC_BITS) + count
            numbered.append((count + 1, key))
        docs.append((doc, span_ids))
        texts.append((doc, text))
    # In rowid order: FTS5 writes the words it holds out as a new segment whenever a
    # document's rowid is not above the last one's, and a group's documents come in the
    # order of its exports (a trace stored before, or split between two exports, has a
    # lower rowid than the traces minted after it): each step back was a segment more
    # to write and merge (benchmarks.md).
    docs.sort()
    texts.sort()
    conn.executemany("INSERT INTO search_docs (doc, span_ids) VALUES (?, ?)", docs)
    conn.executemany("INSERT INTO search_text (rowid, body) VALUES (?, ?)", texts)
    conn.executemany("UPDATE trace_keys SET numbered = ? WHERE key = ?", numbered)


def _without_stored(
    conn: sqlite3.Connection,
    project_id: int,
    trace_id: str,
    document: tuple[str, str],
    spans: Sequence[SpanRecord],
) -> tuple[str, str] | None:
    """``document`` of ``trace_id`` (its span ids and text, as ``documents`` made it)
    without the spans the store holds already (they were indexed when they came):
    itself when it has none of them, None when it has only them."""
    stored = {
        r[0]
        for r in conn.execute(
            f"SELECT span_id FROM spans WHERE trace_key = {trace_keys.KEY_OF}",
            (project_id, trace_id),
        )
    }
    ids = document[0].split(" ")
    if stored.isdisjoint(ids):
        return document
    wanted = set(ids) - stored
    by_id: dict[str, SpanRecord] = {}
    for span in spans:
        if span.trace_id == trace_id and span.span_id in wanted:
            by_id.setdefault(span.span_id, span)
    return _document(by_id.values())


def _documents_of(conn: sqlite3.Connection, key: int) -> list[tuple[int, list[str]]]:
    """The trace's documents: (rowid, its span ids in order)."""
    low, high = _doc_range(key)
    return [
        (doc, span_ids.split(" "))
        for doc, span_ids in conn.execute(
            "SELECT doc, span_ids FROM search_docs WHERE doc BETWEEN ? AND ? ORDER BY doc",
            (low, high),
        )
    ]


def forget_traces(
    conn: sqlite3.Connection, project_id: int, trace_ids: Sequence[str], unpack: Unpack
) -> None:
    """Take the traces out of the index; called in the deleting transaction while their
    spans are still stored. With ``contentless_delete`` (migration 0016) a trace's
    documents go by their rowids, one range; without it (an engine older than 3.43),
    FTS5 must be given each document's text again, made anew from the spans."""
    by_rowid = deletes_by_rowid(conn)
    for trace_id in trace_ids:
        row = conn.execute(
            "SELECT key FROM trace_keys WHERE project_id = ? AND trace_id = ?",
            (project_id, trace_id),
        ).fetchone()
        if row is None:
            continue
        low, high = _doc_range(row[0])
        if by_rowid:
            conn.execute("DELETE FROM search_text WHERE rowid BETWEEN ? AND ?", (low, high))
        else:
            _forget_with_text(conn, project_id, trace_id, row[0], unpack)
        conn.execute("DELETE FROM search_docs WHERE doc BETWEEN ? AND ?", (low, high))


def deletes_by_rowid(conn: sqlite3.Connection) -> bool:
    """Whether the index forgets a document by its rowid alone (``contentless_delete``:
    made so by migration 0016, on SQLite 3.43 or newer)."""
    found = conn.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'search_text'"
    ).fetchone()
    return found is not None and "contentless_delete" in found[0]


def _forget_with_text(
    conn: sqlite3.Connection, project_id: int, trace_id: str, key: int, unpack: Unpack
) -> None:
    """FTS5's ``delete`` of each of the trace's documents, with the text it indexed."""
    spans = _read_spans(conn, project_id, trace_id, unpack)
    forgotten = []
    for doc, span_ids in _documents_of(conn, key):
        parts = [span_parts(spans[span_id]) for span_id in span_ids if span_id in spans]
        forgotten.append((doc, document_text([p for p in parts if p])))
    conn.executemany(
        "INSERT INTO search_text (search_text, rowid, body) VALUES ('delete', ?, ?)",
        forgotten,
    )


def backfill(conn: sqlite3.Connection, unpack: Unpack, batch: int = 5_000) -> int:
    """Index the spans stored before the index existed, or before it was made anew,
    when migration 0009 or 0016 left word that there are (``search_backfill``), in
    transactions of ``batch`` spans (indexed ones are skipped, so an interrupted
    backfill resumes); returns how many spans were read."""
    if conn.execute("SELECT 1 FROM search_backfill").fetchone() is None:
        return 0
    # Minutes on a large store (benchmarks.md): said, as the server does not serve meanwhile.
    log.warning("indexing the stored spans for search (once, after an upgrade)")
    if conn.execute("SELECT 1 FROM search_docs LIMIT 1").fetchone() is None:
        # The index is new or made anew (0009, 0016): every trace's documents are
        # numbered from 0. A backfill resumed after a stop keeps its numbers.
        conn.execute("UPDATE trace_keys SET numbered = 0 WHERE numbered != 0")
    started = time.monotonic()
    after: tuple[Any, ...] = (-1, "")
    read = 0
    while True:
        # In the order of the spans' uniqueness index, (trace key, span id): a trace's
        # spans together.
        found = conn.execute(
            f"{_SPAN_COLUMNS_KEYED} WHERE (trace_key, span_id) > (?, ?)"
            " ORDER BY trace_key, span_id LIMIT ?",
            (*after, batch),
        ).fetchall()
        if not found:
            conn.execute("DELETE FROM search_backfill")
            log.warning("indexed %d spans for search in %.1f s", read, time.monotonic() - started)
            return read
        after = (found[-1][-1], found[-1][_SPAN_ID])
        read += len(found)
        by_project: dict[int, list[SpanRecord]] = defaultdict(list)
        for row in found:
            by_project[row[0]].append(_span_record(row, unpack))
        conn.execute("BEGIN IMMEDIATE")
        try:
            for project_id, records in by_project.items():
                _index_stored(conn, project_id, records)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def _index_stored(conn: sqlite3.Connection, project_id: int, spans: list[SpanRecord]) -> None:
    """``index`` for spans already in the table: those not indexed yet."""
    by_trace: dict[str, dict[str, SpanRecord]] = defaultdict(dict)
    for span in spans:
        by_trace[span.trace_id].setdefault(span.span_id, span)
    for trace_id, by_id in by_trace.items():
        row = conn.execute(
            "SELECT key, numbered FROM trace_keys WHERE project_id = ? AND trace_id = ?",
            (project_id, trace_id),
        ).fetchone()
        if row is None:
            continue  # not stored: every stored span's trace has a key (0018)
        key, count = row
        indexed = {span_id for _, span_ids in _documents_of(conn, key) for span_id in span_ids}
        document = _document([s for s in by_id.values() if s.span_id not in indexed])
        if document is None or count >= _SPAN:
            continue
        doc = (key << DOC_BITS) + count
        conn.execute("INSERT INTO search_docs (doc, span_ids) VALUES (?, ?)", (doc, document[0]))
        conn.execute("INSERT INTO search_text (rowid, body) VALUES (?, ?)", (doc, document[1]))
        conn.execute("UPDATE trace_keys SET numbered = ? WHERE key = ?", (count + 1, key))


# --- the lists' conditions -------------------------------------------------------------


def is_common(conn: sqlite3.Connection, search: SearchQuery) -> bool:
    """Whether the query matches so many documents that walking a list in its order
    finds a page sooner than collecting the matches (counting no more than that)."""
    traces = conn.execute("SELECT max(key) FROM trace_keys").fetchone()[0] or 0
    low, high = _COMMON_BOUNDS
    common_from = min(max(int(_COMMON_SCALE * math.sqrt(traces)), low), high)
    found = conn.execute(
        "SELECT count(*) FROM (SELECT 1 FROM search_text WHERE search_text MATCH ? LIMIT ?)",
        (search.fts5(), common_from),
    ).fetchone()[0]
    return bool(found >= common_from)


def _trace_matches_here(table: str) -> str:
    """For a common query, checked row by row: the trace of ``table``'s row (a ``traces``
    row, keyed by its trace's key) has a matching span (one ``?``: the MATCH expression)."""
    key = f"{table}.trace_key"
    return (
        "EXISTS (SELECT 1 FROM search_text WHERE search_text MATCH ? AND search_text.rowid"
        f" BETWEEN {key} * {_SPAN} AND {key} * {_SPAN} + {_SPAN - 1})"
    )


def _matching_traces(column: str = "trace_id") -> str:
    """For a rare query, found once: the ``column`` (the id, or the key) of the project's
    traces with a matching span (``?``: the MATCH expression, the project). The matches
    are the outer loop (``CROSS JOIN``), each finding its trace by key: written as ``key
    IN (matches)``, the planner (no ``sqlite_stat1``) walked every trace key of the
    project and looked each up among the matches (docs/benchmarks.md, round 16)."""
    return (
        f"SELECT k.{column} FROM (SELECT DISTINCT rowid >> 20 AS key FROM search_text"
        " WHERE search_text MATCH ?) AS hit CROSS JOIN trace_keys AS k ON k.key = hit.key"
        " WHERE k.project_id = ?"
    )


# The trace of a project whose id is given (``?``: the project, the id), if stored.
_TRACE_NAMED = f"SELECT trace_id FROM traces WHERE trace_key = {trace_keys.KEY_OF}"


def found_traces(
    conn: sqlite3.Connection, project_id: int, search: SearchQuery, text: str
) -> list[str] | None:
    """For a rare query, the traces it finds (their id is ``text``, or a span of them
    matches), for the list to read just those; None for a common one."""
    if not search.empty and is_common(conn, search):
        return None
    found = [row[0] for row in conn.execute(_TRACE_NAMED, (project_id, text.strip().lower()))]
    if not search.empty:
        found += [row[0] for row in conn.execute(_matching_traces(), (search.fts5(), project_id))]
    return sorted(set(found))


def trace_condition(search: SearchQuery) -> tuple[str, list[Any]]:
    """For a common query, a condition on a ``traces`` row: a span of it matches (a
    trace named by its id is found by ``found_traces``'s query: a common query is a
    word, which an id is not)."""
    return _trace_matches_here("traces"), [search.fts5()]


def _named_sessions(conn: sqlite3.Connection, project_id: int, text: str) -> list[str]:
    """The sessions whose id holds ``text``, from the sessions' key index."""
    return [
        row[0]
        for row in conn.execute(
            "SELECT session_id FROM sessions WHERE project_id = ? AND session_id LIKE ?"
            " ESCAPE '\\'",
            (project_id, filters.contains(text)),
        )
    ]


def found_sessions(
    conn: sqlite3.Connection, project_id: int, search: SearchQuery, text: str
) -> list[str] | None:
    """For a rare query, the sessions it finds (their id holds ``text``, or a span of
    one of their traces matches), for the list to read just those; None for a common
    one."""
    if not search.empty and is_common(conn, search):
        return None
    found = _named_sessions(conn, project_id, text)
    if not search.empty:
        found += [
            row[0]
            for row in conn.execute(
                "SELECT DISTINCT session_id FROM traces WHERE trace_key IN"
                f" ({_matching_traces('key')}) AND session_id IS NOT NULL",
                (search.fts5(), project_id),
            )
        ]
    return sorted(set(found))


def session_condition(
    conn: sqlite3.Connection, project_id: int, search: SearchQuery, text: str
) -> tuple[str, list[Any]]:
    """For a common query, a condition on a ``sessions`` row: its id holds ``text`` (as
    typed, any ASCII case), or a span of one of its traces matches."""
    named = "SELECT session_id FROM sessions WHERE project_id = ? AND session_id LIKE ? ESCAPE '\\'"
    where = (
        f"(sessions.session_id IN ({named}) OR EXISTS (SELECT 1 FROM traces"
        " WHERE traces.project_id = sessions.project_id"
        " AND traces.session_id = sessions.session_id AND " + _trace_matches_here("traces") + "))"
    )
    return where, [project_id, filters.contains(text), search.fts5()]


# --- relevance -------------------------------------------------------------------------


_FIRST = 1e300  # the relevance of a row whose id the text names: above any bm25
# The best bm25 of each trace among the newest matching documents (``?``: the MATCH
# expression, how many documents, the project). CROSS JOIN keeps the matches the outer
# loop, each finding its trace by key: SQLite 3.51's planner otherwise walked every
# trace of the project and looked for it among the matches (4 s at 1M spans, against
# well under 10 ms; benchmarks.md).
RANKED_HITS = (
    "WITH hits(key, score) AS (SELECT rowid >> 20, bm25(search_text) FROM search_text"
    " WHERE search_text MATCH ? ORDER BY rowid DESC LIMIT ?)"
    " SELECT st.trace_id, -min(hits.score) FROM hits CROSS JOIN trace_keys st"
    " ON st.key = hits.key WHERE st.project_id = ? GROUP BY st.trace_id"
)


def ranked_traces(
    conn: sqlite3.Connection, project_id: int, search: SearchQuery, text: str
) -> dict[str, float]:
    """Trace id -> relevance (higher is better: the best bm25 of its spans, negated);
    a trace whose id is ``text`` first."""
    ranked = {
        row[0]: _FIRST for row in conn.execute(_TRACE_NAMED, (project_id, text.strip().lower()))
    }
    if search.empty:
        return ranked
    rows = conn.execute(RANKED_HITS, (search.fts5(), RANKED_DOCS, project_id))
    for trace_id, score in rows:
        ranked.setdefault(trace_id, float(score))
    return ranked


def ranked_sessions(
    conn: sqlite3.Connection, project_id: int, search: SearchQuery, text: str
) -> dict[str, float]:
    """Session id -> relevance: its best trace's; sessions whose id holds ``text``
    first."""
    ranked = dict.fromkeys(_named_sessions(conn, project_id, text), _FIRST)
    traces = ranked_traces(conn, project_id, search, "") if not search.empty else {}
    ids = list(traces)
    for i in range(0, len(ids), _IN_CHUNK):
        chunk = ids[i : i + _IN_CHUNK]
        for trace_id, session_id in conn.execute(
            "SELECT trace_id, session_id FROM traces WHERE trace_key IN"
            f" {trace_keys.KEYS_OF.format(', '.join('?' * len(chunk)))} AND session_id IS NOT NULL",
            (project_id, *chunk),
        ):
            ranked[session_id] = max(ranked.get(session_id, float("-inf")), traces[trace_id])
    return ranked


# --- snippets and search inside a session ----------------------------------------------


def trace_snippets(
    conn: sqlite3.Connection,
    project_id: int,
    search: SearchQuery,
    trace_ids: Iterable[str],
    unpack: Unpack,
) -> dict[str, Snippet]:
    """The snippet of each trace's first matching span."""
    found: dict[str, Snippet] = {}
    if search.empty:
        return found
    for trace_id in trace_ids:
        for _, made in _trace_hits(conn, project_id, search, trace_id, unpack, first_only=True):
            found[trace_id] = made
    return found


def session_snippets(
    conn: sqlite3.Connection,
    project_id: int,
    search: SearchQuery,
    session_ids: Iterable[str],
    unpack: Unpack,
) -> dict[str, Snippet]:
    """The snippet of each session's first matching span (its traces in start order)."""
    found: dict[str, Snippet] = {}
    if search.empty:
        return found
    for session_id in session_ids:
        for (trace_id,) in conn.execute(
            "SELECT trace_id FROM traces WHERE project_id = ? AND session_id = ?"
            " ORDER BY start_ns, trace_id",
            (project_id, session_id),
        ):
            hits = _trace_hits(conn, project_id, search, trace_id, unpack, first_only=True)
            if hits:
                found[session_id] = hits[0][1]
                break
    return found


def session_matches(
    conn: sqlite3.Connection,
    project_id: int,
    session_id: str,
    search: SearchQuery,
    unpack: Unpack,
) -> list[SessionMatch]:
    """Every matching span of the session, its traces in start order, each trace's spans
    in start order."""
    matches: list[SessionMatch] = []
    if search.empty:
        return matches
    traces = conn.execute(
        "SELECT trace_key, trace_id FROM traces WHERE project_id = ? AND session_id = ?"
        " ORDER BY start_ns, trace_id",
        (project_id, session_id),
    ).fetchall()
    found = _found_keys(conn, search, {key for key, _ in traces}, len(traces))
    for turn, (key, trace_id) in enumerate(traces, start=1):
        if found is not None and key not in found:
            continue
        hits = _trace_hits(conn, project_id, search, trace_id, unpack, first_only=False)
        for span, made in hits:
            matches.append(
                SessionMatch(
                    trace_id=trace_id,
                    span_id=span.span_id,
                    turn=turn,
                    span_name=span.name,
                    snippet=made,
                )
            )
    return matches


# Index entries a session's search reads, per turn of the session, before it looks
# turn by turn instead (the index read for each turn: ~40 µs a turn, measured).
_ENTRIES_PER_TURN = 8
# A shorter session is searched turn by turn: a prefix or common word read across the
# whole index may cost more to begin than a few turns' reads.
_WHOLE_INDEX_FROM_TURNS = 256


def _found_keys(
    conn: sqlite3.Connection, search: SearchQuery, keys: Container[int], turns: int
) -> set[int] | None:
    """The keys among ``keys`` of the traces with a document that matches, read from the
    whole index at once; None for a short session, or when the index holds more
    matching documents than ``_ENTRIES_PER_TURN`` a turn (a common word), for which a
    read of each turn's documents costs less. A session of 100,000 turns searched for a
    word of one of them: one read, not 100,000."""
    if turns < _WHOLE_INDEX_FROM_TURNS:
        return None
    bound = _ENTRIES_PER_TURN * turns
    found: set[int] = set()
    rows = conn.execute("SELECT rowid FROM search_text WHERE search_text MATCH ?", (search.fts5(),))
    for read, (doc,) in enumerate(rows, start=1):
        if read > bound:
            return None
        key = doc >> DOC_BITS
        if key in keys:
            found.add(key)
    return found


def _trace_hits(
    conn: sqlite3.Connection,
    project_id: int,
    search: SearchQuery,
    trace_id: str,
    unpack: Unpack,
    first_only: bool,
) -> list[tuple[SpanRecord, Snippet]]:
    """The trace's matching spans in start order, with their snippets: the spans of its
    matching documents whose own text shows the match (a document holds several)."""
    row = conn.execute(
        "SELECT key FROM trace_keys WHERE project_id = ? AND trace_id = ?",
        (project_id, trace_id),
    ).fetchone()
    if row is None:
        return []
    low, high = _doc_range(row[0])
    hits = []
    # A span written again (late GenAI events filled it) is in a document of each write.
    seen: set[str] = set()
    for (span_ids,) in conn.execute(
        "SELECT span_ids FROM search_docs WHERE doc IN (SELECT rowid FROM search_text"
        " WHERE search_text MATCH ? AND rowid BETWEEN ? AND ?) ORDER BY doc",
        (search.fts5(), low, high),
    ).fetchall():
        unseen = [span_id for span_id in span_ids.split(" ") if span_id not in seen]
        seen.update(unseen)
        spans = _read_spans(conn, project_id, trace_id, unpack, unseen) if unseen else {}
        for span in sorted(spans.values(), key=lambda s: (s.start_ns, s.span_id)):
            made = snippet(span_text(span), search)
            if made is not None:
                hits.append((span, made))
                if first_only:
                    # This document's first; a later document (a later export of the
                    # trace) may hold an earlier span, so every document is looked at.
                    break
    hits.sort(key=lambda hit: (hit[0].start_ns, hit[0].span_id))
    return hits[:1] if first_only else hits


def _read_spans(
    conn: sqlite3.Connection,
    project_id: int,
    trace_id: str,
    unpack: Unpack,
    span_ids: Sequence[str] | None = None,
) -> dict[str, SpanRecord]:
    """The spans, with just what ``span_text`` reads (and their start, for order)."""
    sql = (
        "SELECT span_id, name, start_ns, status, status_message, events, input, output"
        f" FROM spans WHERE trace_key = {trace_keys.KEY_OF}"
    )
    args: list[Any] = [project_id, trace_id]
    if span_ids is not None:
        sql += f" AND span_id IN ({', '.join('?' * len(span_ids))})"
        args += span_ids
    return {
        row[0]: SpanRecord(
            trace_id=trace_id,
            span_id=row[0],
            parent_span_id=None,
            name=row[1],
            kind="",
            start_ns=row[2],
            end_ns=row[2],
            status=row[3],
            status_message=row[4],
            events=json.loads(row[5]),
            # Inputs and outputs may be stored packed (zstd): the text, as it was indexed.
            input=unpack(row[6]),
            output=unpack(row[7]),
        )
        for row in conn.execute(sql, args)
    }


def _span_record(row: tuple[Any, ...], unpack: Unpack) -> SpanRecord:
    # Inputs and outputs may be stored packed (zstd): the text, as it was indexed.
    return table_rows.span_record(row, unpack)


def _doc_range(key: int) -> tuple[int, int]:
    return key << DOC_BITS, (key << DOC_BITS) + _SPAN - 1
