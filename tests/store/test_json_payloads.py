"""Which payloads the SQLite store marks, as it writes a span, as JSON the export may
pass through as stored (``json_payloads``, migration 0021): those stored as text that
the API shows as the JSON they are, and an export reads the same whether the marks
are there or not (spans written before 0021 have none)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.store.test_contract import record
from tests.store.test_export_contract import PAYLOADS as EXPORT_PAYLOADS
from threadline.server.store import rows as table_rows
from threadline.server.store.sqlite import SQLiteStore
from threadline.server.store.sqlite.driver import sqlite3

# (payload, marked: stored as text and shown by the API as the JSON it is)
PAYLOADS = [
    ('{"messages": [{"role": "user", "content": "héllo \\u00e9 ✓"}]}', True),
    ("  [1, 2.50, 1E5, 12345678901234567890123]  ", True),
    ("42", True),
    ('""', True),
    ("null", True),
    ("-0.0", True),
    # Packed (zstd): JSON, but not looked at as it is written (the export unpacks it).
    (json.dumps({"k": "v" * 2000}), False),
    (json.dumps({"rows": [[i] for i in range(40)]}), True),  # > 64 brackets, shallow
    ("plain text, not JSON", False),
    ("", False),
    ("x" * 3000, False),  # packed
    ("[" * 70 + "]" * 70, False),  # deeper than the API's bound
    ('{"nan": NaN}', False),  # json takes it; the API writes null for NaN
    ('{"lone": "\\ud800"}', False),
    ("{not json", False),
]


def _store(tmp_path: Path) -> tuple[SQLiteStore, int]:
    store = SQLiteStore(tmp_path / "t.db")
    return store, store.create_project("p").id


def _marks(path: Path) -> dict[int, int]:
    """Each span's ``json_payloads``, by its span id as a number."""
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT span_id, json_payloads FROM spans").fetchall()
    finally:
        conn.close()
    return {int(span_id, 16): mark for span_id, mark in rows}


def test_a_payload_is_marked_when_the_api_shows_it_as_its_json(tmp_path: Path):
    store, project = _store(tmp_path)
    spans = [
        record(1, n, start=n, input=text, output=PAYLOADS[-1 - n][0])
        for n, (text, _) in enumerate(PAYLOADS)
    ]
    spans.append(record(1, len(PAYLOADS), start=99))  # no payloads
    store.write_spans(project, spans)
    store.close()
    marks = _marks(tmp_path / "t.db")
    for n, (text, as_json) in enumerate(PAYLOADS):
        output_as_json = PAYLOADS[-1 - n][1]
        assert marks[n] == (1 if as_json else 0) | (2 if output_as_json else 0), text
        if as_json:  # what the API makes of it: the JSON it is
            assert table_rows.json_or_text(text) == json.loads(text), text
    assert marks[len(PAYLOADS)] == 0


@pytest.mark.parametrize("payloads", [EXPORT_PAYLOADS, [p for p, _ in PAYLOADS]])
def test_the_export_is_the_same_without_the_marks(tmp_path: Path, payloads: list[str]):
    store, project = _store(tmp_path)
    spans = [
        record(n // 3 + 1, n + 1, start=n, session=f"s{n % 2}", input=text, output=text[::-1])
        for n, text in enumerate(payloads)
    ]
    store.write_spans(project, spans)
    trace_ids = sorted({s.trace_id for s in spans})
    marked = store.trace_details_json(project, trace_ids)
    store.close()
    conn = sqlite3.connect(tmp_path / "t.db")
    # As a span written before migration 0021 (or by a version that did not mark).
    assert conn.execute("UPDATE spans SET json_payloads = 0").rowcount == len(spans)
    conn.commit()
    conn.close()
    store = SQLiteStore(tmp_path / "t.db")
    try:
        assert store.trace_details_json(project, trace_ids) == marked
    finally:
        store.close()
