"""Under overload the server refuses with 503 + Retry-After instead of queueing, and
every export it acknowledged is stored exactly once."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import pytest

from tests.conftest import start_server, stop_server
from tests.otlp import large_traces

pytestmark = pytest.mark.slow


def test_overload_gets_503_with_retry_after_and_loses_nothing(tmp_path):
    server = start_server(tmp_path / "data", tmp_path / "log.txt", "--max-pending-exports", "1")
    try:
        key = server.new_key("load")
        payload = "x" * 4000
        bodies = [
            (trace_id, body.SerializeToString())
            for trace_id, body in large_traces(
                24, 200, {"threadline.session.id": "load", "threadline.span.input": payload}
            )
        ]
        statuses: list[int] = []
        acknowledged: list[str] = []
        retry_after: set[str] = set()
        lock = threading.Lock()

        def send(trace_id: str, body: bytes) -> None:
            with httpx.Client(timeout=60) as client:
                response = client.post(
                    server.base_url + "/v1/traces",
                    content=body,
                    headers={
                        "Authorization": f"Bearer {key}",
                        "Content-Type": "application/x-protobuf",
                    },
                )
            with lock:
                statuses.append(response.status_code)
                if response.status_code == 200:
                    acknowledged.append(trace_id)
                else:
                    retry_after.add(response.headers.get("retry-after", ""))

        threads = [threading.Thread(target=send, args=item) for item in bodies]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        # Refusing instead of queueing keeps memory bounded: 24 bodies of ~1 MB each
        # were sent at once, and at most one was held at a time.
        status = Path(f"/proc/{server.process.pid}/status").read_text()
        peak_kb = int(
            next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))
        )
        assert peak_kb < 400 * 1024, peak_kb
        assert set(statuses) <= {200, 503}
        assert 503 in statuses and 200 in statuses, statuses
        assert retry_after == {"1"}
        api = httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {key}"})
        for trace_id in acknowledged:
            assert api.get(f"/api/v1/traces/{trace_id}").json()["span_count"] == 200
        assert api.get("/api/v1/sessions/load").json()["trace_count"] == len(acknowledged)
    finally:
        stop_server(server)
