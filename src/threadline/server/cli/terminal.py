"""What the CLI prints of stored text, made safe to show on a terminal.

Spans keep every character a client sent, control characters too: an escape sequence
in a span's input would move the cursor, repaint the screen or retitle the window of
whoever prints it (``threadline export`` or ``sql`` into a terminal), and a
bidirectional override or isolate (U+202A–U+202E, U+2066–U+2069) would reorder what a
terminal that lays out right-to-left text shows after it (``"\\u202egnp.exe"`` reads as
``exe.png``). Shown on a terminal, each of these but tab and the line ends is written as
a visible ``\\u001b`` or ``\\u202e``. That is also how JSON writes it, so a JSON line
stays the same JSON value (JSON escapes the C0 controls already, not DEL, the C1
controls or the bidirectional ones). Into a file or a pipe, the output is exact.
"""

from __future__ import annotations

import codecs
import re
from typing import IO

# The bidirectional embeddings, overrides and isolates (not the marks: U+200E, U+200F).
_BIDI = "\u202a-\u202e\u2066-\u2069"
# C0 controls but tab and newline, a carriage return not ending a line, DEL, C1, bidi.
_SHOWN_ESCAPED = re.compile(f"\r(?!\n)|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f{_BIDI}]")
# In a field of one line (a table's cell, a message): tab and line ends as well.
_SHOWN_ESCAPED_IN_A_LINE = re.compile(f"[\x00-\x1f\x7f-\x9f{_BIDI}]")


def _escape(found: re.Match[str]) -> str:
    return f"\\u{ord(found[0]):04x}"


def visible(text: str) -> str:
    """``text`` as a terminal shows it without acting on it: every control character
    but tab and line ends (``\\n``, ``\\r\\n``), and every bidirectional override,
    written as ``\\u00XX`` (``\\u202e``)."""
    return _SHOWN_ESCAPED.sub(_escape, text)


def visible_in_a_line(text: str) -> str:
    """``text`` kept to its line (a cell of a tab-separated table): every control
    character, tab and line ends too, and every bidirectional override, written as
    ``\\u00XX`` (``\\u202e``)."""
    return _SHOWN_ESCAPED_IN_A_LINE.sub(_escape, text)


class VisibleWriter:
    """UTF-8 bytes as they arrive (an export's chunks), written to ``out`` as
    ``visible`` shows them: a character or a ``\\r\\n`` split between two chunks is
    held until the next. ``close`` writes what is held (it does not close ``out``)."""

    def __init__(self, out: IO[bytes]) -> None:
        self._out = out
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._held = ""

    def write(self, chunk: bytes) -> None:
        text = self._held + self._decoder.decode(chunk)
        text, self._held = (text[:-1], "\r") if text.endswith("\r") else (text, "")
        self._out.write(visible(text).encode())

    def close(self) -> None:
        self._out.write(visible(self._held + self._decoder.decode(b"", final=True)).encode())
        self._held = ""


class VisibleText:
    """Text written to ``out`` as ``visible`` shows it, each write whole (a CSV
    writer's record, a JSON line): a ``\\r\\n`` is never split between two."""

    def __init__(self, out: IO[str]) -> None:
        self._out = out

    def write(self, text: str) -> int:
        return self._out.write(visible(text))
