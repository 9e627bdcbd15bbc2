"""Scores, score configurations and notes through the real server's JSON API."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.conftest import ProjectClient
from tests.otlp import new_span_id, new_trace_id, span


def _session(server, session_id: str, turns: int = 2) -> list[str]:
    """Send ``turns`` traces of one session; return their trace ids."""
    spans, trace_ids = [], []
    for turn in range(turns):
        trace_id = new_trace_id()
        trace_ids.append(trace_id)
        spans.append(
            span(
                trace_id,
                new_span_id(),
                name=f"turn-{turn}",
                start_ns=1_790_000_000_000_000_000 + turn * 10**9,
                attributes={"threadline.session.id": session_id, "threadline.user.id": "ann"},
            )
        )
    server.send(spans)
    return trace_ids


def _post(server, body, **headers) -> httpx.Response:
    return server.http.post("/api/v1/scores", json=body, headers=headers)


def test_a_score_on_a_session_shows_in_the_list_and_detail(server):
    sid = f"s-{uuid.uuid4().hex[:8]}"
    _session(server, sid)
    response = _post(server, {"name": "helpful", "value": 4, "session_id": sid, "comment": "ok"})
    assert response.status_code == 200, response.text
    written = response.json()
    assert written["data_type"] == "numeric" and written["value"] == 4.0
    assert written["source"] == "api" and written["comment"] == "ok"
    _post(server, {"name": "helpful", "value": 2, "session_id": sid})
    _post(server, {"name": "resolved", "value": True, "session_id": sid})
    detail = server.get(f"/api/v1/sessions/{sid}")
    assert detail["scores"]["helpful"] == {"count": 2, "average": 3.0, "label": None}
    assert detail["scores"]["resolved"] == {"count": 1, "average": 1.0, "label": None}
    listed = server.get("/api/v1/sessions", q=sid, window="all")["items"]
    assert listed[0]["scores"]["helpful"]["average"] == 3.0
    scores = server.get("/api/v1/scores", session_id=sid)["items"]
    assert sorted(s["name"] for s in scores) == ["helpful", "helpful", "resolved"]


def test_trace_and_span_scores_roll_up_into_the_trace(server):
    sid = f"s-{uuid.uuid4().hex[:8]}"
    first, _ = _session(server, sid)
    span_id = new_span_id()
    _post(server, {"name": "tone", "value": "friendly", "trace_id": first})
    _post(server, {"name": "tone", "value": "curt", "trace_id": first, "span_id": span_id})
    trace = server.get(f"/api/v1/traces/{first}")
    assert trace["scores"]["tone"] == {"count": 2, "average": None, "label": "curt"}
    detail = server.get(f"/api/v1/sessions/{sid}")
    assert detail["scores"] == {}
    assert detail["traces"][0]["scores"]["tone"]["label"] == "curt"
    by_span = server.get("/api/v1/scores", trace_id=first, span_id=span_id)["items"]
    assert [s["value"] for s in by_span] == ["curt"]
    # Written with the trace id alone, they are the session's scores too (as written:
    # no session id of their own).
    by_session = server.get("/api/v1/scores", session_id=sid)["items"]
    assert [s["value"] for s in by_session] == ["curt", "friendly"]
    assert [s["session_id"] for s in by_session] == [None, None]


def test_a_turns_score_sent_before_its_trace_is_its_sessions(server):
    # Feedback may beat the spans: the score names a trace nobody has sent yet.
    sid = f"s-{uuid.uuid4().hex[:8]}"
    trace_id = new_trace_id()
    assert _post(server, {"name": "helpful", "value": 1, "trace_id": trace_id}).status_code == 200
    assert server.get("/api/v1/scores", session_id=sid)["items"] == []
    server.send(
        [
            span(
                trace_id,
                new_span_id(),
                name="turn",
                start_ns=1_790_000_000_000_000_000,
                attributes={"threadline.session.id": sid},
            )
        ]
    )
    listed = server.get("/api/v1/scores", session_id=sid)["items"]
    assert [(s["name"], s["trace_id"]) for s in listed] == [("helpful", trace_id)]
    detail = server.get(f"/api/v1/sessions/{sid}")
    assert detail["scores"] == {}
    assert detail["traces"][0]["scores"]["helpful"]["count"] == 1


def test_a_client_id_makes_writes_idempotent_and_replaceable(server):
    sid = f"s-{uuid.uuid4().hex[:8]}"
    _session(server, sid)
    body = {"id": "vote-1", "name": "thumbs", "value": True, "session_id": sid}
    first = _post(server, body).json()
    again = _post(server, body).json()
    assert again["created_at"] == first["created_at"] or again["value"] is True
    assert server.get(f"/api/v1/sessions/{sid}")["scores"]["thumbs"]["count"] == 1
    _post(server, {**body, "value": False})
    summary = server.get(f"/api/v1/sessions/{sid}")["scores"]["thumbs"]
    assert summary == {"count": 1, "average": 0.0, "label": None}
    assert server.get("/api/v1/scores/vote-1")["value"] is False


def test_a_batch_is_written_whole_or_not_at_all(server):
    sid = f"s-{uuid.uuid4().hex[:8]}"
    _session(server, sid)
    server.http.put(
        "/api/v1/score-configs/stars",
        json={"name": "stars", "data_type": "numeric", "min_value": 1, "max_value": 5},
    )
    batch = [{"name": "stars", "value": v, "session_id": sid} for v in (1, 5, 9)]
    response = _post(server, batch)
    assert response.status_code == 400 and "above its maximum" in response.json()["error"]
    assert server.get("/api/v1/scores", session_id=sid)["items"] == []
    response = _post(server, batch[:2])
    assert response.status_code == 200 and len(response.json()["items"]) == 2
    assert server.get(f"/api/v1/sessions/{sid}")["scores"]["stars"]["average"] == 3.0


def test_feedback_may_beat_the_spans(server):
    sid = f"s-{uuid.uuid4().hex[:8]}"
    assert _post(server, {"name": "thumbs", "value": False, "session_id": sid}).status_code == 200
    _session(server, sid)
    assert server.get(f"/api/v1/sessions/{sid}")["scores"]["thumbs"]["average"] == 0.0


def test_delete_updates_the_summary(server):
    sid = f"s-{uuid.uuid4().hex[:8]}"
    _session(server, sid)
    a = _post(server, {"name": "q", "value": 1, "session_id": sid}).json()
    _post(server, {"name": "q", "value": 3, "session_id": sid})
    assert server.http.delete(f"/api/v1/scores/{a['id']}").status_code == 204
    assert server.get(f"/api/v1/sessions/{sid}")["scores"]["q"]["average"] == 3.0
    assert server.http.delete(f"/api/v1/scores/{a['id']}").status_code == 404


def test_lists_filter_by_score(server):
    tag = uuid.uuid4().hex[:8]
    good, bad, unscored = f"good-{tag}", f"bad-{tag}", f"none-{tag}"
    for sid in (good, bad, unscored):
        _session(server, sid, turns=1)
    _post(server, {"name": "resolved", "value": True, "session_id": good})
    _post(server, {"name": "resolved", "value": False, "session_id": bad})
    _post(server, {"name": "category", "value": "billing", "session_id": bad})

    def ids(**params):
        return {
            s["session_id"]
            for s in server.get("/api/v1/sessions", q=tag, window="all", **params)["items"]
        }

    assert ids(score="resolved=true") == {good}
    assert ids(score="resolved<1") == {bad}
    assert ids(score="category=billing") == {bad}
    assert ids(score="category!=billing") == set()
    assert ids(missing_score="resolved") == {unscored}
    assert ids(score=["resolved>=0", "category=billing"]) == {bad}
    response = server.http.get("/api/v1/sessions", params={"score": "resolved>abc"})
    assert response.status_code == 400


def test_bad_scores_get_a_clear_4xx(server):
    sid = f"s-{uuid.uuid4().hex[:8]}"
    server.http.put(
        "/api/v1/score-configs/mood",
        json={"name": "mood", "data_type": "categorical", "labels": ["happy", "sad"]},
    )
    cases = [
        ({"name": "x", "value": 1}, 400, "names no target"),
        ({"name": "x", "value": 1, "span_id": "a" * 16}, 400, "names no target"),
        ({"name": "x", "value": 1, "session_id": sid, "data_type": "weird"}, 422, "data_type"),
        ({"name": "mood", "value": "angry", "session_id": sid}, 400, "not one of its labels"),
        ({"name": "mood", "value": 3, "session_id": sid}, 400, "must be a label"),
        ({"name": "x", "value": "nan", "session_id": sid, "data_type": "numeric"}, 400, "finite"),
        # Two of 1.7e308 overflowed the session's sum: its average became null.
        ({"name": "x", "value": 1.7e308, "session_id": sid}, 400, "past ±1e+15"),
        ({"name": "x", "value": "-2e15", "session_id": sid, "data_type": "numeric"}, 400, "past"),
        ({"name": "x", "value": 1, "session_id": sid, "comment": "c" * 10_001}, 422, "comment"),
        ({"name": "x", "value": 1, "trace_id": "not-hex"}, 422, "trace_id"),
        ({"name": "", "value": 1, "session_id": sid}, 422, "name"),
    ]
    for body, status, words in cases:
        response = _post(server, body)
        assert response.status_code == status, (body, response.text)
        assert words in response.json()["error"], (body, response.text)
    bad_configs = [
        {"name": "c", "data_type": "categorical"},
        {"name": "c", "data_type": "numeric", "min_value": 5, "max_value": 1},
        {"name": "c", "data_type": "numeric", "labels": ["a"]},
        {"name": "c", "data_type": "numeric", "max_value": 1e300},
    ]
    for config in bad_configs:
        assert server.http.put("/api/v1/score-configs/c", json=config).status_code == 400
    assert server.http.put("/api/v1/score-configs/d", json=bad_configs[1]).status_code == 400
    assert server.get("/api/v1/scores", session_id=sid)["items"] == []
    # The bound itself is a score.
    assert _post(server, {"name": "x", "value": -1e15, "session_id": sid}).status_code == 200


def test_score_configs_and_notes(server):
    config = {"name": "stars", "data_type": "numeric", "min_value": 1, "max_value": 5}
    assert server.http.put("/api/v1/score-configs/stars", json=config).status_code == 200
    listed = server.get("/api/v1/score-configs")["items"]
    assert listed[0]["name"] == "stars" and listed[0]["max_value"] == 5
    assert server.http.delete("/api/v1/score-configs/stars").status_code == 204
    assert server.get("/api/v1/score-configs")["items"] == []

    sid = f"tenant/{uuid.uuid4().hex[:8]}"
    note = server.http.post("/api/v1/notes", json={"session_id": sid, "body": "refund given"})
    assert note.status_code == 201, note.text
    notes = server.get("/api/v1/notes", session_id=sid)["items"]
    assert [n["body"] for n in notes] == ["refund given"]
    assert server.http.delete(f"/api/v1/notes/{note.json()['id']}").status_code == 204
    assert server.get("/api/v1/notes", session_id=sid)["items"] == []


def test_users_show_score_averages(server):
    sid = f"s-{uuid.uuid4().hex[:8]}"
    first, second = _session(server, sid)
    _post(server, {"name": "q", "value": 2, "trace_id": first})
    _post(server, {"name": "q", "value": 4, "trace_id": second})
    _post(server, {"name": "q", "value": 6, "session_id": sid})
    users = server.get("/api/v1/users", window="all")["items"]
    ann = next(u for u in users if u["user_id"] == "ann")
    assert ann["scores"]["q"] == {"count": 3, "average": 4.0, "label": None}


def test_key_scopes(threadline_process):
    name = f"key-scopes-{uuid.uuid4().hex[:8]}"
    server = ProjectClient(
        threadline_process.base_url, threadline_process.new_key(name), threadline_process
    )
    sid = f"s-{uuid.uuid4().hex[:8]}"
    _session(server, sid)
    scores_key = server.new_key("scores")
    ingest_key = server.new_key("ingest")
    # Only the CLI sets a project's allowed origins.
    threadline_process.cli("projects", "allow-origin", "--project", name, "https://app.example")
    base = threadline_process.base_url

    def post(key, body, **headers):
        return httpx.post(
            base + "/api/v1/scores",
            json=body,
            headers={"Authorization": f"Bearer {key}", **headers},
        )

    body = {"id": "eu-1", "name": "thumbs", "value": True, "session_id": sid, "source": "eval"}
    allowed = post(scores_key, body, Origin="https://app.example")
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["source"] == "end-user"
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    assert post(scores_key, body, Origin="https://evil.example").status_code == 403
    # A scores key reads nothing and sends no spans.
    headers = {"Authorization": f"Bearer {scores_key}"}
    assert httpx.get(base + "/api/v1/scores", headers=headers).status_code == 403
    assert httpx.delete(base + "/api/v1/scores/eu-1", headers=headers).status_code == 403
    assert httpx.post(base + "/v1/traces", content=b"", headers=headers).status_code == 403
    # ... and cannot overwrite what others wrote.
    server.http.post("/api/v1/scores", json={**body, "id": "api-1"})
    assert post(scores_key, {**body, "id": "api-1"}).status_code == 403
    # An ingest-only key (the SDK's, in a back end) writes scores with their source.
    sdk = post(ingest_key, {**body, "id": "sdk-1", "source": "sdk"})
    assert sdk.status_code == 200 and sdk.json()["source"] == "sdk"
    preflight = httpx.options(
        base + "/api/v1/scores",
        headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 204
    assert "Authorization" in preflight.headers["access-control-allow-headers"]


def test_a_name_keeps_the_type_of_its_first_score(server_on_each_store):
    server = server_on_each_store
    sid = f"s-{uuid.uuid4().hex[:8]}"
    first = _post(server, {"name": "helpful", "value": True, "session_id": sid})
    assert first.status_code == 200, first.text

    # A number on a true/false name would make ``helpful>=4`` find nothing: refused,
    # naming the name and both types.
    refused = _post(server, {"name": "helpful", "value": 4, "session_id": sid})
    assert refused.status_code == 409, refused.text
    error = refused.json()["error"]
    assert "'helpful'" in error and "boolean" in error and "numeric" in error, error
    # The same type in any spelling is welcome, and so is a first score of a new name.
    same = {"name": "helpful", "value": "no", "data_type": "boolean", "session_id": sid}
    assert _post(server, same).status_code == 200
    assert _post(server, {"name": "tone", "value": "calm", "session_id": sid}).status_code == 200

    # A batch is refused whole: the first of its scores of a new name sets the type.
    batch = [
        {"name": "fresh", "value": 2, "session_id": sid},
        {"name": "fresh", "value": "high", "session_id": sid},
    ]
    refused = _post(server, batch)
    assert refused.status_code == 409, refused.text
    assert "numeric" in refused.json()["error"] and "categorical" in refused.json()["error"]
    written = {
        s["name"]: s["data_type"] for s in server.get("/api/v1/scores", session_id=sid)["items"]
    }
    assert written == {"helpful": "boolean", "tone": "categorical"}

    # A name whose scores are all deleted takes a new type.
    for score in server.get("/api/v1/scores", session_id=sid, name="helpful")["items"]:
        assert server.http.delete(f"/api/v1/scores/{score['id']}").status_code == 204
    again = _post(server, {"name": "helpful", "value": 4, "session_id": sid})
    assert again.status_code == 200, again.text
    assert again.json()["data_type"] == "numeric"


def test_a_value_without_a_type_takes_its_names_type(server_on_each_store):
    """A value that reads as its name's type takes it ("no" and 0 on a boolean name, "4.5"
    on a numeric one); one that does not is typed by itself, and refused naming both."""
    server = server_on_each_store
    sid = f"s-{uuid.uuid4().hex[:8]}"
    for first in (
        {"name": "helpful", "value": True},
        {"name": "stars", "value": 4},
        {"name": "tone", "value": "calm"},
    ):
        assert _post(server, {**first, "session_id": sid}).status_code == 200
    batch = [
        {"name": "helpful", "value": "no"},
        {"name": "helpful", "value": "False"},
        {"name": "helpful", "value": 0},
        {"name": "helpful", "value": 1},
        {"name": "stars", "value": "4.5"},
        {"name": "tone", "value": "5"},
    ]
    written = _post(server, [{**s, "session_id": sid} for s in batch])
    assert written.status_code == 200, written.text
    assert [(s["data_type"], s["value"]) for s in written.json()["items"]] == [
        ("boolean", False),
        ("boolean", False),
        ("boolean", False),
        ("boolean", True),
        ("numeric", 4.5),
        ("categorical", "5"),
    ]
    for value, held, given in (
        ("maybe", "boolean", "categorical"),
        (2, "boolean", "numeric"),
    ):
        refused = _post(server, {"name": "helpful", "value": value, "session_id": sid})
        assert refused.status_code == 409, refused.text
        error = refused.json()["error"]
        assert f"'helpful' holds {held} values: a {given} score" in error, error
    refused = _post(server, {"name": "stars", "value": True, "session_id": sid})
    assert refused.status_code == 409 and "holds numeric" in refused.json()["error"]
    # A new name: the batch's first score gives the type to the untyped ones after it.
    fresh = [{"name": "fresh", "value": False}, {"name": "fresh", "value": "yes"}]
    written = _post(server, [{**s, "session_id": sid} for s in fresh])
    assert written.status_code == 200, written.text
    assert [s["value"] for s in written.json()["items"]] == [False, True]


def test_a_configuration_of_another_type_than_its_names_scores_is_refused(
    server_on_each_store,
):
    server = server_on_each_store
    sid = f"s-{uuid.uuid4().hex[:8]}"
    assert _post(server, {"name": "helpful", "value": True, "session_id": sid}).status_code == 200
    numeric = {"name": "helpful", "data_type": "numeric", "min_value": 0, "max_value": 5}
    refused = server.http.put("/api/v1/score-configs/helpful", json=numeric)
    assert refused.status_code == 409, refused.text
    error = refused.json()["error"]
    assert "'helpful' holds boolean values: it cannot be configured as numeric" in error, error
    assert server.get("/api/v1/score-configs")["items"] == []
    boolean = {"name": "helpful", "data_type": "boolean"}
    assert server.http.put("/api/v1/score-configs/helpful", json=boolean).status_code == 200
    # A configured name keeps its type too: changing it is refused while scores hold it.
    assert server.http.put("/api/v1/score-configs/helpful", json=numeric).status_code == 409
    assert [c["data_type"] for c in server.get("/api/v1/score-configs")["items"]] == ["boolean"]


def test_writers_racing_to_type_a_new_name_leave_it_one_type(server):
    """Two writers giving each new name a type of their own, at once: the type check is
    part of SQLite's write transaction, so one wins (200) and the other is refused (409),
    never both written."""
    sid = f"s-{uuid.uuid4().hex[:8]}"
    names = [f"raced-{i}" for i in range(24)]
    barrier = threading.Barrier(2, timeout=60)

    def write(value: bool | float) -> list[int]:
        with httpx.Client(
            base_url=server.http.base_url, headers=server.http.headers, timeout=60
        ) as http:
            statuses = []
            for name in names:
                barrier.wait()
                body = {"name": name, "value": value, "session_id": sid}
                statuses.append(http.post("/api/v1/scores", json=body).status_code)
            return statuses

    with ThreadPoolExecutor(2) as pool:
        flags, numbers = pool.map(write, [True, 3.0])
    assert sorted(set(flags + numbers)) == [200, 409]
    assert all(sorted(pair) == [200, 409] for pair in zip(flags, numbers, strict=True))
    for name in names:
        held = {s["data_type"] for s in server.get("/api/v1/scores", name=name)["items"]}
        assert len(held) == 1, (name, held)
