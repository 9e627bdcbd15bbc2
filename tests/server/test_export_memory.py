"""A bulk export of 100,000 sessions streams: the server's memory stays flat while it
sends far more bytes than it grows by, and every session arrives once."""

from __future__ import annotations

import csv
import io
import json
import threading
from pathlib import Path

import httpx
import pytest

from tests.conftest import start_server, stop_server
from tests.spans import T0, span_record
from threadline.server.model import SpanRecord
from threadline.server.store.sqlite import SQLiteStore

pytestmark = pytest.mark.slow

SESSIONS = 100_000
# What the server may grow by while exporting: a page of rows, a chunk, the allocator's
# slack. The export itself is more than twice as large (checked below).
GROWTH_BOUND_MB = 30


def _fill(path: Path) -> None:
    store = SQLiteStore(path)
    project = store.create_project("default").id
    batch: list[SpanRecord] = []
    for s in range(SESSIONS):
        start = T0 + s * 10**9
        batch.append(
            span_record(
                s + 1,
                s + 1,
                start,
                10**8,
                name="turn",
                kind="SERVER",
                input=f"question {s} " + "q" * 300,
                output=f"answer {s} " + "a" * 300,
                session_id=f"s-{s:06d}",
                user_id=f"u-{s % 50}",
            )
        )
        if len(batch) == 5000:
            store.write_spans(project, batch)
            batch = []
    store.write_spans(project, batch)
    store.close()


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _export(base_url: str, key: str, pid: int, fmt: str) -> tuple[bytes, float, float]:
    """The whole export, the server's RSS before it and its peak during it (sampled
    every 20 ms)."""
    before = peak = _rss_mb(pid)
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.02):
            peak = max(peak, _rss_mb(pid))

    sampler = threading.Thread(target=sample)
    sampler.start()
    body = bytearray()
    try:
        with httpx.stream(
            "GET",
            base_url + "/api/v1/export/sessions",
            params={"format": fmt, "window": "all"},
            headers={"Authorization": f"Bearer {key}"},
            timeout=300,
        ) as response:
            assert response.status_code == 200
            for chunk in response.iter_bytes():
                body += chunk
    finally:
        done.set()
        sampler.join()
    return bytes(body), before, max(peak, _rss_mb(pid))


def test_an_export_of_100k_sessions_keeps_the_servers_memory_flat(tmp_path: Path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    _fill(data_dir / "threadline.db")
    server = start_server(data_dir, tmp_path / "server.log", "--grpc-port", "0")
    try:
        key = server.new_key("default")
        # Warm up the export's code paths on a few rows first.
        warm = httpx.get(
            server.base_url + "/api/v1/export/sessions",
            params={"q": "s-00000", "window": "all"},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert warm.status_code == 200 and len(warm.text.splitlines()) == 10
        pid = server.process.pid
        for fmt in ("csv", "jsonl"):
            body, before, peak = _export(server.base_url, key, pid, fmt)
            growth = peak - before
            print(f"{fmt}: {len(body) / 1e6:.0f} MB exported, RSS {before:.0f} -> {peak:.0f} MB")
            assert len(body) > 2 * GROWTH_BOUND_MB * 1e6
            assert growth < GROWTH_BOUND_MB, (fmt, before, peak)
            if fmt == "csv":
                rows = list(csv.DictReader(io.StringIO(body.decode(), newline="")))
                ids = [r["session_id"] for r in rows]
                assert rows[0]["first_input"].startswith(f"question {SESSIONS - 1} ")
            else:
                ids = [json.loads(line)["session_id"] for line in body.splitlines()]
            # Every session once, latest activity first.
            assert ids == [f"s-{s:06d}" for s in reversed(range(SESSIONS))]
    finally:
        stop_server(server)
