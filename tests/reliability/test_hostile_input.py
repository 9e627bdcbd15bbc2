"""Requests built to cost the server work or to learn what it should not tell: exports
past the work bounds, huge exports that would starve others, multi-member gzip, query
parameters past what the stores hold, forged forms, idle waiters, and the live feed's
position. Each through the real server (HTTP, and gRPC where it applies)."""

from __future__ import annotations

import gzip
import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import httpx
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

from tests.conftest import ProjectClient, ServerProcess, start_server, stop_server
from tests.otlp import new_span_id, new_trace_id, request, span
from threadline.server.store.sqlite.driver import sqlite3

pytestmark = pytest.mark.slow

COOKIE = "threadline_session"


@pytest.fixture(scope="module")
def bounded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("bounded")
    process = start_server(
        root / "data",
        root / "log.txt",
        "--max-spans-per-export",
        "100",
        "--max-span-attributes",
        "50",
    )
    yield process
    stop_server(process)


def _api(process: ServerProcess, key: str) -> httpx.Client:
    return httpx.Client(
        base_url=process.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30
    )


def _post(process: ServerProcess, key: str, body: bytes, **headers: str) -> httpx.Response:
    return httpx.post(
        process.base_url + "/v1/traces",
        content=body,
        headers={
            "Authorization": f"Bearer {key}",
            "Content-Type": "application/x-protobuf",
            **headers,
        },
        timeout=60,
    )


@pytest.mark.parametrize(
    ("spans", "attributes", "limit"),
    [(101, 1, "max_spans_per_export"), (1, 51, "max_span_attributes")],
)
def test_an_export_past_the_work_bounds_is_refused_naming_the_limit(
    bounded: ServerProcess, spans: int, attributes: int, limit: str
) -> None:
    key = bounded.new_key(f"bounds-{limit}")
    trace_id = new_trace_id()
    attrs = {f"a{i}": i for i in range(attributes)}
    body = request([span(trace_id, new_span_id(), attributes=attrs) for _ in range(spans)])
    response = _post(bounded, key, body.SerializeToString())
    assert response.status_code == 413, response.text
    assert limit in response.json()["error"]
    assert bounded.grpc_address is not None
    with grpc.insecure_channel(bounded.grpc_address) as channel:
        stub = trace_service_pb2_grpc.TraceServiceStub(channel)
        with pytest.raises(grpc.RpcError) as failure:
            stub.Export(body, metadata=[("authorization", f"Bearer {key}")], timeout=30)
    assert failure.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert limit in (failure.value.details() or "")
    with _api(bounded, key) as api:
        assert api.get(f"/api/v1/traces/{trace_id}").status_code == 404


def test_a_huge_export_is_written_in_pieces_and_others_take_turns(tmp_path: Path) -> None:
    """One export of 20,000 spans is written a piece at a time: another project's small
    export, sent once the first piece is stored, is queryable before the huge one is
    answered. (Sent after a fixed pause instead, it raced a fast machine that had
    written every piece by then.)"""
    process = start_server(tmp_path / "data", tmp_path / "log.txt")
    try:
        big_key, small_key = process.new_key("big"), process.new_key("small")
        big = request([span(new_trace_id(), new_span_id()) for _ in range(20_000)])
        big_body = big.SerializeToString()
        small_trace = new_trace_id()
        small_body = request([span(small_trace, new_span_id())]).SerializeToString()
        answered: dict[str, float] = {}

        def send_big() -> None:
            assert _post(process, big_key, big_body).status_code == 200
            answered["big"] = time.monotonic()

        sender = threading.Thread(target=send_big)
        sender.start()
        with _api(process, big_key) as big_api:
            deadline = time.monotonic() + 60
            newest = {"limit": 1, "window": "all"}
            while not big_api.get("/api/v1/traces", params=newest).json()["items"]:
                assert time.monotonic() < deadline, "no piece of the huge export was stored"
                time.sleep(0.005)
        assert "big" not in answered, "the huge export was answered before its first piece"
        assert _post(process, small_key, small_body).status_code == 200
        with _api(process, small_key) as api:
            while api.get(f"/api/v1/traces/{small_trace}").status_code != 200:
                time.sleep(0.02)
            found = time.monotonic()
        sender.join()
        assert found < answered["big"], answered["big"] - found
    finally:
        stop_server(process)


def test_every_member_of_a_multi_member_gzip_body_is_stored(server: ProjectClient) -> None:
    first, second = new_trace_id(), new_trace_id()
    body = gzip.compress(request([span(first, new_span_id())]).SerializeToString()) + gzip.compress(
        request([span(second, new_span_id())]).SerializeToString()
    )
    response = server.export(body, **{"Content-Encoding": "gzip"})
    assert response.status_code == 200, response.text
    server.get(f"/api/v1/traces/{first}")
    server.get(f"/api/v1/traces/{second}")


def test_a_body_of_many_gzip_members_costs_time_in_its_size_not_its_square(
    server: ProjectClient,
) -> None:
    """786,432 empty members, 15 MiB, then a member with a span and zero padding. Each
    member's end used to copy the whole rest of the body, so this body cost a worker
    minutes of CPU (quadratic in the members) while it held a place of work; now a few
    seconds. The client's 120 s wait is far past either arm's spread, not a speed goal."""
    empty = gzip.compress(b"", 1)
    trace_id = new_trace_id()
    last = gzip.compress(request([span(trace_id, new_span_id())]).SerializeToString())
    body = empty * ((15 << 20) // len(empty)) + last + b"\0" * 64
    response = server.http.post(
        "/v1/traces",
        content=body,
        headers={"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"},
        timeout=120,
    )
    assert response.status_code == 200, response.text
    server.get(f"/api/v1/traces/{trace_id}")


def test_a_gzip_body_with_trailing_garbage_is_refused(server: ProjectClient) -> None:
    body = gzip.compress(request([span(new_trace_id(), new_span_id())]).SerializeToString())
    response = server.export(body + b"not gzip", **{"Content-Encoding": "gzip"})
    assert response.status_code == 400, response.text


def _signed_in(server: ProjectClient) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, cookies={COOKIE: server.api_key}, timeout=30)


def _cursor(*key: object) -> str:
    import base64
    import json

    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


def test_query_parameters_past_what_the_store_holds_are_4xx(server: ProjectClient) -> None:
    server.export(request([span(new_trace_id(), new_span_id())]).SerializeToString())
    long_text = "x" * 50_001
    big = 2**63 + 5
    with _signed_in(server) as web:
        answers = {
            "api search": server.http.get("/api/v1/traces", params={"q": long_text}),
            "api session search": server.http.get("/api/v1/sessions", params={"q": long_text}),
            "api users search": server.http.get("/api/v1/users", params={"q": long_text}),
            "api trace cursor": server.http.get(
                "/api/v1/traces", params={"cursor": _cursor(big, "a")}
            ),
            "api session cursor": server.http.get(
                "/api/v1/sessions", params={"cursor": _cursor(big, "a")}
            ),
            "api users cursor": server.http.get(
                "/api/v1/users", params={"cursor": _cursor(-big, "a")}
            ),
            "web cursor": web.get("/traces", params={"cursor": _cursor(big, "a")}),
            "live last-event-id digit": web.get(
                "/live/traces", headers={"Last-Event-ID": "²".encode("latin-1")}
            ),
            "live last-event-id long": web.get(
                "/live/traces", headers={"Last-Event-ID": "9" * 5000}
            ),
            "live after below int64": web.get(
                "/live/sessions", params={"after": str(-(2**63) - 1)}
            ),
        }
        page = web.get("/traces", params={"q": long_text})
    for name, response in answers.items():
        assert 400 <= response.status_code < 500, (name, response.status_code, response.text)
    # The page says why it cannot search it (it used to drop the search and list all).
    assert page.status_code == 400
    assert "longer than 1000 characters" in page.text


def test_forged_sign_in_and_sign_out_forms_are_refused(server: ProjectClient) -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    body = f"key={server.api_key}&next=/traces".encode()
    host = server.base_url.removeprefix("http://")
    forged = [
        {"Origin": "http://127.0.0.1:1"},  # the same site, another port
        {"Origin": "null"},
        {"Sec-Fetch-Site": "same-site", "Origin": f"http://{host}"},
        {"Referer": "http://evil.example/page"},
    ]
    for headers in forged:
        login = httpx.post(server.base_url + "/login", content=body, headers={**form, **headers})
        assert login.status_code == 403, (headers, login.status_code)
        assert COOKIE not in login.headers.get("set-cookie", "")
        with _signed_in(server) as web:
            logout = web.post("/logout", headers=headers)
        assert logout.status_code == 403, (headers, logout.status_code)
    own = {"Origin": f"http://{host}", "Sec-Fetch-Site": "same-origin"}
    login = httpx.post(server.base_url + "/login", content=body, headers={**form, **own})
    assert login.status_code == 303
    with _signed_in(server) as web:
        assert web.post("/logout", headers=own).status_code == 303


def _live_position(web: httpx.Client) -> str:
    page = web.get("/traces")
    assert page.status_code == 200
    match = re.search(r'data-after="([^"]*)"', page.text)
    assert match is not None
    return match.group(1)


def test_the_live_position_does_not_count_other_projects_writes(
    threadline_process: ServerProcess,
) -> None:
    a = ProjectClient(
        threadline_process.base_url, threadline_process.new_key("live-a"), threadline_process
    )
    b = ProjectClient(
        threadline_process.base_url, threadline_process.new_key("live-b"), threadline_process
    )
    with _signed_in(b) as web:
        b.export(request([span(new_trace_id(), new_span_id())]).SerializeToString())
        before = _live_position(web)
        for _ in range(5):
            a.export(request([span(new_trace_id(), new_span_id())]).SerializeToString())
        b_trace = new_trace_id()
        b.export(request([span(b_trace, new_span_id())]).SerializeToString())
        after = _live_position(web)
        assert not before.isdigit() and not after.isdigit(), (before, after)
        assert re.fullmatch(r"[0-9a-f]{16}", after)
        # The opaque position still works: B's stream from `before` brings B's trace.
        with web.stream(
            "GET",
            "/live/traces",
            params={"after": before, "range": "all"},
            headers={"Accept": "text/event-stream"},
        ) as stream:
            text = ""
            deadline = time.monotonic() + 5
            for chunk in stream.iter_text():
                text += chunk
                if b_trace in text or time.monotonic() > deadline:
                    break
        assert b_trace in text
        ids = re.findall(r"^id: (.*)$", text, re.M)
        assert ids and all(re.fullmatch(r"[0-9a-f]{16}", i) for i in ids), ids
        # A position of B's means nothing under another project's stream.
    a.http.close()
    b.http.close()


def test_healthz_waiters_are_bounded(tmp_path: Path) -> None:
    """With an export in hand (the database held locked by another process), at most 64
    requests wait on /healthz?wait=; the rest are answered 503 at once."""
    process = start_server(tmp_path / "data", tmp_path / "log.txt")
    key = process.new_key("waiters")
    blocker = sqlite3.connect(process.data_dir / "threadline.db", isolation_level=None)
    try:
        blocker.execute("BEGIN EXCLUSIVE")
        pool = ThreadPoolExecutor(max_workers=110)
        blocked = pool.submit(
            _post, process, key, request([span(new_trace_id(), new_span_id())]).SerializeToString()
        )
        time.sleep(0.5)
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
        with httpx.Client(base_url=process.base_url, limits=limits, timeout=20) as client:
            started = time.monotonic()
            waits = [pool.submit(client.get, "/healthz", params={"wait": 3}) for _ in range(100)]
            codes = [future.result().status_code for future in waits]
        refused = codes.count(503)
        assert refused == 100 - 64, refused
        assert time.monotonic() - started < 15
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert blocked.result().status_code == 200
    pool.shutdown()
    stop_server(process)
