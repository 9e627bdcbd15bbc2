"""The pages read their addresses as strictly as the JSON API reads its queries: an
unknown parameter, a sort no list has, an order without a score sort, a value that is
not a number or a date is the 400 page saying what is wrong, not a list that silently
ignores it. Free text refuses the controls that forge what is printed, and a control
character in a path id is a 400, not a 404."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from threadline.server.web.auth import COOKIE

HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


def _web(server: Any) -> httpx.Client:
    return httpx.Client(
        base_url=server.base_url, cookies={COOKIE: server.api_key}, headers=HTML, timeout=30
    )


def _a_400_page_saying(answer: httpx.Response, *why: str) -> None:
    assert answer.status_code == 400, (answer.status_code, answer.text[:300])
    assert answer.headers["content-type"].startswith("text/html")
    assert "Cannot show this page as asked" in answer.text
    for part in why:
        assert part in answer.text, (part, answer.text[-1500:])


@pytest.mark.parametrize(
    ("path", "params", "why"),
    [
        # What a page does not take at all.
        ("/sessions", {"turns": ">5"}, ["unknown query parameter &#39;turns&#39;"]),
        ("/sessions", {"session_id": "s"}, ["&#39;session_id&#39;"]),  # the Traces tab's
        ("/traces", {"context": "50"}, ["&#39;context&#39;"]),  # the Sessions tab's
        ("/users", {"status": "error"}, ["&#39;status&#39;"]),
        ("/users", {"q": "alice"}, ["&#39;q&#39;"]),
        ("/dashboard", {"window": "7d"}, ["&#39;window&#39;"]),
        ("/evaluators", {"edti": "x"}, ["&#39;edti&#39;"]),
        ("/settings", {"x": "1"}, ["&#39;x&#39;"]),
        ("/sessions/any-session", {"trun": "2"}, ["&#39;trun&#39;"]),
        ("/export/sessions", {"format": "csv", "cursor": "x"}, ["&#39;cursor&#39;"]),
        # Sorts and orders.
        ("/sessions", {"sort": "nonsense"}, ["unknown sort &#39;nonsense&#39;"]),
        ("/traces", {"sort": "cost"}, ["unknown sort &#39;cost&#39;"]),
        ("/sessions", {"sort": "cost", "order": "asc"}, ["applies to a score sort"]),
        ("/sessions", {"order": "desc"}, ["applies to a score sort"]),
        ("/traces", {"sort": "score:stars", "order": "up"}, ["order must be asc or desc"]),
        ("/sessions", {"sort": "score:"}, ["needs a score name"]),
        # Values.
        ("/sessions", {"range": "week"}, ["range &#39;week&#39; is not one of"]),
        ("/traces", {"status": "maybe"}, ["status &#39;maybe&#39;"]),
        ("/sessions", {"range": "custom", "start": "soon"}, ["From: &#39;soon&#39;"]),
        ("/users", {"range": "custom", "end": "2026-13-01"}, ["To: &#39;2026-13-01&#39;"]),
        ("/sessions", {"filter": "turns>abc"}, ["is not a number"]),
        ("/traces", {"filter": "turns>3"}, ["no field &#39;turns&#39;"]),
        ("/traces", {"score": "stars ~ 1"}, ["is not &#39;name op value&#39;"]),
        ("/sessions", {"context": "lots"}, ["Context: &#39;lots&#39;"]),
        ("/sessions", {"metadata": "plan"}, ["metadata"]),
        ("/sessions", {"q": "x" * 1001}, ["longer than"]),
        ("/sessions", [("filter", "turns>1")] * 11, ["at most 10"]),
        # A field that takes one value, given twice: the last was read.
        ("/sessions", [("tag", "a"), ("tag", "b")], ["tag given more than once"]),
        ("/users", [("user_id", "a"), ("user_id", "b")], ["user_id given more than once"]),
        (
            "/export/traces",
            [("format", "csv"), ("status", "ok"), ("status", "error")],
            ["status given more than once"],
        ),
        ("/dashboard", {"range": "1y"}, ["range &#39;1y&#39;"]),
        ("/dashboard", {"bucket": "month"}, ["bucket &#39;month&#39;"]),
        ("/dashboard", {"group_by": "colour"}, ["colour"]),
        (
            "/dashboard",
            {"range": "custom", "start": "2020-01-01T00:00:00Z", "bucket": "hour"},
            ["buckets asked for"],
        ),
        ("/export/traces", {"format": "csv", "sort": "tokens"}, ["unknown sort"]),
        # Every problem at once.
        ("/sessions", {"sort": "x", "status": "y"}, ["unknown sort", "status &#39;y&#39;"]),
    ],
)
def test_a_page_address_it_cannot_read_is_a_400_saying_why(
    server: Any, path: str, params: Any, why: list[str]
) -> None:
    with _web(server) as web:
        _a_400_page_saying(web.get(path, params=params), *why)


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/sessions", {"sort": "cost"}),
        ("/sessions", {"sort": "score:stars", "order": "asc"}),
        ("/sessions", {"sort": "score_label:topic", "order": "desc"}),
        ("/sessions", {"range": "custom", "start": "2026-01-01T00:00", "end": ""}),
        ("/sessions", {"filter": "turns>=2", "context": "50", "status": "", "q": " "}),
        ("/traces", {"sort": "relevance", "q": "order", "session_id": "s", "filter": "spans>1"}),
        ("/traces", {"score": "stars >= 3", "missing_score": "tone", "metadata": "plan=pro"}),
        ("/users", {"range": "all", "user_id": "alice"}),
        ("/dashboard", {"range": "90d", "bucket": "week", "group_by": "metadata:plan"}),
        ("/export/sessions", {"format": "jsonl", "sort": "tokens", "range": "24h"}),
        ("/settings", {"saved": "retention"}),
    ],
)
def test_what_the_pages_make_still_reads(server: Any, path: str, params: Any) -> None:
    with _web(server) as web:
        answer = web.get(path, params=params)
        assert answer.status_code == 200, answer.text[-1500:]


def test_a_live_stream_refuses_what_its_list_refuses(server: Any) -> None:
    stream = {"Accept": "text/event-stream"}
    with _web(server) as web:
        for params in ({"sort": "bogus"}, {"cursor": "x"}, {"columns": "stars"}):
            answer = web.get("/live/sessions", params=params, headers=stream)
            assert answer.status_code == 400, (params, answer.text)
            assert "error" in answer.json()


# --- free text -------------------------------------------------------------------------

FORGING = {
    "escape": ("red \x1b[31malert", "U+001B"),
    "carriage return": ("all good\rALL BAD", "U+000D"),
    "backspace": ("ok\x08\x08no", "U+0008"),
    "nul": ("cut\x00short", "U+0000"),
    "delete": ("a\x7fb", "U+007F"),
    "csi": ("a\x9b31mb", "U+009B"),
}


@pytest.mark.parametrize("kind", sorted(FORGING))
def test_free_text_refuses_the_controls_that_forge_output(server: Any, kind: str) -> None:
    text, code = FORGING[kind]
    sid = f"free-{uuid.uuid4().hex[:8]}"
    server.send_span({"session.id": sid})
    api = server.http
    for path, body, field in (
        (
            "/api/v1/scores",
            {"name": "stars", "value": 3, "session_id": sid, "comment": text},
            "comment",
        ),
        ("/api/v1/notes", {"session_id": sid, "body": text}, "body"),
    ):
        answer = api.post(path, json=body)
        assert answer.status_code == 422, answer.text
        assert field in answer.text and code in answer.text, answer.text
    config = {"name": f"c{uuid.uuid4().hex[:6]}", "data_type": "numeric", "description": text}
    answer = api.put(f"/api/v1/score-configs/{config['name']}", json=config)
    assert answer.status_code == 422 and "description" in answer.text and code in answer.text
    evaluator = {
        "name": f"e{uuid.uuid4().hex[:6]}",
        "prompt": text,
        "judge": {"base_url": "http://127.0.0.1:9/v1", "model": "m", "api_key_env": "TL_X"},
        "score": {"name": "verdict", "data_type": "boolean"},
        "sampling_rate": 0,
    }
    answer = api.put(f"/api/v1/evaluators/{evaluator['name']}", json=evaluator)
    assert answer.status_code == 422 and "prompt" in answer.text and code in answer.text
    # The page's forms: a 400 naming the field.
    with httpx.Client(base_url=server.base_url, cookies={COOKIE: server.api_key}) as web:
        origin = {"Origin": server.base_url}
        answer = web.post("/ui/notes", data={"session_id": sid, "body": text}, headers=origin)
        assert answer.status_code == 400 and "body" in answer.text and code in answer.text
        form = {"session_id": sid, "name": "stars", "value": "3", "comment": text}
        answer = web.post("/ui/scores", data=form, headers=origin)
        assert answer.status_code == 400 and "comment" in answer.text and code in answer.text
    assert server.get("/api/v1/notes", session_id=sid)["items"] == []


def test_free_text_keeps_lines_tabs_and_right_to_left_writing(server: Any) -> None:
    sid = f"free-{uuid.uuid4().hex[:8]}"
    server.send_span({"session.id": sid})
    right_to_left = "\u05e9\u05dc\u05d5\u05dd \u2067\u0627\u0644\u2069 \u202bx\u202c"
    body = "first line\r\nsecond\tline\n" + right_to_left
    answer = server.http.post("/api/v1/notes", json={"session_id": sid, "body": body})
    assert answer.status_code == 201, answer.text
    # A form's CR LF is kept as a newline; the rest as written.
    assert [n["body"] for n in server.get("/api/v1/notes", session_id=sid)["items"]] == [
        body.replace("\r\n", "\n")
    ]


# --- path ids ----------------------------------------------------------------------------


@pytest.mark.parametrize("character", ["\x00", "\n", "\x1b", "\u202e"])
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/sessions/a{c}b"),
        ("DELETE", "/api/v1/sessions/a{c}b"),
        ("GET", "/api/v1/traces/a{c}b"),
        ("GET", "/api/v1/scores/a{c}b"),
        ("DELETE", "/api/v1/notes/a{c}b"),
        ("GET", "/api/v1/evaluators/a{c}b"),
        ("DELETE", "/api/v1/score-configs/a{c}b"),
        ("DELETE", "/api/v1/shares/a{c}b"),
        ("GET", "/api/v1/evaluation-runs/a{c}b"),
    ],
)
def test_a_control_character_in_a_path_id_is_a_400(
    server: Any, method: str, path: str, character: str
) -> None:
    answer = server.http.request(method, path.format(c=quote(character, safe="")))
    assert answer.status_code == 400, answer.text
    assert f"U+{ord(character):04X}" in answer.json()["error"]


def test_a_page_naming_an_id_with_a_control_character_is_a_400_page(server: Any) -> None:
    with _web(server) as web:
        for path in ("/sessions/a%1Bb", "/traces/a%00b", "/sessions/a%E2%80%AEb"):
            _a_400_page_saying(web.get(path), "control character")
        # A plain unknown id is still the 404 page.
        assert web.get("/sessions/no-such-session").status_code == 404
