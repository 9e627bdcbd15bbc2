"""Phrases against an index without positions: the index finds the documents holding
every word, and a query's phrases are then checked on the candidate trace's own text.

Since migration 0020 the search index keeps no positions (FTS5's ``detail = none``):
positions were most of its bytes and of the work its commits and merges do at ingest
(benchmarks.md, "The search index without positions"), and FTS5 answers no phrase
query without them. So the index is asked for the words of every term (``match``), and
a term of several words (a quoted phrase, ``don't``, a run of CJK characters) is looked
for in the text of the trace's spans, unpacked, by the snippets' own patterns
(``search/snippets.py``), in SQL through ``search_phrases_found(trace key, query)``.

A query of single words (and prefixes) needs no check: the index's answer is exact.
A phrase costs a read of each candidate trace's spans (~0.1-1 ms a trace): cheap for a
rare phrase, and for a common one the lists walk their rows in order and stop at a page.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from functools import lru_cache
from typing import Any

from threadline.server.model import SpanRecord
from threadline.server.search.query import SearchQuery, Term, fold, parse
from threadline.server.search.snippets import term_pattern
from threadline.server.search.text import span_text
from threadline.server.store.sqlite.driver import sqlite3

Unpack = Callable[[Any], Any]
FUNCTION = "search_phrases_found"


def match(search: SearchQuery) -> str:
    """FTS5's MATCH expression for an index without positions: every word of every term,
    quoted (so none is an operator), the last word of a prefix term as a prefix."""
    parts = []
    for term in search.terms:
        for i, word in enumerate(term.words):
            quoted = '"' + word.replace('"', '""') + '"'
            last = i == len(term.words) - 1
            parts.append(quoted + " *" if term.prefix and last else quoted)
    return " AND ".join(parts)


def phrases(search: SearchQuery) -> tuple[Term, ...]:
    """The query's terms the index cannot answer alone: those of several words."""
    return tuple(term for term in search.terms if len(term.words) > 1)


def condition(search: SearchQuery, key_sql: str) -> tuple[str, list[Any]]:
    """An SQL condition (`` AND ...``) that the trace whose key is ``key_sql`` holds each
    of the query's phrases, and its argument; nothing for a query without phrases."""
    if not phrases(search):
        return "", []
    return f" AND {FUNCTION}({key_sql}, ?)", [search.text]


def register(conn: sqlite3.Connection, unpacker: Callable[[], Unpack]) -> None:
    """Give ``conn`` the SQL function ``search_phrases_found(key, query text)``
    (``unpacker``: the payloads' unpacker, asked for at each call, as it is made once the
    store is open)."""

    def found(key: int, text: str) -> int:
        return int(trace_has_phrases(conn, key, _phrases_of(text), unpacker()))

    conn.create_function(FUNCTION, 2, found)


@lru_cache(maxsize=64)
def _phrases_of(text: str) -> tuple[Term, ...]:
    return phrases(parse(text))


def trace_has_phrases(
    conn: sqlite3.Connection, key: int, wanted: tuple[Term, ...], unpack: Unpack
) -> bool:
    """Whether the spans of the trace keyed ``key`` show every phrase of ``wanted``,
    each in one span's searchable text (as the index was given it: no phrase across
    two spans)."""
    pending = list(wanted)
    if not pending:
        return True
    for folded in folded_span_texts(conn, key, unpack):
        pending = [term for term in pending if term_pattern(term).search(folded) is None]
        if not pending:
            return True
    return False


def folded_span_texts(conn: sqlite3.Connection, key: int, unpack: Unpack) -> Iterator[str]:
    """The searchable text of each span of the trace keyed ``key``, folded (``fold``),
    read back from the stored spans, their payloads unpacked."""
    rows = conn.execute(
        "SELECT name, status, status_message, events, input, output FROM spans WHERE trace_key = ?",
        (key,),
    ).fetchall()
    for name, status, status_message, events, packed_input, packed_output in rows:
        span = SpanRecord(
            trace_id="",
            span_id="",
            parent_span_id=None,
            name=name,
            kind="",
            start_ns=0,
            end_ns=0,
            status=status,
            status_message=status_message,
            events=json.loads(events),
            input=unpack(packed_input),
            output=unpack(packed_output),
        )
        yield fold(span_text(span))
