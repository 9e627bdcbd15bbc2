"""Share links through the real server: made, listed and revoked by the API and the UI's
forms; the shared page shows the one session or trace, hides what the link hides, and
answers every bad link with the same plain "not found"."""

from __future__ import annotations

import re
import time
import uuid

import httpx

from tests.otlp import new_span_id, new_trace_id, span
from threadline.server import sharing
from threadline.server.model import ShareIn
from threadline.server.store.sqlite import SQLiteStore

COOKIE = "threadline_session"


def _session(server, session_id: str) -> list[str]:
    spans, ids = [], []
    for turn in range(2):
        trace_id = new_trace_id()
        ids.append(trace_id)
        spans.append(
            span(
                trace_id,
                new_span_id(),
                name=f"turn-{turn}",
                start_ns=1_790_000_000_000_000_000 + turn * 10**9,
                attributes={
                    "threadline.session.id": session_id,
                    "threadline.user.id": "user-of-" + session_id,
                    "threadline.span.input": f"secret question {turn}",
                    "threadline.span.output": f"secret answer {turn}",
                    "threadline.metadata.email": "ann@example.com",
                    "threadline.metadata.plan": "gold",
                    "app.internal": "attribute-value",
                },
            )
        )
    server.send(spans)
    return ids


def _token(created: dict) -> str:
    return created["path"].removeprefix("/shared/")


def test_a_session_link_shows_the_session_and_nothing_else(server):
    sid = f"s-{uuid.uuid4().hex[:8]}"
    _session(server, sid)
    response = server.http.post("/api/v1/shares", json={"kind": "session", "target_id": sid})
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["token"].startswith("tls_") and created["path"] == "/shared/" + created["token"]
    made, expires = created["created_at"], created["expires_at"]
    assert made < expires and created["hide_io"] is False
    page = httpx.get(server.base_url + created["path"])  # no key, no cookie
    assert page.status_code == 200
    assert sid in page.text and "secret question 0" in page.text and "secret answer 1" in page.text
    assert "plan=gold" in page.text
    # Nothing of the project beyond the session: no links, no span attributes, no user.
    assert "href=" not in page.text.split("<body>")[1].replace('href="/static', "")
    assert "attribute-value" not in page.text and "user-of-" not in page.text
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "noindex" in page.headers["x-robots-tag"]
    # Seven days unless asked; listed without its token.
    assert created["expires_at"][:10] > created["created_at"][:10]
    listed = server.get("/api/v1/shares")["items"]
    assert [link["id"] for link in listed][:1] == [created["id"]]
    assert "token" not in listed[0] and created["token"] not in str(listed)


def test_hidden_inputs_outputs_and_metadata_keys(server):
    sid = f"s-{uuid.uuid4().hex[:8]}"
    first, _ = _session(server, sid)
    for body in (
        {"kind": "session", "target_id": sid, "hide_io": True, "hide_metadata": ["email"]},
        {"kind": "trace", "target_id": first.upper(), "hide_io": True, "hide_metadata": ["email"]},
    ):
        created = server.http.post("/api/v1/shares", json=body).json()
        page = httpx.get(server.base_url + created["path"])
        assert page.status_code == 200
        assert "secret" not in page.text and "ann@example.com" not in page.text
        assert "plan=gold" in page.text and "Inputs and outputs are hidden" in page.text


def test_bad_links_are_all_the_same_not_found(server, threadline_process):
    sid = f"s-{uuid.uuid4().hex[:8]}"
    first, _ = _session(server, sid)
    created = server.http.post("/api/v1/shares", json={"kind": "trace", "target_id": first}).json()
    token = _token(created)
    base = server.base_url
    assert httpx.get(f"{base}/shared/{token}").status_code == 200

    def not_found(path: str) -> str:
        response = httpx.get(base + path)
        assert response.status_code == 404, path
        assert first not in response.text and sid not in response.text
        return response.text

    guessed = not_found("/shared/tls_" + "A" * 43)
    tampered = not_found(f"/shared/{token[:-1]}{'B' if token[-1] != 'B' else 'C'}")
    other = not_found("/shared/nonsense")
    # Expired: a link whose time is up (its expiry moved into the past in the store).
    store = SQLiteStore(threadline_process.data_dir / "threadline.db")
    try:
        expiring = sharing.create(
            store,
            _project_id(store, server),
            ShareIn(kind="trace", target_id=first, expires_in_days=1),
            now_ns=time.time_ns() - 2 * sharing.DAY_NS,
        )
    finally:
        store.close()
    expired = not_found(expiring.path)
    response = server.http.delete(f"/api/v1/shares/{created['id']}")
    assert response.status_code == 200 and response.json() == {"revoked": True}
    revoked = not_found(f"/shared/{token}")
    assert server.http.delete(f"/api/v1/shares/{created['id']}").status_code == 404
    assert guessed == tampered == other == expired == revoked
    states = {link["id"]: link for link in server.get("/api/v1/shares")["items"]}
    assert states[created["id"]]["revoked_at"] is not None


def _project_id(store: SQLiteStore, server) -> int:
    access = store.access_for_key(server.api_key)
    assert access is not None
    return access.project.id


def test_a_deleted_target_is_not_found_and_bad_input_is_refused(server):
    sid = f"s-{uuid.uuid4().hex[:8]}"
    _session(server, sid)
    created = server.http.post("/api/v1/shares", json={"kind": "session", "target_id": sid}).json()
    assert server.http.delete(f"/api/v1/sessions/{sid}").status_code == 200
    assert httpx.get(server.base_url + created["path"]).status_code == 404
    for body in (
        {"kind": "session", "target_id": "no-such-session"},
        {"kind": "trace", "target_id": new_trace_id()},
    ):
        assert server.http.post("/api/v1/shares", json=body).status_code == 404
    for body in (
        {"kind": "user", "target_id": "x"},
        {"kind": "session", "target_id": sid, "expires_in_days": 0},
        {"kind": "session", "target_id": sid, "expires_in_days": 1000},
    ):
        response = server.http.post("/api/v1/shares", json=body)
        assert response.status_code == 422 and "error" in response.json()
    assert httpx.post(server.base_url + "/api/v1/shares", json={}).status_code == 401


def test_the_ui_makes_lists_and_revokes_links(server):
    sid = f"s-{uuid.uuid4().hex[:8]}"
    _session(server, sid)
    base = server.base_url
    web = httpx.Client(base_url=base, cookies={COOKIE: server.api_key}, timeout=30)
    assert 'action="/shares/new"' in web.get(f"/sessions/{sid}").text
    form = {"kind": "session", "target_id": sid, "expires_in_days": "2", "hide_io": "1"}
    refused = web.post("/shares/new", data=form, headers={"Origin": "https://evil.example"})
    assert refused.status_code == 403
    made = web.post("/shares/new", data=form, headers={"Origin": base})
    # Post/redirect/get: reloading the page that shows the link makes no other link.
    assert made.status_code == 303 and made.headers["location"] == "/shares"
    shown = web.get("/shares").text
    url = shown.split('data-testid="link-url"')[0].rsplit('value="', 1)[1].split('"')[0]
    assert url.startswith(base + "/shared/tls_")
    page = httpx.get(url)
    assert page.status_code == 200 and "secret" not in page.text
    listed = server.get("/api/v1/shares")["items"][0]
    assert listed["hide_io"] and listed["target_id"] == sid
    reloaded = web.get("/shares").text  # the link is shown once, and listed from then on
    assert 'data-testid="link-url"' not in reloaded and reloaded.count(listed["id"]) >= 1
    revoke = web.post("/shares/revoke", data={"id": listed["id"]}, headers={"Origin": base})
    assert revoke.status_code == 303
    assert httpx.get(url).status_code == 404


def test_a_shared_page_comes_in_pages_as_the_signed_in_pages_do(server):
    # Anyone holding a link may open it: a session of 120 turns and a trace of 130 spans
    # (each shown with its input and output) were sent whole, every turn and span at once.
    sid = f"s-{uuid.uuid4().hex[:8]}"
    turns = [new_trace_id() for _ in range(120)]
    server.send(
        span(
            trace_id,
            new_span_id(),
            name=f"turn-{index}",
            start_ns=1_790_000_000_000_000_000 + index * 10**9,
            attributes={"threadline.session.id": sid, "threadline.span.input": f"q{index}"},
        )
        for index, trace_id in enumerate(turns)
    )
    trace_id, root = new_trace_id(), new_span_id()
    children = [new_span_id() for _ in range(129)]
    server.send(
        [span(trace_id, root, name="root")]
        + [span(trace_id, child, parent=root, name="child") for child in children]
    )
    links = {
        kind: server.http.post("/api/v1/shares", json={"kind": kind, "target_id": target}).json()
        for kind, target in (("session", sid), ("trace", trace_id))
    }

    def walk(path: str, attribute: str, later: str, pages: list[int]) -> list[str]:
        seen: list[str] = []
        url = server.base_url + path
        for number, expected in enumerate(pages, 1):
            page = httpx.get(url)
            assert page.status_code == 200, page.text
            shown = re.findall(attribute + r'="([0-9a-f]+)"', page.text)
            assert len(shown) == expected, (url, len(shown))
            seen += shown
            link = re.search(rf'href="(\?[a-z]+=\d+)" data-testid="{later}"', page.text)
            if number == len(pages):
                assert link is None, url
            else:
                assert link is not None, url
                url = server.base_url + path + link.group(1)
        return seen

    assert walk(links["session"]["path"], "data-trace", "later-turns", [50, 50, 20]) == turns
    shown_spans = walk(links["trace"]["path"], "data-span", "later-spans", [50, 50, 30])
    assert sorted(shown_spans) == sorted([root, *children])
    # Going back: the page before the last.
    back = httpx.get(server.base_url + links["trace"]["path"] + "?offset=100")
    assert 'href="?offset=50" data-testid="earlier-spans"' in back.text
    # A page past the end is empty; one the server cannot hold is a 4xx, not a 500.
    path = links["session"]["path"]
    assert "data-trace=" not in httpx.get(server.base_url + path + "?turn=500").text
    for query in ("?turn=0", "?turn=x", "?offset=-1", f"?turn={10**12}", "?page=2"):
        assert 400 <= httpx.get(server.base_url + path + query).status_code < 500, query
    # A revoked link's later pages are as not found as its first.
    server.http.delete(f"/api/v1/shares/{links['session']['id']}")
    assert httpx.get(server.base_url + path + "?turn=51").status_code == 404


def test_hidden_metadata_keys_are_checked_like_other_names(server):
    """A key to hide is a name: one holding a control character (a newline, ESC, NUL, a
    bidirectional override) or longer than any key is refused, by the API (422) and the
    UI's form (400), and no link is made."""
    sid = f"s-{uuid.uuid4().hex[:8]}"
    _session(server, sid)
    base = server.base_url
    web = httpx.Client(base_url=base, cookies={COOKIE: server.api_key}, timeout=30)
    before = len(server.get("/api/v1/shares")["items"])
    for key in ("em\nail", "\x1b[31memail", "em\x00ail", "\u202eliame", "k" * 1001):
        body = {"kind": "session", "target_id": sid, "hide_metadata": ["plan", key]}
        response = server.http.post("/api/v1/shares", json=body)
        assert response.status_code == 422, key
        assert "hide_metadata" in response.json()["error"]
        form = {"kind": "session", "target_id": sid, "hide_metadata": f"plan, {key}"}
        refused = web.post("/shares/new", data=form, headers={"Origin": base})
        assert refused.status_code == 400, key
    assert len(server.get("/api/v1/shares")["items"]) == before
    # Right-to-left keys keep their marks, and empty ones are still skipped.
    body = {"kind": "session", "target_id": sid, "hide_metadata": ["\u200fplan", "", "email"]}
    made = server.http.post("/api/v1/shares", json=body)
    assert made.status_code == 201 and made.json()["hide_metadata"] == ["\u200fplan", "email"]


def test_the_links_list_comes_in_pages(server):
    """``GET /api/v1/shares`` pages with ``limit`` and ``cursor`` as the other lists do
    (another list's cursor is a 400), and the UI's ``/shares`` shows 50 links a page
    with *Older links*."""
    sid = f"s-{uuid.uuid4().hex[:8]}"
    _session(server, sid)
    made = [
        server.http.post("/api/v1/shares", json={"kind": "session", "target_id": sid}).json()["id"]
        for _ in range(53)
    ]
    newest_first = list(reversed(made))
    first = server.get("/api/v1/shares", limit=20)
    assert [link["id"] for link in first["items"]] == newest_first[:20]
    seen, cursor = [], None
    while True:
        page = server.get("/api/v1/shares", limit=20, cursor=cursor)
        seen += [link["id"] for link in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == newest_first
    assert server.get("/api/v1/shares")["next_cursor"] is not None  # 50 by default
    scores_cursor = server.get("/api/v1/scores", limit=1)["next_cursor"]
    for bad in ("nonsense", scores_cursor):
        if bad is not None:
            assert server.http.get("/api/v1/shares", params={"cursor": bad}).status_code == 400

    web = httpx.Client(base_url=server.base_url, cookies={COOKIE: server.api_key}, timeout=30)
    page = web.get("/shares").text
    assert sum(page.count(f'data-id="{i}"') for i in newest_first[:50]) == 50
    assert not any(f'data-id="{i}"' in page for i in newest_first[50:])
    older = re.search(r'data-testid="next-page" href="([^"]+)"', page)
    assert older is not None
    rest = web.get(older.group(1).replace("&amp;", "&")).text
    assert [i for i in newest_first if f'data-id="{i}"' in rest] == newest_first[50:]
    assert 'data-testid="next-page"' not in rest and 'data-testid="first-page"' in rest


def test_a_shared_page_takes_each_page_start_once_in_plain_digits(server):
    # `turn=1.0`, `turn= 1` and a repeated `turn` were read as a page (the last one).
    sid = f"s-{uuid.uuid4().hex[:8]}"
    server.send([span(new_trace_id(), new_span_id(), attributes={"threadline.session.id": sid})])
    trace_id = server.send_span({})
    for kind, target, name in (("session", sid, "turn"), ("trace", trace_id, "offset")):
        link = server.http.post("/api/v1/shares", json={"kind": kind, "target_id": target})
        url = server.base_url + link.json()["path"]
        assert httpx.get(url + f"?{name}=1").status_code == 200
        for query in ("=1.0", "=%201", "=%2B1", "=\u0661", "=1e0", "=1&" + name + "=2"):
            response = httpx.get(url + "?" + name + query)
            assert response.status_code in (400, 422), (kind, query, response.status_code)
