"""Search inside one session on its page: "3 of 7", and a jump to each match.

The page takes ``find`` (the search, as in the lists) and ``match`` (which one, from 1).
The store lists every matching span in the session's order (``find_in_session``); the
page shows the turns around the current match, marks that turn, and links to the
previous and next match (around the ends). Each jump is a URL, so a match can be shared
and the browser's back button steps back through them.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from threadline.server.model import SessionMatch
from threadline.server.web.highlights import marked_words
from threadline.server.web.render import session_url

# A session's matches listed at most: a word in every span of a long session would
# otherwise make a page of thousands.
MAX_MATCHES = 1000


@dataclass
class Find:
    text: str
    matches: list[SessionMatch]
    current: int  # from 1; 0 when nothing matched

    @property
    def match(self) -> SessionMatch | None:
        return self.matches[self.current - 1] if self.current else None

    @property
    def marks(self) -> list[str]:
        return marked_words(self.match.snippet) if self.match else []

    def first_turn(self, turns_per_page: int) -> int | None:
        """The first turn of the page that shows the current match."""
        if self.match is None:
            return None
        return (self.match.turn - 1) // turns_per_page * turns_per_page + 1

    def url(self, session_id: str, number: int, turns_per_page: int) -> str:
        """The page of match ``number``, scrolled to its turn."""
        target = self.matches[number - 1]
        first = (target.turn - 1) // turns_per_page * turns_per_page + 1
        base = session_url(session_id)
        glue = "&" if "?" in base else "?"
        query = urlencode({"turn": first, "find": self.text, "match": number})
        return f"{base}{glue}{query}#turn-{target.turn}"

    def neighbours(self, session_id: str, turns_per_page: int) -> tuple[str, str] | None:
        """The URLs of the previous and the next match, around the ends."""
        if not self.matches:
            return None
        count = len(self.matches)
        previous = (self.current - 2) % count + 1
        following = self.current % count + 1
        return (
            self.url(session_id, previous, turns_per_page),
            self.url(session_id, following, turns_per_page),
        )


def find(matches: list[SessionMatch], text: str, match: int) -> Find:
    shown = matches[:MAX_MATCHES]
    current = min(max(match, 1), len(shown)) if shown else 0
    return Find(text=text, matches=shown, current=current)
