"""A trace's packed parts (``trace_parts_packed``, migration 0016) merged into one row.

Each part is the aggregates of ``trace_parts_by_id`` for one export (or for what was
stored when the table was made) as a JSON array: ``rollup`` holds (start, end, span ids,
failed span ids, root, first session, first user, first input, last output, amounts),
``labels`` (tag entries, metadata entries). ClickHouse unites a trace's strings; here
they are merged by the same functions ``trace_parts_by_id`` merges its columns with
(min, max, union of arrays), which are idempotent and order-free, so the result is what
that table's merge gives whatever parts arrived, in whatever order, how many times.

Tuples come back from JSON as lists, with None for a NULL. The least tuple is taken
with None after every value: ClickHouse's ``min`` of such tuples prefers the value too
(they can differ only in a NULL for two copies of one span that disagree).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

# Positions in a ``rollup`` part.
_START, _END, _SPANS, _ERRORS = 0, 1, 2, 3
_PICKS = range(4, 9)  # root, first session, first user, first input, last output
_AMOUNTS = 9
# The integer positions of each pick, of an amount and of a tag or metadata entry: a
# ClickHouse set to quote 64-bit integers in JSON (output_format_json_quote_64bit_integers)
# writes them as strings, which would then sort as text.
_PICK_NUMBERS = ((0, 1, 7, 9), (0, 1), (0, 1), (0, 1), (0, 1, 2))
_AMOUNT_NUMBERS = (1, 2, 3, 4)
_ENTRY_NUMBERS = ((0, 2), (0,))


def merged(rollups: Sequence[str], labels: Sequence[str]) -> tuple[Any, ...]:
    """(start, end, span count, error count, root, first session, first user, first
    input, last output, amounts, tag entries, metadata entries) of a trace's parts, each
    pick and entry a tuple, as ``trace_parts_by_id``'s merged columns give them. The
    amounts and entries are lists in no particular order, as ClickHouse's array unions
    are: their readers sort them."""
    parts = [json.loads(part) for part in rollups]
    spans: set[str] = set()
    errors: set[str] = set()
    amounts: set[tuple[Any, ...]] = set()
    for part in parts:
        spans.update(part[_SPANS])
        errors.update(part[_ERRORS])
        amounts.update(_numbered(amount, _AMOUNT_NUMBERS) for amount in part[_AMOUNTS])
    picks = [
        # (Most traces come in one export: its picks are the least ones, without the
        # comparisons, which took a third or more of finishing a page's traces.)
        _numbered(parts[0][i], numbers)
        if len(parts) == 1
        else min((_numbered(part[i], numbers) for part in parts), key=_null_last)
        for i, numbers in zip(_PICKS, _PICK_NUMBERS, strict=True)
    ]
    entries: tuple[set[tuple[Any, ...]], set[tuple[Any, ...]]] = (set(), set())
    for part in (json.loads(label) for label in labels):
        for found, listed, numbers in zip(entries, part, _ENTRY_NUMBERS, strict=True):
            found.update(_numbered(entry, numbers) for entry in listed)
    return (
        min(int(part[_START]) for part in parts),
        max(int(part[_END]) for part in parts),
        len(spans),
        len(errors),
        *picks,
        list(amounts),
        list(entries[0]),
        list(entries[1]),
    )


def _numbered(values: Sequence[Any], numbers: Sequence[int]) -> tuple[Any, ...]:
    """``values`` as a tuple, with the integers at ``numbers`` made integers again."""
    listed = list(values)
    for position in numbers:
        listed[position] = int(listed[position])
    return tuple(listed)


def _null_last(values: tuple[Any, ...]) -> tuple[tuple[bool, Any], ...]:
    return tuple((value is None, value if value is not None else 0) for value in values)
