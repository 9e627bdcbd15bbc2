"""Every session id ingest accepts works in every route that names a session: the
JSON API, the session page, the row expansion, the Traces filter and the export."""

from __future__ import annotations

import html
import re
from urllib.parse import quote

import httpx
import pytest

# Ids real applications use: tenant paths, URLs (with query and fragment), spaces,
# percent signs, non-ASCII text, leading and trailing slashes.
ODD_IDS = [
    "tenant-a/conv-1",
    "https://chat.example.com/c/42?lang=en#top",
    "a b+c&d=e",
    "100% sure",
    "gespräch/ü/🙂",
    "/leading",
    "trailing/",
    "a//b",
    # Dot segments: clients resolve "/sessions/.." to "/"; the API takes them written
    # as %2E, and the pages link to "/sessions/?id=..", which browsers leave alone.
    "..",
    ".",
]


def _path_id(session_id: str) -> str:
    quoted = quote(session_id, safe="")
    return quoted.replace(".", "%2E") if session_id in (".", "..") else quoted


@pytest.fixture
def web(server) -> httpx.Client:
    client = httpx.Client(base_url=server.base_url, timeout=30)
    client.cookies.set("threadline_session", server.api_key)
    yield client
    client.close()


@pytest.mark.parametrize("session_id", ODD_IDS)
def test_every_route_finds_a_session_whatever_its_id(server, web, session_id):
    attributes = {"threadline.session.id": session_id, "threadline.span.input": '"hi"'}
    trace_id = server.send_span(attributes, name="turn")
    path_id = _path_id(session_id)

    detail = server.http.get(f"/api/v1/sessions/{path_id}")
    assert detail.status_code == 200, detail.text
    assert detail.json()["session_id"] == session_id
    assert [t["trace_id"] for t in detail.json()["traces"]] == [trace_id]

    listed = server.get("/api/v1/traces", session_id=session_id)
    assert [t["trace_id"] for t in listed["items"]] == [trace_id]

    # The links the pages print lead to the session.
    sessions_tab = web.get("/sessions", params={"range": "all"})
    hrefs = re.findall(r'<a href="(/sessions/[^"]*)" data-col="session_id">', sessions_tab.text)
    assert len(hrefs) == 1
    page = web.get(html.unescape(hrefs[0]))
    assert page.status_code == 200, page.text
    assert trace_id in page.text

    fragment = web.get("/fragments/session-traces", params={"session_id": session_id})
    assert fragment.status_code == 200 and trace_id in fragment.text

    export = web.get("/export/session.json", params={"session_id": session_id})
    assert export.status_code == 200
    assert export.json()["session"]["session_id"] == session_id
