"""Relevance for an index without positions: scored on the candidates' own text.

The search index keeps no positions since migration 0020 (``search_phrases.py``), and
FTS5 then counts no occurrences in a contentless table: its ``bm25`` is 0 for every
document. So the newest matching traces (at most ``search.RANKED_DOCS`` documents'
worth) are scored here on their spans' searchable text, read back and unpacked: for
each term, how often it occurs, against the text's length, as BM25 weighs them (k1 1.2,
b 0.75, lengths against the candidates' mean). The terms weigh alike (no inverse
document frequency: a count over the whole index per term would cost more than the
scoring for a common word).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from threadline.server.search.query import SearchQuery
from threadline.server.search.snippets import term_pattern
from threadline.server.store.sqlite.driver import sqlite3
from threadline.server.store.sqlite.search_phrases import Unpack, folded_span_texts

K1 = 1.2
B = 0.75
_WORD = re.compile(r"[^\W_]+")


def scores(
    conn: sqlite3.Connection, keys: Iterable[int], search: SearchQuery, unpack: Unpack
) -> dict[int, float]:
    """Trace key -> relevance (higher is better) of each trace keyed in ``keys``."""
    counted: dict[int, tuple[list[int], int]] = {}
    for key in keys:
        counts = [0] * len(search.terms)
        length = 0
        for folded in folded_span_texts(conn, key, unpack):
            length += sum(1 for _ in _WORD.finditer(folded))
            for i, term in enumerate(search.terms):
                counts[i] += sum(1 for _ in term_pattern(term).finditer(folded))
        counted[key] = (counts, max(length, 1))
    if not counted:
        return {}
    mean = sum(length for _, length in counted.values()) / len(counted)
    return {
        key: sum(
            count * (K1 + 1) / (count + K1 * (1 - B + B * length / mean))
            for count in counts
            if count
        )
        for key, (counts, length) in counted.items()
    }
