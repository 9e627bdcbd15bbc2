"""Pages stay bounded whatever a client sends: a trace's span tree and a session's turns
come in pages, a span's detail shows its first attributes and events, and the session
export streams. Through the real server (pages over HTTP with the sign-in cookie, the
"more spans" button in Chromium)."""

from __future__ import annotations

import json
import re
import time

import httpx
from playwright.sync_api import expect

from tests.otlp import SpanSpec, new_trace_id
from threadline.server.web.auth import COOKIE

from .conftest import UI, send
from .turns import MS, Turn, turn_spans

SPANS = 1_200
ROWS_PER_PAGE = 500


def _web(server) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, cookies={COOKIE: server.api_key}, timeout=60)


def _wide_trace(server) -> tuple[str, list[str]]:
    trace_id = new_trace_id()
    start = time.time_ns() - 3_600_000 * MS
    root = SpanSpec("root", start, start + 10_000 * MS, trace_id=trace_id)
    children = [
        SpanSpec(f"step-{i:04d}", start + i * MS, start + (i + 5) * MS, trace_id=trace_id)
        for i in range(SPANS - 1)
    ]
    for child in children:
        child.parent_span_id = root.span_id
    send(server, [root, *children])
    return trace_id, [root.span_id, *(c.span_id for c in children)]


def _row_ids(html: str) -> list[str]:
    return re.findall(r'class="span-row[^"]*"\s+data-span="([0-9a-f]{16})"', html)


def test_span_tree_comes_in_pages(server) -> None:
    trace_id, span_ids = _wide_trace(server)
    with _web(server) as web:
        page = web.get(f"/traces/{trace_id}")
        assert page.status_code == 200
        shown = _row_ids(page.text)
        assert len(shown) == ROWS_PER_PAGE
        assert f"{SPANS - ROWS_PER_PAGE:,} not shown" in page.text
        offset = ROWS_PER_PAGE
        while True:
            fragment = web.get(
                "/fragments/span-rows", params={"trace_id": trace_id, "offset": offset}
            )
            assert fragment.status_code == 200
            rows = _row_ids(fragment.text)
            assert 0 < len(rows) <= ROWS_PER_PAGE
            shown += rows
            offset += ROWS_PER_PAGE
            if 'data-testid="more-spans"' not in fragment.text:
                break
    # Every span once, in the tree's order (the root first).
    assert sorted(shown) == sorted(span_ids)
    assert shown[0] == span_ids[0]
    # A page number past the end is an empty page, and a silly one a 4xx.
    with _web(server) as web:
        past = web.get("/fragments/span-rows", params={"trace_id": trace_id, "offset": 10**6})
        assert past.status_code == 200 and not _row_ids(past.text)
        assert web.get(
            "/fragments/span-rows", params={"trace_id": trace_id, "offset": 10**30}
        ).status_code in (400, 422)


def test_more_spans_button_loads_the_next_rows(ui: UI, server) -> None:
    trace_id, _ = _wide_trace(server)
    page = ui.go(f"/traces/{trace_id}")
    rows = page.locator(".span-row")
    expect(rows).to_have_count(ROWS_PER_PAGE)
    page.get_by_test_id("more-spans").click()
    expect(rows).to_have_count(2 * ROWS_PER_PAGE)
    page.get_by_test_id("more-spans").click()
    expect(rows).to_have_count(SPANS)
    expect(page.get_by_test_id("more-spans")).to_have_count(0)
    # A row loaded later selects its span like the first ones.
    rows.nth(SPANS - 1).click()
    expect(page.get_by_test_id("span-name")).to_have_text(f"step-{SPANS - 2:04d}")


def test_span_with_many_attributes_shows_the_first(server) -> None:
    trace_id = new_trace_id()
    start = time.time_ns() - 3_600_000 * MS
    # As many as ingest takes by default (max_span_attributes).
    attributes = {f"attr.{i:06d}": "value " * 5 for i in range(10_000)}
    events = [("tick", start + i, {"n": i}) for i in range(2_000)]
    send(
        server,
        [
            SpanSpec(
                "big", start, start + MS, trace_id=trace_id, attributes=attributes, events=events
            )
        ],
    )
    with _web(server) as web:
        page = web.get(f"/traces/{trace_id}")
    assert page.status_code == 200
    assert len(page.content) < 300_000, len(page.content)
    # Names as the trace view writes them: a line may break after each dot.
    assert "attr.<wbr>000000" in page.text and "attr.<wbr>000199" in page.text
    assert "attr.<wbr>000200" not in page.text
    assert "9,800 more attributes" in page.text
    assert "1,900 more events" in page.text


def _session(server, turns: int) -> list[Turn]:
    start = time.time_ns() - 3_600_000 * MS
    made = [
        Turn(new_trace_id(), f"question {i}", f"answer {i}", start + i * 1000 * MS, 500, 3, 2, 0.0)
        for i in range(turns)
    ]
    send(server, [s for turn in made for s in turn_spans(turn, "long-session", "u")])
    return made


def test_session_turns_come_in_pages_and_the_export_streams(server) -> None:
    made = _session(server, 120)
    seen: list[str] = []
    with _web(server) as web:
        path = "/sessions/long-session"
        for expected in (50, 50, 20):
            page = web.get(path)
            assert page.status_code == 200
            # The turns themselves (the context chart's table names the same traces).
            found = re.findall(r'id="turn-\d+" data-trace="([0-9a-f]{32})"', page.text)
            assert len(found) == expected
            seen += found
            later = re.search(r'href="([^"]+)" data-testid="later-turns"', page.text)
            if later is None:
                break
            path = later.group(1).replace("&amp;", "&")
        assert later is None
        assert seen == [t.trace_id for t in made]
        assert 'data-testid="earlier-turns"' in page.text

        with web.stream("GET", "/export/session.json", params={"session_id": "long-session"}) as r:
            assert r.status_code == 200
            assert "content-length" not in r.headers  # streamed, not built whole first
            body = b"".join(r.iter_bytes())
    exported = json.loads(body)
    assert exported["session"]["trace_count"] == 120
    assert [t["trace_id"] for t in exported["traces"]] == [t.trace_id for t in made]
    assert all(len(t["spans"]) == 2 for t in exported["traces"])
