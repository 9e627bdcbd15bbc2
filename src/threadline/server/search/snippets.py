"""A snippet: the stretch of a span's text around its first match, with every match in
it marked, for lists and the session page (both stores make them alike).

The index says which spans match; this finds where, in the text itself, by the same
rules (folded case and accents, word boundaries, phrases, prefixes), so a store needs no
copy of the text to show it.
"""

from __future__ import annotations

import re
from functools import lru_cache

from threadline.server.model import Snippet
from threadline.server.search.query import SearchQuery, Term, fold
from threadline.server.search.text import CJK_CHAR

SNIPPET_CHARS = 240
_ALNUM = r"[^\W_]"


def snippet(text: str, query: SearchQuery, chars: int = SNIPPET_CHARS) -> Snippet | None:
    """The snippet of ``text`` for ``query``, or None when no term is found in it."""
    spans = match_spans(text, query)
    if not spans:
        return None
    first = spans[0][0]
    start = max(0, first - chars // 3)
    # Begin at a word's start rather than inside one.
    if start:
        space = text.rfind(" ", max(0, start - 20), first)
        start = space + 1 if space >= 0 else start
    end = min(len(text), start + chars)
    head = "…" if start else ""
    tail = "…" if end < len(text) else ""
    shown = " ".join(text[start:end].split("\n"))
    marks = [
        (s - start + len(head), min(e, end) - start + len(head))
        for s, e in spans
        if s >= start and s < end
    ]
    return Snippet(text=head + shown + tail, highlights=marks)


def match_spans(text: str, query: SearchQuery) -> list[tuple[int, int]]:
    """Where ``query``'s terms are found in ``text``: (start, end) offsets, in order."""
    folded = fold(text)
    found: list[tuple[int, int]] = []
    for term in query.terms:
        found += [m.span() for m in _pattern(term).finditer(folded)]
    found.sort()
    merged: list[tuple[int, int]] = []
    for start, end in found:
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


@lru_cache(maxsize=256)
def _pattern(term: Term) -> re.Pattern[str]:
    # Words of a phrase are separated by anything but letters and digits; CJK
    # characters by nothing at all.
    body = r"[\W_]*".join(re.escape(word) for word in term.words)
    first, last = term.words[0], term.words[-1]
    before = "" if CJK_CHAR.match(first) else f"(?<!{_ALNUM})"
    if term.prefix:
        after = f"{_ALNUM}*"
    elif CJK_CHAR.match(last):
        after = ""
    else:
        after = f"(?!{_ALNUM})"
    return re.compile(before + body + after)
