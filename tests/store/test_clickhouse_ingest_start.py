"""A ClickHouse server's first exports: the job of each knows the project's session
inference setting (read off the event loop when the server does not know it, as at a
start), so the worker names the exports' sessions and makes their rows, and the writer
only sends them (``ingest/pipeline.py``, ``Store.span_preparer``)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests import otlp
from tests.conftest import start_server, stop_server
from tests.store.chdb_http import database_name, shared_server
from threadline.server.store import open_store

pytestmark = pytest.mark.clickhouse

EXPORTS = 8
TRACES_PER_EXPORT = 3


def _export(index: int) -> bytes:
    """Traces with a thread id and no session id: the worker can name their session only
    if its job knows that the project infers sessions."""
    spans = []
    for t in range(TRACES_PER_EXPORT):
        trace_id = otlp.new_trace_id()
        root = otlp.new_span_id()
        start = otlp.BASE_NS + (index * TRACES_PER_EXPORT + t) * 1_000_000_000
        for i in range(2):
            spans.append(
                otlp.span(
                    trace_id,
                    root if i == 0 else otlp.new_span_id(),
                    parent=None if i == 0 else root,
                    name=f"step-{i}",
                    start_ns=start + i * 1000,
                    end_ns=start + i * 1000 + 500_000,
                    attributes={"langgraph.thread_id": f"thread-{index % 2}"},
                )
            )
    return otlp.request(spans).SerializeToString()


def _send(base_url: str, headers: dict[str, str], index: int) -> int:
    body = _export(index)
    for _ in range(100):
        answer = httpx.post(base_url + "/v1/traces", content=body, headers=headers, timeout=60)
        if answer.status_code != 503:
            break
        time.sleep(0.05)
    return answer.status_code


@pytest.mark.parametrize("enabled", [True, False])
def test_a_fresh_servers_first_burst_is_prepared_in_the_worker(
    tmp_path: Path, enabled: bool
) -> None:
    url = shared_server().url(database_name(tmp_path.name))
    store = open_store(url)
    try:
        project_id = store.create_project("start").id
        store.set_session_inference(project_id, enabled)
        key = store.create_key(project_id)
    finally:
        store.close()
    server = start_server(tmp_path / "data", tmp_path / "server.log", "--store", url)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/x-protobuf"}
    try:
        # All at once, as exporters meet a server that has read nothing yet (each
        # retrying a 503, as an OTLP exporter does: a project holds at most a share of
        # the exports in hand).
        with ThreadPoolExecutor(EXPORTS) as senders:
            statuses = list(
                senders.map(lambda i: _send(server.base_url, headers, i), range(EXPORTS))
            )
        assert statuses == [200] * EXPORTS
        health = httpx.get(server.base_url + "/healthz").json()
        assert health["exports_written"] == EXPORTS, health
        assert health["exports_prepared_by_writer"] == 0, health
        sessions = httpx.get(
            server.base_url + "/api/v1/sessions",
            params={"window": "all"},
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        ).json()["items"]
        if enabled:
            assert (
                sorted(s["trace_count"] for s in sessions) == [EXPORTS // 2 * TRACES_PER_EXPORT] * 2
            )
            assert all(s["session_id"].startswith("inferred-t-") for s in sessions)
        else:
            assert sessions == []
    finally:
        stop_server(server)
