"""A trace deleted while its spans keep arriving, on each store, through the real
server: whatever the order the two met in, the trace left behind rolls up exactly the
spans it keeps, its session the traces it keeps, and every span acknowledged after the
last delete answered is there."""

from __future__ import annotations

import threading
import time
import uuid

import httpx
import pytest

from tests.otlp import BASE_NS, new_span_id, new_trace_id, request, span

pytestmark = pytest.mark.slow


def test_a_trace_deleted_while_its_spans_arrive_keeps_exact_rollups(server_on_each_store):
    server = server_on_each_store
    session_id = f"race-{uuid.uuid4().hex[:8]}"
    attributes = {
        "threadline.session.id": session_id,
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.usage.input_tokens": 1,
    }
    # Another turn of the session, never deleted: the session outlives every delete.
    server.send([span(new_trace_id(), new_span_id(), name="kept", attributes=attributes)])
    trace_id = new_trace_id()
    acknowledged: list[tuple[float, str]] = []  # (sent at, span id)
    stop = threading.Event()

    def send_spans() -> None:
        with httpx.Client(base_url=server.base_url, headers=server.http.headers) as client:
            number = 0
            while not stop.is_set():
                number += 1
                span_id, sent = new_span_id(), time.monotonic()
                one = span(
                    trace_id,
                    span_id,
                    name=f"part-{number}",
                    start_ns=BASE_NS + number * 10**6,
                    attributes=attributes,
                )
                response = client.post(
                    "/v1/traces",
                    content=request([one]).SerializeToString(),
                    headers={"Content-Type": "application/x-protobuf"},
                    timeout=60,
                )
                assert response.status_code in (200, 503), response.text
                if response.status_code == 200:
                    acknowledged.append((sent, span_id))

    sender = threading.Thread(target=send_spans)
    sender.start()
    last_deleted = 0.0
    try:
        for _ in range(8):
            time.sleep(0.2)
            response = server.http.delete(f"/api/v1/traces/{trace_id}")
            assert response.status_code in (200, 404), response.text
            if response.status_code == 200:
                last_deleted = time.monotonic()
        time.sleep(0.3)
    finally:
        stop.set()
        sender.join()
    assert last_deleted, "no delete found the trace"
    # One more span after the race: the trace's rollup goes on from what the race left.
    last = new_span_id()
    server.send(
        [span(trace_id, last, name="after", start_ns=BASE_NS + 10**9, attributes=attributes)]
    )

    trace = server.get(f"/api/v1/traces/{trace_id}")
    kept = {s["span_id"] for s in trace["spans"]}
    assert {s for sent, s in acknowledged if sent > last_deleted} | {last} <= kept
    assert trace["span_count"] == len(kept) == trace["input_tokens"], (
        trace["span_count"],
        len(kept),
        trace["input_tokens"],
    )
    session = server.get(f"/api/v1/sessions/{session_id}")
    assert session["trace_count"] == 2
    assert session["span_count"] == 1 + len(kept) == session["input_tokens"], session
    listed = server.get("/api/v1/traces", session_id=session_id, window="all")["items"]
    assert sorted(t["span_count"] for t in listed) == sorted([1, len(kept)])
    assert "Traceback" not in server.process.log()
