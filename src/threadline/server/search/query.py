"""A search box's text as terms, and the terms as each store matches them.

The syntax, for every list and the session page alike (docs/api.md, "Search"):

- ``refund policy``: spans with every word (any case; accents ignored, so ``cafe``
  finds ``café``);
- ``"refund policy"``: the words next to each other, in that order (a phrase);
- ``refu*``: any word beginning so (a prefix);
- a run of Chinese, Japanese or Korean characters is found inside a sentence, written
  without spaces (it is matched as a phrase of its characters).

Nothing else is an operator: ``AND``, ``-`` or ``:`` are words or separators, so no text
can make a query the index refuses. Terms with no letter or digit are dropped.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from threadline.server.search.text import CJK_CHAR, index_form

_QUOTED_OR_WORD = re.compile(r'"([^"]*)"?|(\S+)')
_WORD = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class Term:
    """One term of a query: its words in folded form (lower case, accents off; a CJK
    run split into its characters), matched next to each other; the last as a prefix
    when ``prefix``."""

    words: tuple[str, ...]
    prefix: bool = False


@dataclass(frozen=True)
class SearchQuery:
    text: str
    terms: tuple[Term, ...]

    @property
    def empty(self) -> bool:
        return not self.terms

    def fts5(self) -> str:
        """SQLite FTS5's MATCH expression: every term quoted, so none is an operator."""
        parts = []
        for term in self.terms:
            quoted = '"' + " ".join(term.words).replace('"', '""') + '"'
            parts.append(quoted + " *" if term.prefix else quoted)
        return " AND ".join(parts)


def parse(text: str) -> SearchQuery:
    terms: list[Term] = []
    for match in _QUOTED_OR_WORD.finditer(text):
        quoted, bare = match.group(1), match.group(2)
        raw = quoted if quoted is not None else bare
        prefix = quoted is None and raw.endswith("*")
        words = tuple(words_of(raw))
        if not words:
            continue
        # A prefix of a CJK character would be any word following it: not a prefix.
        prefix = prefix and not CJK_CHAR.fullmatch(words[-1])
        # ``don't`` or ``e-mail``, split by the index as by ``words_of``, is matched as
        # a phrase of its words, as a quoted phrase is.
        terms.append(Term(words, prefix))
    return SearchQuery(text, tuple(terms))


def words_of(text: str) -> list[str]:
    """``text``'s words as the index holds them (folded, CJK characters one by one)."""
    return _WORD.findall(fold(index_form(text)))


class _FoldTable(dict[int, str]):
    """``str.translate``'s table, filled as characters are met: each character to one
    character (its base letter, in lower case), so that offsets in a folded text are
    those of the original."""

    def __missing__(self, code: int) -> str:
        char = chr(code)
        base = unicodedata.normalize("NFKD", char)[:1] or char
        lower = base.lower()
        folded = lower if len(lower) == 1 else base if len(base) == 1 else char
        self[code] = folded
        return folded


_FOLD = _FoldTable()


def fold(text: str) -> str:
    """``text`` in lower case without accents, each character kept in its place."""
    if text.isascii():
        return text.lower()
    return text.translate(_FOLD)
