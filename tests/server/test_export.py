"""Bulk export of the Sessions and Traces lists through the real server: the JSON API
(CSV and JSONL, filters honoured, spans included), the UI's export links (cookie) and
``threadline export``."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
import time
import uuid

import httpx
import pytest

from tests.otlp import new_span_id, new_trace_id, request, span
from threadline.server.export import TRACE_BATCH

COOKIE = "threadline_session"


def _fill(server, tag: str, sessions: int = 7, turns: int = 3) -> None:
    """``sessions`` sessions of ``turns`` traces (two spans each) in one export; every
    other session carries the metadata ``half=yes``. Inputs hold commas, quotes and
    line breaks, which CSV must keep."""
    spans = []
    # Within the last hour: the lists' default window (7 days) holds them.
    base_ns = (time.time_ns() // 10**9 - 3600) * 10**9
    for s in range(sessions):
        for turn in range(turns):
            trace_id, root = new_trace_id(), new_span_id()
            spans.append(
                span(
                    trace_id,
                    root,
                    name=f"turn-{turn}",
                    start_ns=base_ns + (s * 100 + turn) * 10**9,
                    attributes={
                        "threadline.session.id": f"{tag}-s{s}",
                        "threadline.user.id": f"{tag}-u{s % 2}",
                        "threadline.span.input": f'say "hi", {s}\nthen {turn}',
                        "threadline.span.output": f"ok {s}/{turn}",
                        "threadline.metadata.half": "yes" if s % 2 else "no",
                        "threadline.tags": json.dumps([tag]),
                    },
                )
            )
            spans.append(
                span(
                    trace_id,
                    new_span_id(),
                    parent=root,
                    name="llm",
                    attributes={"gen_ai.usage.input_tokens": s, "gen_ai.usage.output_tokens": 1},
                )
            )
    server.send(spans)


def _all(server, path: str, **params) -> list[dict]:
    """Every row of a list, page by page (small pages, so paging is exercised)."""
    rows, cursor = [], None
    while True:
        page = server.get(path, limit=2, cursor=cursor, **params)
        rows += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return rows


def _csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def _as_csv(row: dict) -> dict[str, str]:
    """A list row as the CSV writes it."""

    def cell(value) -> str:
        if value is None:
            return ""
        if isinstance(value, (list, dict)):
            return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
            return "'" + value
        return str(value)

    return {k: cell(v) for k, v in row.items()}


def test_sessions_export_csv_and_jsonl_match_the_list(server):
    tag = f"x{uuid.uuid4().hex[:8]}"
    _fill(server, tag)
    listed = _all(server, "/api/v1/sessions", tag=tag, sort="tokens")
    assert len(listed) == 7

    response = server.http.get(
        "/api/v1/export/sessions", params={"format": "jsonl", "tag": tag, "sort": "tokens"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    assert 'filename="sessions.jsonl"' in response.headers["content-disposition"]
    lines = response.text.splitlines()
    assert [json.loads(line) for line in lines] == listed

    response = server.http.get(
        "/api/v1/export/sessions", params={"format": "csv", "tag": tag, "sort": "tokens"}
    )
    assert response.headers["content-type"].startswith("text/csv")
    rows = _csv_rows(response.text)
    assert list(rows[0]) == list(listed[0])  # every field of the list, in its order
    assert rows == [_as_csv(r) for r in listed]
    assert "\n" in rows[0]["first_input"] and '"hi",' in rows[0]["first_input"]

    # Filters are the list's: half of them, by metadata.
    response = server.http.get(
        "/api/v1/export/sessions", params={"format": "csv", "tag": tag, "metadata": "half=yes"}
    )
    assert sorted(r["session_id"] for r in _csv_rows(response.text)) == [
        f"{tag}-s{i}" for i in (1, 3, 5)
    ]


def test_sessions_export_with_spans_carries_every_trace_and_span(server):
    tag = f"x{uuid.uuid4().hex[:8]}"
    _fill(server, tag, sessions=3)
    response = server.http.get(
        "/api/v1/export/sessions", params={"format": "jsonl", "include": "spans", "tag": tag}
    )
    assert response.status_code == 200
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert len(lines) == 3
    for line in lines:
        session_id = line["session"]["session_id"]
        detail = server.get(f"/api/v1/sessions/{session_id}")
        # The detail's page of turns (traces, first_turn, next_cursor) aside.
        paging = {"traces", "first_turn", "next_cursor"}
        assert line["session"] == {k: v for k, v in detail.items() if k not in paging}
        assert [t["trace_id"] for t in line["traces"]] == [t["trace_id"] for t in detail["traces"]]
        for trace in line["traces"]:
            assert trace == server.get(f"/api/v1/traces/{trace['trace_id']}")
            assert len(trace["spans"]) == 2


def test_a_session_longer_than_a_batch_of_traces_is_exported_whole(server):
    """A session of more traces than the export reads at once (``export.TRACE_BATCH``)
    is written in pieces, batch after batch: its line is still the session page's."""
    tag = f"x{uuid.uuid4().hex[:8]}"
    base_ns = (time.time_ns() // 10**9 - 3600) * 10**9
    spans = []
    for turn in range(TRACE_BATCH + 7):
        trace_id, root = new_trace_id(), new_span_id()
        attributes = {"threadline.session.id": f"{tag}-long", "threadline.tags": json.dumps([tag])}
        spans.append(
            span(
                trace_id,
                root,
                name=f"turn-{turn}",
                start_ns=base_ns + turn * 10**9,
                attributes={**attributes, "threadline.span.input": f"q{turn}"},
            )
        )
        spans.append(span(trace_id, new_span_id(), parent=root, start_ns=base_ns + turn * 10**9))
    server.send(spans)
    response = server.http.get(
        "/api/v1/export/sessions", params={"format": "jsonl", "include": "spans", "tag": tag}
    )
    assert response.status_code == 200
    (line,) = [json.loads(line) for line in response.text.splitlines()]
    detail = server.get(f"/api/v1/sessions/{tag}-long")
    assert [t["trace_id"] for t in line["traces"]] == [t["trace_id"] for t in detail["traces"]]
    assert len(line["traces"]) == TRACE_BATCH + 7
    for trace in line["traces"][TRACE_BATCH - 1 : TRACE_BATCH + 1]:  # either side of a batch
        assert trace == server.get(f"/api/v1/traces/{trace['trace_id']}")


def test_traces_export_honours_filters(server):
    tag = f"x{uuid.uuid4().hex[:8]}"
    _fill(server, tag, sessions=4)
    listed = _all(server, "/api/v1/traces", tag=tag, user_id=f"{tag}-u1")
    assert len(listed) == 6
    params = {"tag": tag, "user_id": f"{tag}-u1"}
    response = server.http.get("/api/v1/export/traces", params={"format": "csv", **params})
    assert _csv_rows(response.text) == [_as_csv(r) for r in listed]
    response = server.http.get("/api/v1/export/traces", params={"format": "jsonl", **params})
    assert [json.loads(line) for line in response.text.splitlines()] == listed
    response = server.http.get(
        "/api/v1/export/traces", params={"format": "jsonl", "include": "spans", **params}
    )
    full = [json.loads(line) for line in response.text.splitlines()]
    assert [t["trace_id"] for t in full] == [t["trace_id"] for t in listed]
    assert full[0] == server.get(f"/api/v1/traces/{listed[0]['trace_id']}")
    # Nothing matches: a CSV of just the header, an empty JSONL.
    response = server.http.get("/api/v1/export/traces", params={"format": "csv", "tag": "none"})
    assert response.text.splitlines()[0].startswith("trace_id,session_id,")
    assert len(response.text.splitlines()) == 1
    response = server.http.get("/api/v1/export/traces", params={"tag": "none"})
    assert response.status_code == 200 and response.text == ""


def test_csv_cells_a_spreadsheet_would_run_as_formulas_are_text(server):
    # Session ids, users, names and inputs are whatever a client (or its end users)
    # typed: written as they were, a spreadsheet opening the export ran them.
    tag = f"formula-{uuid.uuid4().hex[:8]}"
    session = f"=cmd|' /C calc'!A0 {tag}"
    trace_id = new_trace_id()
    attributes = {
        "threadline.session.id": session,
        "threadline.user.id": "@SUM(1+1)",
        "threadline.span.input": '+HYPERLINK("http://evil.example")',
        "threadline.span.output": "-2+3",
        "threadline.tags": json.dumps([tag]),
    }
    body = request([span(trace_id, new_span_id(), name="\t=1+1", attributes=attributes)])
    assert server.export(body.SerializeToString()).status_code == 200
    response = server.http.get(
        "/api/v1/export/traces", params={"format": "csv", "tag": tag, "window": "all"}
    )
    (row,) = _csv_rows(response.text)
    assert row["session_id"] == "'" + session
    assert row["user_id"] == "'@SUM(1+1)"
    assert row["name"] == "'\t=1+1"
    assert row["input_preview"] == '\'+HYPERLINK("http://evil.example")'
    assert row["output_preview"] == "'-2+3"
    assert row["trace_id"] == trace_id and row["span_count"] == "1"
    response = server.http.get(
        "/api/v1/export/sessions", params={"format": "csv", "tag": tag, "window": "all"}
    )
    (row,) = _csv_rows(response.text)
    assert row["session_id"] == "'" + session and row["trace_count"] == "1"
    # JSON Lines keeps the values exactly.
    response = server.http.get("/api/v1/export/traces", params={"tag": tag, "window": "all"})
    line = json.loads(response.text)
    assert line["session_id"] == session and line["output_preview"] == "-2+3"


def test_export_refuses_bad_input_and_other_keys(server, threadline_process):
    bad = server.http.get("/api/v1/export/sessions", params={"format": "xml"})
    assert bad.status_code == 422 and "error" in bad.json()
    bad = server.http.get("/api/v1/export/sessions", params={"format": "csv", "include": "spans"})
    assert bad.status_code == 400 and "jsonl" in bad.json()["error"]
    bad = server.http.get("/api/v1/export/traces", params={"metadata": "nokey"})
    assert bad.status_code == 400
    base = threadline_process.base_url
    assert httpx.get(base + "/api/v1/export/traces").status_code == 401


def test_ui_export_links_keep_the_filters(server):
    tag = f"x{uuid.uuid4().hex[:8]}"
    _fill(server, tag)
    web = httpx.Client(base_url=server.base_url, cookies={COOKIE: server.api_key}, timeout=30)
    page = web.get("/sessions", params={"tag": tag, "metadata": "half=yes", "sort": "cost"})
    assert page.status_code == 200
    links = [
        link.replace("&amp;", "&")
        for link in re.findall(r'href="(/export/sessions\?[^"]+)"', page.text)
    ]
    assert len(links) == 3
    csv_link = next(link for link in links if "format=csv" in link)
    assert f"tag={tag}" in csv_link and "metadata=half%3Dyes" in csv_link
    rows = _csv_rows(web.get(csv_link).text)
    assert sorted(r["session_id"] for r in rows) == [f"{tag}-s{i}" for i in (1, 3, 5)]
    spans_link = next(link for link in links if "include=spans" in link)
    lines = web.get(spans_link).text.splitlines()
    assert len(lines) == 3 and all(len(json.loads(x)["traces"]) == 3 for x in lines)
    traces = web.get(
        "/export/traces", params={"format": "jsonl", "tag": tag, "user_id": f"{tag}-u0"}
    )
    assert traces.status_code == 200 and len(traces.text.splitlines()) == 4 * 3
    # Signed out: the sign-in page, no data.
    anonymous = httpx.get(server.base_url + f"/export/traces?tag={tag}")
    assert anonymous.status_code == 303 and tag not in anonymous.text


def test_threadline_export(server, tmp_path):
    tag = f"x{uuid.uuid4().hex[:8]}"
    _fill(server, tag, sessions=5)
    env = {
        **os.environ,
        "THREADLINE_BASE_URL": server.base_url,
        "THREADLINE_API_KEY": server.api_key,
    }

    def cli(*args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [sys.executable, "-m", "threadline.server", "export", *args],
            capture_output=True,
            timeout=60,
            env=env,
        )

    out = tmp_path / "sessions.csv"
    result = cli("sessions", "--format", "csv", "--filter", f"tag={tag}", "--output", str(out))
    assert result.returncode == 0, result.stderr
    assert b"Exported 5 sessions" in result.stderr
    rows = _csv_rows(out.read_text())
    assert sorted(r["session_id"] for r in rows) == [f"{tag}-s{i}" for i in range(5)]
    # To stdout: the export alone there, the progress bar on stderr.
    result = cli("traces", "--include-spans", "--filter", f"tag={tag}", "--filter", "status=ok")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert len(lines) == 15 and all(len(t["spans"]) == 2 for t in lines)
    assert b"traces" in result.stderr
    # Piped into a reader that stops after one line (more than a pipe holds follows):
    # no traceback.
    big = [
        span(
            new_trace_id(),
            new_span_id(),
            start_ns=time.time_ns() - 60 * 10**9,  # in the export's default window
            attributes={"threadline.span.input": "b" * 100_000},
        )
        for _ in range(20)
    ]
    server.send(big)
    with subprocess.Popen(
        [sys.executable, "-m", "threadline.server", "export", "traces", "--include-spans"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    ) as piped:
        assert piped.stdout is not None and piped.stderr is not None
        assert json.loads(piped.stdout.readline())["trace_id"]
        piped.stdout.close()
        errors = piped.stderr.read()
        assert piped.wait(timeout=60) == 1  # stopped by the closed pipe, not finished
    assert b"Traceback" not in errors and b"Exception" not in errors, errors
    result = cli("sessions", "--format", "csv", "--include-spans")
    assert result.returncode != 0 and b"jsonl" in result.stderr
    # The lists' numeric filters and sort, as the API takes them; the progress bar counts
    # rows, not the CSV's header.
    by_start = ("--filter", f"tag={tag}", "--filter", "sort=start", "--format", "csv")
    result = cli("sessions", *by_start, "--filter", "filter=turns>=3")
    assert result.returncode == 0, result.stderr
    rows = _csv_rows(result.stdout.decode())
    assert [r["session_id"] for r in rows] == [f"{tag}-s{i}" for i in range(4, -1, -1)]
    assert b"5 rows" in result.stderr.replace(b"\r", b"\n").splitlines()[-1]
    result = cli("sessions", *by_start, "--filter", "filter=turns>=4")
    assert result.returncode == 0 and _csv_rows(result.stdout.decode()) == []
    # A name the lists do not take is refused here; a value they refuse, by the server.
    result = cli("traces", "--filter", "colour=red")
    assert result.returncode != 0 and b"colour=red" in result.stderr
    result = cli("traces", "--filter", "sort=cost")
    assert result.returncode != 0 and b"sort" in result.stderr and b"Traceback" not in result.stderr


@pytest.mark.slow  # a server of its own, and an export read slowly on purpose
def test_an_export_may_stream_for_longer_than_the_body_timeout(tmp_path):
    """The body timeout bounds how long a request's body may take, not its answer: an
    export read slowly by its client streams to its end (it was cut off at the
    timeout while the answer listened for the client's disconnect)."""
    from tests.conftest import start_server, stop_server

    server = start_server(tmp_path / "data", tmp_path / "log", "--body-timeout", "1")
    try:
        key = server.new_key("slow-reader")
        spans = [
            span(
                new_trace_id(),
                new_span_id(),
                attributes={
                    "threadline.session.id": f"s{i}",
                    "threadline.span.input": "x" * 200_000,
                },
            )
            for i in range(40)
        ]
        headers = {"Authorization": f"Bearer {key}"}
        response = httpx.post(
            server.base_url + "/v1/traces",
            content=request(spans).SerializeToString(),
            headers={**headers, "Content-Type": "application/x-protobuf"},
        )
        assert response.status_code == 200
        body = b""
        with httpx.stream(
            "GET",
            server.base_url + "/api/v1/export/traces",
            params={"include": "spans", "window": "all"},
            headers=headers,
            timeout=30,
        ) as streamed:
            for i, chunk in enumerate(streamed.iter_bytes()):
                if i == 0:
                    time.sleep(2.5)  # past the body timeout, the rest still unsent
                body += chunk
        assert len(body) > 8_000_000
        assert len([json.loads(line) for line in body.splitlines()]) == 40
        assert "Traceback" not in server.log()
    finally:
        stop_server(server)


def test_exported_costs_are_the_decimals_a_person_would_write(server):
    """A trace's cost is a sum of its spans' (``0.1 + 0.2`` is 0.30000000000000004 in
    floats): both formats write it to the picodollar, as ``0.3``."""
    tag = f"x{uuid.uuid4().hex[:8]}"
    base_ns = (time.time_ns() // 10**9 - 3600) * 10**9
    trace_id, root = new_trace_id(), new_span_id()
    attributes = {"threadline.session.id": f"{tag}-s", "threadline.tags": json.dumps([tag])}
    server.send(
        [
            span(trace_id, root, start_ns=base_ns, attributes=attributes),
            *(
                span(
                    trace_id,
                    new_span_id(),
                    parent=root,
                    start_ns=base_ns + i * 10**6,
                    attributes={"gen_ai.usage.cost": cost},
                )
                for i, cost in enumerate((0.1, 0.2))
            ),
        ]
    )
    listed = server.get(f"/api/v1/traces/{trace_id}")["cost_usd"]
    assert listed == 0.3  # answered to the picodollar, as exported
    for kind in ("traces", "sessions"):
        response = server.http.get(f"/api/v1/export/{kind}", params={"format": "csv", "tag": tag})
        (row,) = _csv_rows(response.text)
        assert row["cost_usd"] == "0.3"
        response = server.http.get(f"/api/v1/export/{kind}", params={"format": "jsonl", "tag": tag})
        assert '"cost_usd":0.3,' in response.text and json.loads(response.text)["cost_usd"] == 0.3
    response = server.http.get(
        "/api/v1/export/sessions", params={"format": "jsonl", "include": "spans", "tag": tag}
    )
    assert json.loads(response.text)["session"]["cost_usd"] == 0.3
