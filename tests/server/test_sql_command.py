"""``threadline sql``: every stored payload readable with ``payload(column)``, packed or
not, with a dictionary or without; and the store is opened read-only."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
import zstandard

from tests.spans import span_record
from threadline.server.model import SpanRecord
from threadline.server.store.sqlite import SQLiteStore
from threadline.server.store.sqlite.driver import sqlite3

WORDS = (
    "the model answered with a summary of the invoice totals and asked which customer"
    " account should be charged next month for the upgraded support plan while the"
    " assistant listed every open ticket by priority owner region and due date"
).split()


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)) + f" #{rng.random()}"


def _spans(rng: random.Random, first: int, count: int) -> list[SpanRecord]:
    spans = []
    for n in range(first, first + count):
        chat = [
            {"role": "system", "content": "You answer billing questions. " + _text(rng, 40)},
            {"role": "user", "content": _text(rng, 120)},
        ]
        spans.append(
            span_record(
                n,
                n,
                1_700_000_000_000_000_000 + n,
                1000,
                name="chat",
                kind="CLIENT",
                input=json.dumps(chat),
                output=_text(rng, 150) if n % 3 else "short",
            )
        )
    return spans


def _threadline(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "threadline.server", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )


@pytest.mark.slow
def test_every_stored_payload_reads_back_as_its_text(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    store = SQLiteStore(data_dir / "threadline.db")
    project = store.create_project("sql").id
    rng = random.Random(5)
    written: list[SpanRecord] = []
    for first in range(0, 600, 50):  # a dictionary is trained part of the way through
        batch = _spans(rng, first, 50)
        store.write_spans(project, batch)
        written += batch
    store.close()

    # Stored three ways: short text, frames without a dictionary, frames with one.
    with sqlite3.connect(data_dir / "threadline.db") as conn:
        stored = [v for (v,) in conn.execute("SELECT output FROM spans")]
    frames = [zstandard.get_frame_parameters(v).dict_id for v in stored if isinstance(v, bytes)]
    assert "short" in stored and 0 in frames and any(frames)

    result = _threadline(
        "sql",
        "SELECT span_id, payload(input) AS input, payload(output) AS output FROM spans",
        "--data-dir",
        str(data_dir),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    rows = {r["span_id"]: r for r in map(json.loads, result.stdout.splitlines())}
    assert len(rows) == len(written)
    for span in written:
        assert rows[span.span_id]["input"] == span.input
        assert rows[span.span_id]["output"] == span.output

    as_csv = _threadline(
        "sql",
        "SELECT count(*) AS n, sum(payload(output) = 'short') AS short FROM spans",
        "--data-dir",
        str(data_dir),
        "--format",
        "csv",
        cwd=tmp_path,
    )
    assert as_csv.stdout.splitlines() == ["n,short", "600,200"]


def test_the_store_is_opened_read_only(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    SQLiteStore(data_dir / "threadline.db").close()
    refused = _threadline("sql", "DELETE FROM projects", "--data-dir", str(data_dir), cwd=tmp_path)
    assert refused.returncode == 1
    assert refused.stderr.startswith("threadline sql: ") and "readonly" in refused.stderr

    missing = _threadline("sql", "SELECT 1", "--data-dir", str(tmp_path / "none"), cwd=tmp_path)
    assert missing.returncode == 1 and "no store at" in missing.stderr
