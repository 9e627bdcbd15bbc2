"""Share links through the real server: made, listed and revoked by the API and the UI's
forms; the shared page shows the one session or trace, hides what the link hides, and
answers every bad link with the same plain "not found"."""

from __future__ import annotations

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
