"""A search snippet as HTML: its text escaped, each match in a ``<mark>``."""

from __future__ import annotations

from markupsafe import Markup, escape

from threadline.server.model import Snippet


def snippet_html(snippet: Snippet | None) -> Markup:
    if snippet is None:
        return Markup("")
    parts: list[str] = []
    at = 0
    for start, end in snippet.highlights:
        parts.append(str(escape(snippet.text[at:start])))
        parts.append(f"<mark>{escape(snippet.text[start:end])}</mark>")
        at = end
    parts.append(str(escape(snippet.text[at:])))
    return Markup("".join(parts))


def marked_words(snippet: Snippet) -> list[str]:
    """The matched words of a snippet, as found (for marking them on the page)."""
    return sorted({snippet.text[start:end] for start, end in snippet.highlights})
