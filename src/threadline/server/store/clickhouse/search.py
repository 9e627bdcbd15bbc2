"""Full-text search in the ClickHouse store: the ``search_text`` table (migration 0006)
written beside the spans, and the lists' search.

A span's searchable text (``search/text.py``) is stored as its words, folded (lower case,
no accents, each CJK character a word: ``search/query.py``'s ``words_of``, the rules the
SQLite index applies) and joined by single spaces between two spaces. A word is then the
substring `` word ``, a phrase `` a phrase ``, a prefix `` pref``: exact, with no
tokenizer of ClickHouse's to agree with. A whole word is also asked of ``hasToken``, so
that the token bloom filter skips the granules without it. A trace matches when its
spans hold every term between them (one turn), as on SQLite.

Relevance is the number of times the terms occur over the log of the text's length (a
short text that says it often ranks first), the best span standing for its trace and the
best trace for its session.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from threadline.server.model import SessionMatch, Snippet, SpanRecord
from threadline.server.search.query import SearchQuery, words_of
from threadline.server.search.snippets import snippet
from threadline.server.search.text import span_text
from threadline.server.store import rows as table_rows
from threadline.server.store.clickhouse import queries
from threadline.server.store.clickhouse.queries import Filters
from threadline.server.store.columns import SPAN_RECORD

Rows = Callable[[str, dict[str, Any]], list[tuple[Any, ...]]]

TABLE = "search_text"
COLUMNS = ["project_id", "trace_id", "span_id", "end_ns", "words"]
_FIRST = 1e300  # the relevance of a row whose id the text names: above any other


def rows(project_id: int, spans: Iterable[SpanRecord]) -> list[list[Any]]:
    """The ``search_text`` rows of a batch's spans (those with words). Written with no
    read, as the spans are: a span sent again is a row again, which merges away (the
    table's sort key is the span's identity) and reads take once."""
    found = []
    seen: set[tuple[str, str]] = set()
    for span in spans:
        identity = (span.trace_id, span.span_id)
        if identity in seen:
            continue  # the batch's first copy, as the spans keep it
        seen.add(identity)
        words = words_of(span_text(span))
        if words:
            found.append(
                [project_id, span.trace_id, span.span_id, span.end_ns, f" {' '.join(words)} "]
            )
    return found


def _needles(search: SearchQuery) -> list[tuple[str, list[str]]]:
    """Each term's substring, and its whole words (for the token index)."""
    needles = []
    for term in search.terms:
        phrase = " " + " ".join(term.words) + ("" if term.prefix else " ")
        whole = list(term.words[:-1] if term.prefix else term.words)
        needles.append((phrase, whole))
    return needles


def _term_conditions(f: Filters, search: SearchQuery) -> list[str]:
    """Per term, the condition on a ``search_text`` row that it is in it."""
    conditions = []
    for phrase, whole in _needles(search):
        found = [f"hasToken(words, {f.param(word)})" for word in whole]
        found.append(f"position(words, {f.param(phrase)}) > 0")
        conditions.append("(" + " AND ".join(found) + ")")
    return conditions


def _any_term(f: Filters, search: SearchQuery) -> str:
    return "(" + " OR ".join(_term_conditions(f, search)) + ")"


def _every_term(f: Filters, search: SearchQuery) -> str:
    """On the rows of one trace (a HAVING): each term is in one of its spans."""
    return " AND ".join(f"max({condition})" for condition in _term_conditions(f, search))


def _score(f: Filters, search: SearchQuery) -> str:
    counts = " + ".join(
        f"countSubstrings(words, {f.param(phrase)})" for phrase, _ in _needles(search)
    )
    return f"({counts}) / log2(length(words) + 2)"


def matching_traces(f: Filters, search: SearchQuery) -> str:
    """A subquery: the ids of the project's traces whose spans hold every term."""
    return (
        f"SELECT trace_id FROM {TABLE} WHERE project_id = %(project)s"
        f" AND {_any_term(f, search)} GROUP BY trace_id HAVING {_every_term(f, search)}"
    )


def trace_condition(f: Filters, search: SearchQuery, text: str) -> str:
    """On a latest-trace row: its id is ``text``, or a span of it matches."""
    condition = f"trace_id = {f.param(text.strip().lower())}"
    if not search.empty:
        condition += f" OR trace_id IN ({matching_traces(f, search)})"
    return f"({condition})"


def _sessions_matching(f: Filters, search: SearchQuery) -> str:
    """A subquery: the sessions of the traces with a matching span (only those traces'
    parts are merged)."""
    traces = queries.latest_traces(
        f"project_id = %(project)s AND trace_id IN ({matching_traces(f, search)})"
    )
    return f"SELECT session_id FROM ({traces}) WHERE session_id IS NOT NULL"


def session_condition(f: Filters, search: SearchQuery, text: str) -> str:
    """On a latest-session row: its id holds ``text`` (any ASCII case), or a span of
    one of its traces matches."""
    condition = f"positionCaseInsensitive(session_id, {f.param(text)}) > 0"
    if not search.empty:
        condition += f" OR session_id IN ({_sessions_matching(f, search)})"
    return f"({condition})"


def ranked_traces(f: Filters, search: SearchQuery) -> str:
    """A subquery of (trace_id, relevance > 0) of the matching traces."""
    if search.empty:
        return "SELECT '' AS trace_id, 0.0 AS relevance WHERE 0"
    return (
        f"SELECT trace_id, sum({_score(f, search)}) AS relevance FROM {TABLE}"
        f" WHERE project_id = %(project)s AND {_any_term(f, search)}"
        f" GROUP BY trace_id HAVING {_every_term(f, search)}"
    )


def ranked_sessions(f: Filters, search: SearchQuery) -> str:
    """A subquery of (session_id, relevance > 0): sessions by their best trace."""
    if search.empty:
        return "SELECT '' AS session_id, 0.0 AS relevance WHERE 0"
    traces = queries.latest_traces(
        f"project_id = %(project)s AND trace_id IN ({matching_traces(f, search)})"
    )
    return (
        "SELECT assumeNotNull(t.session_id) AS session_id, max(h.relevance) AS relevance"
        f" FROM ({ranked_traces(f, search)}) AS h INNER JOIN (SELECT trace_id, session_id"
        f" FROM ({traces}) WHERE session_id IS NOT NULL) AS t ON t.trace_id = h.trace_id"
        " GROUP BY session_id"
    )


def relevance_order(named: str) -> str:
    """The order of a relevance sort: rows whose id the text names (``named``, a
    condition) first, then by their best span."""
    return f"if({named}, {_FIRST}, relevance)"


# --- snippets and search inside a session ----------------------------------------------


def trace_snippets(
    read: Rows, project_id: int, search: SearchQuery, trace_ids: Sequence[str]
) -> dict[str, Snippet]:
    """The snippet of each trace's first matching span."""
    hits = _hits(read, project_id, search, trace_ids)
    return {trace_id: found[0][1] for trace_id, found in hits.items() if found}


def session_snippets(
    read: Rows, project_id: int, search: SearchQuery, session_ids: Sequence[str]
) -> dict[str, Snippet]:
    """The snippet of each session's first matching span (its traces in start order)."""
    if search.empty or not session_ids:
        return {}
    members = read(
        f"SELECT session_id, trace_id FROM ({_traces_of_sessions('%(sessions)s')})"
        " ORDER BY start_ns, trace_id",
        {"project": project_id, "sessions": list(session_ids)},
    )
    hits = _hits(read, project_id, search, [trace_id for _, trace_id in members])
    found: dict[str, Snippet] = {}
    for session_id, trace_id in members:
        if session_id not in found and hits.get(trace_id):
            found[session_id] = hits[trace_id][0][1]
    return found


def session_matches(
    read: Rows, project_id: int, session_id: str, search: SearchQuery
) -> list[SessionMatch]:
    """Every matching span of the session, its traces in start order, each trace's spans
    in start order."""
    if search.empty:
        return []
    traces = [
        row[0]
        for row in read(
            f"SELECT trace_id FROM ({_traces_of_sessions('(%(session)s)')})"
            " ORDER BY start_ns, trace_id",
            {"project": project_id, "session": session_id},
        )
    ]
    hits = _hits(read, project_id, search, traces, first_only=False)
    return [
        SessionMatch(
            trace_id=trace_id, span_id=span.span_id, turn=turn, span_name=span.name, snippet=made
        )
        for turn, trace_id in enumerate(traces, start=1)
        for span, made in hits.get(trace_id, [])
    ]


def _traces_of_sessions(session_ids: str) -> str:
    """The merged rollups of the traces now in the sessions ``session_ids`` (a parameter
    or a subquery), as the store's session page finds them (``session_members``)."""
    return (
        queries.latest_traces(
            "project_id = %(project)s AND trace_id IN (SELECT trace_id FROM session_members"
            f" WHERE project_id = %(project)s AND session_id IN {session_ids})"
        )
        + f" WHERE session_id IN {session_ids}"
    )


def _hits(
    read: Rows,
    project_id: int,
    search: SearchQuery,
    trace_ids: Sequence[str],
    first_only: bool = True,
) -> dict[str, list[tuple[SpanRecord, Snippet]]]:
    """The traces' matching spans in start order, with their snippets."""
    if search.empty or not trace_ids:
        return {}
    f = Filters(project_id)
    f.params["traces"] = list(trace_ids)
    found = read(
        f"SELECT {SPAN_RECORD.sql} FROM spans WHERE project_id = %(project)s"
        " AND trace_id IN %(traces)s AND (trace_id, span_id) IN ("
        f"SELECT trace_id, span_id FROM {TABLE} WHERE project_id = %(project)s"
        f" AND trace_id IN %(traces)s AND {_any_term(f, search)}"
        f" AND trace_id IN ({matching_traces(f, search)}))"
        # Of a span sent twice, the copy written last, as ``trace_detail`` shows it.
        " ORDER BY start_ns, span_id, ingested_ns DESC LIMIT 1 BY trace_id, span_id",
        f.params,
    )
    hits: dict[str, list[tuple[SpanRecord, Snippet]]] = defaultdict(list)
    for row in found:
        span = table_rows.span_record(row)
        if first_only and hits.get(span.trace_id):
            continue
        made = snippet(span_text(span), search)
        if made is not None:
            hits[span.trace_id].append((span, made))
    return hits
