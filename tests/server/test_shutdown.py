"""SIGTERM: the server stops accepting, finishes what it acknowledged, closes the store."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from tests.conftest import start_server, stop_server
from tests.otlp import large_traces

pytestmark = pytest.mark.slow


def test_sigterm_finishes_in_flight_exports_and_closes_the_store(tmp_path):
    server = start_server(tmp_path / "data", tmp_path / "log.txt")
    key = server.new_key("shutdown")
    bodies = [
        (trace_id, body.SerializeToString())
        for trace_id, body in large_traces(12, 300, {"threadline.span.input": "x" * 4000})
    ]
    outcomes: dict[str, object] = {}

    def send(trace_id: str, body: bytes) -> None:
        try:
            response = httpx.post(
                server.base_url + "/v1/traces",
                content=body,
                timeout=30,
                headers={
                    "Authorization": f"Bearer {key}",
                    "Content-Type": "application/x-protobuf",
                },
            )
            outcomes[trace_id] = response.status_code
        except httpx.TransportError as exc:  # refused or cut: not acknowledged
            outcomes[trace_id] = type(exc).__name__

    threads = [threading.Thread(target=send, args=item) for item in bodies]
    for thread in threads:
        thread.start()
    while not outcomes:  # some exports done, others in flight
        time.sleep(0.005)
    started = time.monotonic()
    server.process.terminate()
    server.process.wait(timeout=30)
    stopped_in = time.monotonic() - started
    for thread in threads:
        thread.join()

    assert stopped_in < 20, outcomes
    assert all(o in (200, 503) or isinstance(o, str) for o in outcomes.values()), outcomes
    assert "Traceback" not in server.log()
    # The store was closed cleanly: its write-ahead log was folded in and removed.
    assert not (tmp_path / "data" / "threadline.db-wal").exists()

    restarted = start_server(tmp_path / "data", tmp_path / "log2.txt")
    try:
        api = httpx.Client(base_url=restarted.base_url, headers={"Authorization": f"Bearer {key}"})
        acknowledged = [t for t, o in outcomes.items() if o == 200]
        assert acknowledged
        for trace_id in acknowledged:
            assert api.get(f"/api/v1/traces/{trace_id}").json()["span_count"] == 300
    finally:
        stop_server(restarted)
