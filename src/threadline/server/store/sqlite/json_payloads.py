"""Which of a span's input and output the API shows as the JSON text they are stored as,
found once, as the span is prepared for writing, and kept in the span's row.

The API shows a payload that is JSON within bounds (``rows.json_or_text``) as that
JSON, and the bulk export (``trace_json.py``) then writes the stored text as it is.
Telling whether it is costs orjson a parse of the whole text: ~1 µs of a span's
~15-20 in the export, paid every time it is exported. ``json_payloads`` (migration
0021) holds the answer from the write, found in the worker process that prepares the
batch (``span_batch.py``), off the writer thread, for the payloads stored as text
(shorter than ``payloads.PACK_FROM_BYTES``). Packed ones are not looked at: parsing
kilobytes of chat costs ingest 5-13 µs a span (10-15 % of preparing it), and the export
unpacks them anyway. A bit not set only means "not known": the export checks that
payload as before (packed, written before 0021, or by a version that did not set it),
so a row's bit is never wrong, only sometimes absent.
"""

from __future__ import annotations

import orjson

from threadline.server.store import rows as table_rows

INPUT = 1
OUTPUT = 2

# What ``json.loads`` can take text to be JSON by: its first character (a value, or the
# whitespace before one). Text that starts otherwise is not JSON.
MAY_START_JSON = frozenset('{["-0123456789tfnNI \t\n\r')
# Containers (``{`` and ``[``) a payload may open before its depth needs counting: with
# at most this many, it cannot nest deeper than the API's bound.
_SURELY_SHALLOW = table_rows.MAX_PAYLOAD_DEPTH


def as_stored(text: str) -> bool:
    """Whether the API shows ``text`` as the JSON it is, written as stored. False sends
    it the way of ``rows.json_or_text``."""
    return text[:1] in MAY_START_JSON and json_within_bounds(text)


def json_within_bounds(text: str) -> bool:
    """``as_stored`` for text that starts as JSON may (``MAY_START_JSON``): orjson takes
    it (stricter than ``json``: NaN and lone surrogates refused) and it cannot nest
    deeper than the API's bound."""
    # The containers it opens, at most: ``[`` is looked for first (memchr, at a glance)
    # and counted only when there is one, which JSON objects of text often lack.
    brackets = text.count("{")
    if brackets <= _SURELY_SHALLOW and "[" in text:
        brackets += text.count("[")
    if brackets > _SURELY_SHALLOW:
        return False
    try:
        orjson.loads(text)
    except orjson.JSONDecodeError:
        return False
    return True


def flags(input: str | bytes | None, output: str | bytes | None) -> int:
    """The ``json_payloads`` of a span whose input and output are stored so (packed
    payloads, bytes, are never marked)."""
    return (INPUT if type(input) is str and as_stored(input) else 0) | (
        OUTPUT if type(output) is str and as_stored(output) else 0
    )
