"""Two Threadline server processes on one ClickHouse store (the chDB endpoint), written
to at the same time: the spans of each trace are split between the servers, some
requests are sent to both, and every session's and trace's totals read back through
either server's API equal what was sent. The servers keep nothing on their local disk."""

from __future__ import annotations

import random
import threading
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests import otlp
from tests.conftest import ServerProcess, new_project_key, start_server, stop_server
from tests.store.chdb_http import ChdbHttpServer, database_name, own_database_url, shared_server

pytestmark = [pytest.mark.clickhouse, pytest.mark.slow]

SESSIONS = 6
TRACES_PER_SESSION = 4
SPANS_PER_TRACE = 6


def workload(rng: random.Random) -> tuple[list[list], dict[str, dict], dict[str, dict]]:
    """Requests (lists of OTLP spans), and the totals each trace and session must show."""
    requests: list[list] = []
    traces: dict[str, dict] = {}
    sessions: dict[str, dict] = defaultdict(lambda: defaultdict(float))
    for s in range(SESSIONS):
        session_id = f"session-{s}"
        for t in range(TRACES_PER_SESSION):
            trace_id = otlp.new_trace_id(rng)
            root = otlp.new_span_id(rng)
            start = otlp.BASE_NS + (s * 100 + t) * 1_000_000_000
            spans, totals = [], defaultdict(float)
            for i in range(SPANS_PER_TRACE):
                tokens = rng.randrange(1, 300)
                cost = rng.randrange(1, 64) / 64  # binary fractions: exact in any order
                error = rng.random() < 0.2
                spans.append(
                    otlp.span(
                        trace_id,
                        root if i == 0 else otlp.new_span_id(rng),
                        parent=None if i == 0 else root,
                        name=f"step-{i}",
                        start_ns=start + i * 1000,
                        end_ns=start + i * 1000 + 500_000,
                        error=error,
                        attributes={
                            # The session id rides on one span only, in a later request;
                            # the user's on another (one of two users, three sessions each).
                            **({"threadline.session.id": session_id} if i == 3 else {}),
                            **({"user.id": user_of(session_id)} if i == 1 else {}),
                            "gen_ai.usage.input_tokens": tokens,
                            "gen_ai.usage.output_tokens": 1,
                            "gen_ai.usage.cost": cost,
                        },
                    )
                )
                totals["input_tokens"] += tokens
                totals["output_tokens"] += 1
                totals["cost_usd"] += cost
                totals["error_count"] += error
            totals["span_count"] = SPANS_PER_TRACE
            traces[trace_id] = {**totals, "session_id": session_id}
            session = sessions[session_id]
            for key in ("input_tokens", "output_tokens", "cost_usd", "span_count"):
                session[key] += totals[key]
            session["error_count"] += totals["error_count"] > 0
            session["trace_count"] += 1
            # Each trace in three requests of two spans, in an order of their own.
            chunks = [spans[i : i + 2] for i in range(0, SPANS_PER_TRACE, 2)]
            rng.shuffle(chunks)
            requests += chunks
    rng.shuffle(requests)
    return requests, traces, sessions


def user_of(session_id: str) -> str:
    """The user whose traces make up a session of ``workload``."""
    return f"user-{int(session_id.rsplit('-', 1)[1]) % 2}"


def send_to_servers(
    requests: list[list], key: str, route: Callable[[int], list[ServerProcess]]
) -> list[int]:
    """Send each request (its spans as one OTLP export) to every server ``route(its
    index)`` names, six requests at a time; the status codes of all the answers."""
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/x-protobuf"}
    local = threading.local()

    def send(job: tuple[int, list]) -> list[int]:
        index, spans = job
        client = getattr(local, "client", None) or httpx.Client(timeout=60)
        local.client = client
        body = otlp.request(spans).SerializeToString()
        return [
            client.post(s.base_url + "/v1/traces", content=body, headers=headers).status_code
            for s in route(index)
        ]

    with ThreadPoolExecutor(max_workers=6) as pool:
        return [code for codes in pool.map(send, enumerate(requests)) for code in codes]


def test_two_servers_on_one_clickhouse_store(tmp_path: Path):
    url = own_database_url(tmp_path)
    key = new_project_key(url, "shared")  # in ClickHouse, where every server reads it
    servers = [
        start_server(
            tmp_path / f"data-{i}", tmp_path / f"server-{i}.log", "--store", url, "--grpc-port", "0"
        )
        for i in range(2)
    ]
    try:
        requests, traces, sessions = workload(random.Random(5))
        # Alternate servers; every fourth request also goes to the other one (a retry
        # that reached a second server).
        statuses = send_to_servers(
            requests,
            key,
            lambda i: [servers[i % 2]] + ([servers[(i + 1) % 2]] if i % 4 == 0 else []),
        )
        assert set(statuses) == {200}, statuses
        # Every answered export is committed: no wait before reading.

        for server in servers:
            with httpx.Client(
                base_url=server.base_url, timeout=30, headers={"Authorization": f"Bearer {key}"}
            ) as api:
                listed = api.get("/api/v1/sessions", params={"limit": 100, "window": "all"}).json()[
                    "items"
                ]
                assert sorted(s["session_id"] for s in listed) == sorted(sessions)
                for session in listed:
                    expected = sessions[session["session_id"]]
                    got = {k: session[k] for k in expected}
                    assert got == expected, session["session_id"]
                for trace_id, expected in traces.items():
                    trace = api.get(f"/api/v1/traces/{trace_id}").json()
                    assert {k: trace[k] for k in expected} == expected, trace_id
                    assert len({s["span_id"] for s in trace["spans"]}) == len(trace["spans"])

        # The web UI's pages on the ClickHouse store, signed in through the other server.
        with httpx.Client(base_url=servers[1].base_url, timeout=30, follow_redirects=True) as web:
            signed_in = web.post(
                "/login",
                content=f"key={key}",
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
            assert signed_in.status_code == 200, signed_in.text
            session_id, trace_id = min(sessions), min(traces)
            for path in (
                "/",
                "/traces",
                "/sessions",
                "/sessions?sort=cost&status=error",
                "/users",
                f"/sessions/{session_id}",
                f"/traces/{trace_id}",
            ):
                page = web.get(path)
                assert page.status_code == 200, (path, page.status_code)
                assert page.url.path != "/login", path  # signed in
            assert session_id in web.get("/sessions", params={"range": "all"}).text
    finally:
        for server in servers:
            stop_server(server)
    # Stateless: no intake queue, no secret, nothing in --data-dir.
    for i in range(2):
        data_dir = tmp_path / f"data-{i}"
        assert not data_dir.exists() or not any(data_dir.iterdir()), list(data_dir.iterdir())


def test_clickhouse_out_of_reach_means_503_and_exporters_retry(tmp_path: Path):
    """With ClickHouse unreachable, an export gets 503 with Retry-After (which OTLP
    exporters retry), not a 500 (which they drop); once it is back, the retry lands."""
    engine = shared_server().engine
    door = ChdbHttpServer(engine=engine).start()  # a second door to the same engine
    port, url = door.port, door.url(database_name(tmp_path.name))
    key = new_project_key(url, "p")
    server = start_server(
        tmp_path / "data", tmp_path / "server.log", "--store", url, "--grpc-port", "0"
    )
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/x-protobuf"}
    trace_id = otlp.new_trace_id()
    body = otlp.request(
        [otlp.span(trace_id, otlp.new_span_id(), attributes={"threadline.session.id": "kept"})]
    )
    try:
        door.stop()
        refused = httpx.post(
            server.base_url + "/v1/traces",
            content=body.SerializeToString(),
            headers=headers,
            timeout=60,
        )
        assert refused.status_code == 503 and refused.headers["Retry-After"]
        assert "storage unavailable" in refused.json()["error"]
        door = ChdbHttpServer(port=port, engine=engine).start()
        retried = httpx.post(
            server.base_url + "/v1/traces",
            content=body.SerializeToString(),
            headers=headers,
            timeout=60,
        )
        assert retried.status_code == 200, retried.text
        session = httpx.get(
            server.base_url + "/api/v1/sessions/kept",
            timeout=30,
            headers={"Authorization": f"Bearer {key}"},
        ).json()
        assert session["trace_count"] == 1 and session["traces"][0]["trace_id"] == trace_id
    finally:
        stop_server(server)
        door.stop()
