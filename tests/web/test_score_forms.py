"""The web UI's score and note forms over HTTP, against the real server: bad input gets a
clear 4xx ``{"error": ...}`` and writes nothing, and a post from another origin is
refused whatever it carries."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from tests.otlp import new_span_id, new_trace_id, request, span

COOKIE = "threadline_session"
FORM = "application/x-www-form-urlencoded"


class Forms:
    """A signed-in browser's form posts (htmx ones carry ``HX-Request``)."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.origin = server.base_url
        self.http = httpx.Client(
            base_url=server.base_url, cookies={COOKIE: server.api_key}, timeout=30
        )
        self.session_id = f"s-{uuid.uuid4().hex[:8]}"
        self.trace_id, self.span_id = new_trace_id(), new_span_id()
        body = request(
            [
                span(
                    self.trace_id,
                    self.span_id,
                    name="turn",
                    attributes={"threadline.session.id": self.session_id},
                )
            ]
        )
        assert server.export(body.SerializeToString()).status_code == 200

    def post(self, path: str, fields: dict[str, str], **headers: str) -> httpx.Response:
        headers = {"Content-Type": FORM, "Origin": self.origin, "HX-Request": "true", **headers}
        return self.http.post(path, content=urlencode(fields), headers=headers)

    def scores(self) -> list[dict[str, Any]]:
        return self.server.get("/api/v1/scores", limit=500)["items"]


@pytest.fixture
def forms(server) -> Forms:
    for config in (
        {"name": "stars", "data_type": "numeric", "min_value": 1, "max_value": 5},
        {"name": "outcome", "data_type": "categorical", "labels": ["resolved", "escalated"]},
    ):
        assert server.http.put(f"/api/v1/score-configs/{config['name']}", json=config).is_success
    return Forms(server)


def _refused(response: httpx.Response, status: int, *words: str) -> None:
    assert response.status_code == status, (response.status_code, response.text)
    message = response.json()["error"]
    for word in words:
        assert word in message, message


def test_a_good_score_and_note_render_their_panels(forms: Forms) -> None:
    response = forms.post(
        "/ui/scores",
        {"session_id": forms.session_id, "name": "stars", "value": "4", "author": "Ann"},
    )
    assert response.status_code == 200, response.text
    assert 'class="scores-panel' in response.text and "by hand · Ann" in response.text
    [score] = forms.scores()
    assert (score["value"], score["source"], score["session_id"]) == (4.0, "ui", forms.session_id)
    response = forms.post("/ui/notes", {"session_id": forms.session_id, "body": "looks fine"})
    assert response.status_code == 200 and "looks fine" in response.text
    # Without htmx (a plain form post), the browser is sent back to the page.
    response = forms.post(
        "/ui/scores",
        {
            "trace_id": forms.trace_id,
            "span_id": forms.span_id,
            "name": "ok",
            "value": "true",
            "data_type": "boolean",
        },
        **{"HX-Request": ""},
    )
    assert response.status_code == 303
    assert response.headers["location"] == f"/traces/{forms.trace_id}?span={forms.span_id}"


@pytest.mark.parametrize(
    ("fields", "status", "words"),
    [
        ({"name": "stars", "value": "9"}, 400, ["9 is above its maximum 5"]),
        ({"name": "stars", "value": "0"}, 400, ["below its minimum 1"]),
        ({"name": "stars", "value": "many"}, 400, ["'many' is not a finite number"]),
        ({"name": "stars", "value": "nan"}, 400, ["not a finite number"]),
        ({"name": "outcome", "value": "lost"}, 400, ["'lost' is not one of its labels"]),
        ({"name": "free", "value": "x", "data_type": "ordinal"}, 400, ["type:"]),
        ({"name": "free", "value": "maybe", "data_type": "boolean"}, 400, ["true or false"]),
        ({"name": "stars", "value": "x", "data_type": "categorical"}, 400, ["configured as"]),
        ({"value": "1"}, 400, ["score name"]),
        ({"name": "stars"}, 400, ["give the score a value"]),
        ({"name": "n" * 201, "value": "1"}, 400, ["score name", "200"]),
        ({"name": "c", "value": "1", "comment": "é" * 10_001}, 400, ["comment", "10000"]),
        ({"name": "c", "value": "1", "author": "a" * 201}, 400, ["author"]),
        ({"name": "c", "value": "1", "session_id": "", "trace_id": "xyz"}, 400, ["trace_id"]),
        ({"name": "c", "value": "1", "session_id": ""}, 400, ["names no session or trace"]),
        ({"name": "c", "value": "1", "session_id": "no-such"}, 404, ["no session 'no-such'"]),
        ({"name": "c", "value": "1", "trace_id": "ab" * 16}, 404, ["no trace"]),
        ({"name": "c", "value": "1", "id": "never-written"}, 404, ["no score 'never-written'"]),
    ],
)
def test_bad_scores_are_refused_clearly(
    forms: Forms, fields: dict[str, str], status: int, words: list[str]
) -> None:
    response = forms.post("/ui/scores", {"session_id": forms.session_id, **fields})
    _refused(response, status, *words)
    assert forms.scores() == []


def test_bad_forms_are_refused_clearly(forms: Forms) -> None:
    target = {"session_id": forms.session_id}
    # A span that is not in the trace.
    response = forms.post(
        "/ui/scores",
        {"trace_id": forms.trace_id, "span_id": "ab" * 8, "name": "c", "value": "1"},
    )
    _refused(response, 404, "no span")
    # Not a urlencoded form; too big a form; not UTF-8.
    response = forms.http.post(
        "/ui/scores", json={**target, "name": "c", "value": 1}, headers={"Origin": forms.origin}
    )
    _refused(response, 415, "x-www-form-urlencoded")
    response = forms.post("/ui/notes", {**target, "body": "x" * 200_000})
    _refused(response, 413, "exceeds the limit")
    response = forms.http.post(
        "/ui/notes",
        content=b"session_id=" + forms.session_id.encode() + b"&body=%FF%FE",
        headers={"Content-Type": FORM, "Origin": forms.origin},
    )
    _refused(response, 400, "cannot be read")
    # The longest note and comment there may be, in 4-byte characters, fit in a form.
    longest = "🙂" * 10_000
    assert forms.post("/ui/notes", {**target, "body": longest}).status_code == 200
    score = {**target, "name": "c", "value": "1", "data_type": "numeric", "comment": longest}
    assert forms.post("/ui/scores", score).status_code == 200
    [note] = forms.server.get("/api/v1/notes", session_id=forms.session_id)["items"]
    assert note["body"] == longest and forms.scores()[0]["comment"] == longest
    forms.post("/ui/notes/delete", {**target, "id": note["id"]})
    forms.post("/ui/scores/delete", {**target, "id": forms.scores()[0]["id"]})
    # Notes: no text, too much text, an unknown note, an unknown session.
    _refused(forms.post("/ui/notes", target), 400, "needs some text")
    _refused(forms.post("/ui/notes", {**target, "body": "é" * 10_001}), 400, "body")
    _refused(forms.post("/ui/notes/delete", {**target, "id": "nope"}), 404, "no note 'nope'")
    _refused(forms.post("/ui/notes", {"session_id": "gone", "body": "x"}), 404, "no session")
    _refused(forms.post("/ui/scores/delete", {**target, "id": "nope"}), 404, "no score 'nope'")
    _refused(forms.post("/ui/scores/delete", target), 400, "no score to delete")
    assert forms.scores() == []
    assert forms.server.get("/api/v1/notes", session_id=forms.session_id)["items"] == []
    # A score from elsewhere can be deleted in the UI but not changed into a "ui" one.
    body = {"id": "from-eval", "name": "judge", "value": 0.5, "source": "eval", **target}
    assert forms.server.http.post("/api/v1/scores", json=body).status_code == 200
    response = forms.post(
        "/ui/scores", {**target, "id": "from-eval", "name": "judge", "value": "1"}
    )
    _refused(response, 403, "came from eval")
    assert [s["value"] for s in forms.scores()] == [0.5]
    assert forms.post("/ui/scores/delete", {**target, "id": "from-eval"}).status_code == 200
    assert forms.scores() == []


def test_sign_in_is_required(forms: Forms) -> None:
    anonymous = httpx.Client(base_url=forms.server.base_url)
    fields = urlencode({"session_id": forms.session_id, "name": "c", "value": "1"})
    headers = {"Content-Type": FORM, "Origin": forms.origin}
    response = anonymous.post("/ui/scores", content=fields, headers={**headers, "HX-Request": "1"})
    assert response.status_code == 401 and response.headers["HX-Redirect"].startswith("/login")
    response = anonymous.post("/ui/scores", content=fields, headers=headers)
    assert response.status_code == 303
    assert forms.scores() == []


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        # The same host on another port is another origin.
        {"Origin": "ORIGIN_OTHER_PORT"},
        # No Origin, but the browser says the request comes from another site.
        {"Origin": "", "Sec-Fetch-Site": "cross-site"},
        {"Origin": "", "Sec-Fetch-Site": "same-site"},
    ],
)
def test_posts_from_another_origin_are_refused(forms: Forms, headers: dict[str, str]) -> None:
    if headers["Origin"] == "ORIGIN_OTHER_PORT":
        host, port = forms.origin.rsplit(":", 1)
        headers = {"Origin": f"{host}:{int(port) + 1}"}
    note = {"session_id": forms.session_id, "body": "forged"}
    assert forms.post("/ui/notes", note).status_code == 200  # the control: same origin
    [kept] = forms.server.get("/api/v1/notes", session_id=forms.session_id)["items"]
    score = {"session_id": forms.session_id, "name": "stars", "value": "3"}
    assert forms.post("/ui/scores", score).status_code == 200
    [written] = forms.scores()
    sent = {k: v for k, v in headers.items() if v}
    if not headers["Origin"]:
        # httpx sends no Origin by itself; the fixture's default must go too.
        sent["Origin"] = ""
    for path, fields in (
        ("/ui/scores", {**score, "value": "5"}),
        ("/ui/scores", {**score, "id": written["id"], "value": "1"}),
        ("/ui/scores/delete", {"session_id": forms.session_id, "id": written["id"]}),
        ("/ui/notes", note),
        ("/ui/notes/delete", {"session_id": forms.session_id, "id": kept["id"]}),
    ):
        response = _post_raw(forms, path, fields, sent)
        _refused(response, 403, "refused")
    assert [s["value"] for s in forms.scores()] == [3.0]
    assert len(forms.server.get("/api/v1/notes", session_id=forms.session_id)["items"]) == 1


def _post_raw(forms: Forms, path: str, fields: dict[str, str], headers: dict[str, str]):
    base = {"Content-Type": FORM, "HX-Request": "true"}
    if headers.get("Origin"):
        base["Origin"] = headers["Origin"]
    base.update({k: v for k, v in headers.items() if k != "Origin"})
    return forms.http.post(path, content=urlencode(fields), headers=base)


def test_same_origin_behind_a_proxy_and_without_a_browser(forms: Forms) -> None:
    score = {"session_id": forms.session_id, "name": "stars", "value": "3"}
    # A proxy that ends TLS: the browser says https, the Host header has no port.
    response = _post_raw(
        forms,
        "/ui/scores",
        score,
        {"Origin": "https://threadline.example", "Host": "threadline.example"},
    )
    assert response.status_code == 200, response.text
    # A same-origin fetch that left the Origin out, and a client that is no browser.
    assert _post_raw(forms, "/ui/scores", score, {"Sec-Fetch-Site": "same-origin"}).is_success
    assert _post_raw(forms, "/ui/scores", score, {}).is_success
    assert len(forms.scores()) == 3


def test_a_score_of_another_type_than_its_names_is_refused(forms: Forms) -> None:
    target = {"session_id": forms.session_id}
    boolean = {**target, "name": "helpful", "value": "true", "data_type": "boolean"}
    assert forms.post("/ui/scores", boolean).status_code == 200
    numeric = {**target, "name": "helpful", "value": "4", "data_type": "numeric"}
    _refused(forms.post("/ui/scores", numeric), 409, "'helpful'", "boolean", "numeric")
    assert [s["value"] for s in forms.scores()] == [1.0]
