"""Project isolation, route by route: with project A's sessions, traces and users
stored, a key of project B walks every route the app has and never sees A's ids or
text, and cannot write into A.

The routes are enumerated from the app itself (``create_app``) and checked against
the table below both ways: a new route that is not walked here fails the test.
"""

from __future__ import annotations

import base64
import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus, urlencode

import httpx
import pytest

from tests.otlp import new_span_id, new_trace_id, request, span
from threadline.server.app import create_app
from threadline.server.settings import Settings
from threadline.server.store.sqlite import SQLiteStore

pytestmark = pytest.mark.slow

COOKIE = "threadline_session"


# --- the routes of the app ------------------------------------------------------------


def _flatten(routes: list, prefix: str = "") -> Iterator[tuple[str, str]]:
    """(method, path) of every route, through included routers (FastAPI keeps them
    nested in recent versions) and mounts (method "MOUNT")."""
    for route in routes:
        original = getattr(route, "original_router", None)
        if original is not None:
            context = getattr(route, "include_context", None)
            yield from _flatten(original.routes, prefix + (getattr(context, "prefix", "") or ""))
        elif hasattr(route, "methods") and route.methods is not None:
            for method in sorted(set(route.methods) - {"HEAD"}):
                yield method, prefix + route.path
        else:
            yield "MOUNT", prefix + route.path


@pytest.fixture(scope="module")
def app_routes(tmp_path_factory: pytest.TempPathFactory) -> set[tuple[str, str]]:
    data_dir = tmp_path_factory.mktemp("routes")
    app = create_app(Settings(data_dir=data_dir), SQLiteStore(data_dir / "threadline.db"))
    return set(_flatten(app.routes))


# --- project A's data, and B's view ---------------------------------------------------


@dataclass
class ProjectA:
    key: str
    session_id: str
    user_id: str
    trace_ids: list[str]
    span_ids: list[str]
    marker: str  # text in A's names, inputs and outputs
    score_id: str = ""
    note_id: str = ""
    run_id: str = ""

    @property
    def config_name(self) -> str:
        return f"cfg-{self.marker}"

    @property
    def evaluator(self) -> str:
        return f"eval-{self.marker}"

    def secrets(self) -> list[str]:
        return [
            self.session_id,
            self.user_id,
            self.marker,
            *self.trace_ids,
            *self.span_ids,
            *filter(None, [self.score_id, self.note_id, self.run_id]),
        ]


@pytest.fixture
def project_a(threadline_process) -> ProjectA:
    tag = uuid.uuid4().hex[:12]
    a = ProjectA(
        threadline_process.new_key(f"iso-a-{tag}"),
        f"sess-a-{tag}",
        f"user-a-{tag}",
        [],
        [],
        f"secret-of-a-{tag}",
    )
    spans = []
    for turn in range(3):
        trace_id, root = new_trace_id(), new_span_id()
        child = new_span_id()
        a.trace_ids.append(trace_id)
        a.span_ids += [root, child]
        spans.append(
            span(
                trace_id,
                root,
                name=f"{a.marker}-turn-{turn}",
                attributes={
                    "threadline.session.id": a.session_id,
                    "threadline.user.id": a.user_id,
                    "threadline.span.input": f"question {a.marker}",
                    "threadline.span.output": f"answer {a.marker}",
                    "threadline.tags": '["a-only"]',
                    "threadline.metadata.owner": a.marker,
                },
                error=turn == 2,
            )
        )
        spans.append(
            span(
                trace_id,
                child,
                parent=root,
                name=f"{a.marker}-llm",
                attributes={
                    "gen_ai.request.model": "gpt-4o-mini",
                    "gen_ai.usage.input_tokens": 10,
                    "gen_ai.usage.output_tokens": 5,
                },
            )
        )
    response = httpx.post(
        threadline_process.base_url + "/v1/traces",
        content=request(spans).SerializeToString(),
        headers={"Authorization": f"Bearer {a.key}", "Content-Type": "application/x-protobuf"},
    )
    assert response.status_code == 200, response.text
    # A's scores, score configuration and note.
    auth = {"Authorization": f"Bearer {a.key}"}
    a.score_id = f"score-a-{tag}"
    base = threadline_process.base_url
    for body in (
        {
            "id": a.score_id,
            "name": a.config_name,
            "value": 3,
            "session_id": a.session_id,
            "comment": a.marker,
        },
        {"name": a.config_name, "value": 1, "trace_id": a.trace_ids[0], "span_id": a.span_ids[0]},
    ):
        assert httpx.post(base + "/api/v1/scores", json=body, headers=auth).status_code == 200
    config = {"name": a.config_name, "data_type": "numeric", "description": a.marker}
    response = httpx.put(base + f"/api/v1/score-configs/{a.config_name}", json=config, headers=auth)
    assert response.status_code == 200, response.text
    note = {"session_id": a.session_id, "body": f"note {a.marker}"}
    response = httpx.post(base + "/api/v1/notes", json=note, headers=auth)
    assert response.status_code == 201, response.text
    a.note_id = response.json()["id"]
    # A's evaluator, and a run of it on A's session (its judge is unreachable: it fails).
    response = httpx.post(base + "/api/v1/evaluators", json=_evaluator(a.evaluator), headers=auth)
    assert response.status_code == 201, response.text
    response = httpx.post(
        base + "/api/v1/evaluation-runs",
        json={"evaluator": a.evaluator, "session_id": a.session_id},
        headers=auth,
    )
    assert response.status_code == 202, response.text
    a.run_id = response.json()["items"][0]["id"]
    return a


def _evaluator(name: str, prompt: str = "Was it resolved?") -> dict:
    return {
        "name": name,
        "prompt": prompt,
        "judge": {"base_url": "http://127.0.0.1:9/v1", "model": "gpt-4o-mini"},
        "score": {"name": name, "data_type": "boolean"},
        "online": False,
    }


def _assert_hidden(a: ProjectA, response: httpx.Response | str, where: str) -> None:
    """No id or text of A's in what B got, except what B itself asked for (a 404 names
    the id it did not find, in the URL or the form it posted; a page echoes its
    filters)."""
    text = response if isinstance(response, str) else response.text
    asked = ""
    if not isinstance(response, str):
        sent = response.request.read().decode("utf-8", "replace")
        asked = str(response.request.url) + " " + unquote_plus(sent)
    for secret in a.secrets():
        if secret in asked:
            text = text.replace(secret, "")
        assert secret not in text, f"{where} shows A's {secret!r} to B"


def _read_stream(base_url: str, path: str, cookies: dict[str, str], seconds: float) -> str:
    """The first ``seconds`` of an SSE stream (ready, the first poll, and what follows)."""
    received: list[str] = []
    deadline = time.monotonic() + seconds
    with (
        httpx.Client(base_url=base_url, cookies=cookies, timeout=seconds + 5) as client,
        client.stream("GET", path, headers={"Accept": "text/event-stream"}) as response,
    ):
        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith("text/event-stream")
        for chunk in response.iter_text():
            received.append(chunk)
            if time.monotonic() > deadline:
                break
    return "".join(received)


def _enum_values(schema: dict[str, Any]) -> set[str]:
    """The values an OpenAPI parameter schema's enums allow, through ``anyOf``."""
    values = set(schema.get("enum", ()))
    for alternative in schema.get("anyOf", ()):
        values |= _enum_values(alternative)
    return values


def _all_time_where_windowed(base_url: str) -> Callable[[httpx.Request], None]:
    """A request hook adding ``window=all`` to the JSON API routes whose OpenAPI
    operation declares a ``window`` that takes ``all`` (their paths have no template;
    the metrics' range window has no ``all``: a chart's range has a start)."""
    spec = httpx.get(base_url + "/openapi.json").json()
    windowed = {
        path
        for path, operations in spec["paths"].items()
        for operation in operations.values()
        if any(
            p["name"] == "window" and "all" in _enum_values(p["schema"])
            for p in operation.get("parameters", [])
        )
    }
    assert {"/api/v1/sessions", "/api/v1/export/traces"} <= windowed, windowed

    def hook(request: httpx.Request) -> None:
        if request.url.path in windowed and "window" not in request.url.params:
            request.url = request.url.copy_merge_params({"window": "all"})

    return hook


# The pages whose time range has "all" (the lists, their exports and live streams).
_LISTED_PAGES = {
    "/traces",
    "/sessions",
    "/users",
    "/export/traces",
    "/export/sessions",
    "/live/traces",
    "/live/sessions",
}


def _all_time_on_lists(request: httpx.Request) -> None:
    """A request hook adding ``range=all`` to the pages that take it (a page refuses a
    parameter it does not take, as the JSON API does)."""
    if request.url.path in _LISTED_PAGES and "range" not in request.url.params:
        request.url = request.url.copy_merge_params({"range": "all"})


# --- the walk ---------------------------------------------------------------------------


def test_a_key_of_project_b_sees_and_writes_nothing_of_project_a(
    threadline_process, project_a: ProjectA, app_routes: set[tuple[str, str]]
) -> None:
    a = project_a
    base = threadline_process.base_url
    b_key = threadline_process.new_key(f"iso-b-{uuid.uuid4().hex[:12]}")
    # A's spans are of a fixed day months ago: the lists (and exports) are asked for all
    # time, the API's by window= and the web UI's by range= (only on the routes that
    # take them: both refuse a query parameter a route does not take; the default is the
    # last 7 days), or a leak would go unseen.
    everything = {"request": [_all_time_where_windowed(base)]}
    all_time = {"request": [_all_time_on_lists]}
    api = httpx.Client(
        base_url=base,
        headers={"Authorization": f"Bearer {b_key}"},
        timeout=30,
        event_hooks=everything,
    )
    web = httpx.Client(base_url=base, cookies={COOKIE: b_key}, event_hooks=all_time, timeout=30)
    a_api = httpx.Client(
        base_url=base,
        headers={"Authorization": f"Bearer {a.key}"},
        timeout=30,
        event_hooks=everything,
    )
    a_web = httpx.Client(base_url=base, cookies={COOKIE: a.key}, event_hooks=all_time, timeout=30)
    trace, span_id, session = a.trace_ids[0], a.span_ids[0], a.session_id
    # B's own trace reuses A's trace id and session id: written into B, never into A.
    b_span = new_span_id()

    def hidden(response: httpx.Response, *statuses: int) -> None:
        where = f"{response.request.method} {response.request.url}"
        assert response.status_code in statuses, (where, response.status_code, response.text)
        _assert_hidden(a, response, where)

    def assert_no_matches(response: httpx.Response) -> None:
        assert response.json() == [], response.request.url

    def empty_list(response: httpx.Response) -> None:
        # A filter that matches only A's data finds nothing for B.
        hidden(response, 200)
        assert response.json()["items"] == [], response.request.url

    # A's spans start at tests.otlp's BASE_NS: the days around it.
    around_a = {"start": "2026-09-20T00:00:00Z", "end": "2026-09-23T00:00:00Z"}

    def metrics_count_nothing(response: httpx.Response) -> None:
        counts = [s["values"] for s in response.json()["series"] if s["metric"] == "traces"]
        assert counts and not any(any(values) for values in counts), response.text

    def a_sees(response: httpx.Response) -> None:
        # The positive control: the same request with A's credentials finds A's data.
        assert response.status_code == 200, (response.request.url, response.status_code)
        assert any(secret in response.text for secret in a.secrets()), response.request.url

    def ingest_into_b(path: str = "/v1/traces", **auth: str) -> None:
        body = request(
            [
                span(
                    trace,
                    b_span,
                    name="b-span",
                    attributes={"threadline.session.id": session, "threadline.user.id": a.user_id},
                )
            ]
        )
        response = api.post(
            path,
            content=body.SerializeToString(),
            headers={"Content-Type": "application/x-protobuf", **auth},
        )
        assert response.status_code == 200, response.text
        # A's trace is untouched: same spans, same name, no span of B's.
        stored = a_api.get(f"/api/v1/traces/{trace}").json()
        assert stored["span_count"] == 2 and b_span not in {s["span_id"] for s in stored["spans"]}
        assert stored["name"].startswith(a.marker)
        assert a_api.get(f"/api/v1/sessions/{session}").json()["trace_count"] == 3
        # B sees only its own span under that id.
        mine = api.get(f"/api/v1/traces/{trace}").json()
        assert [s["span_id"] for s in mine["spans"]] == [b_span]
        _assert_hidden(a, str([s["name"] for s in mine["spans"]]), "B's own trace")

    def events_into_b() -> None:
        # GenAI log events naming A's span, sent with B's key: B's, never A's span's.
        from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
            ExportLogsServiceRequest,
        )
        from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

        def send(trace_id: str, span: str) -> None:
            export = ExportLogsServiceRequest()
            records = export.resource_logs.add().scope_logs.add().log_records
            for name, text in (
                ("gen_ai.user.message", "b-event-ask"),
                ("gen_ai.choice", "b-reply"),
            ):
                record = records.add(
                    event_name=name,
                    trace_id=bytes.fromhex(trace_id),
                    span_id=bytes.fromhex(span),
                    time_unix_nano=1,
                )
                content = KeyValue(key="content", value=AnyValue(string_value=text))
                if name == "gen_ai.choice":
                    said = AnyValue()
                    said.kvlist_value.values.append(content)
                    record.body.kvlist_value.values.append(KeyValue(key="message", value=said))
                else:
                    record.body.kvlist_value.values.append(content)
            response = api.post(
                "/v1/logs",
                content=export.SerializeToString(),
                headers={"Content-Type": "application/x-protobuf"},
            )
            hidden(response, 200)

        before = a_api.get(f"/api/v1/traces/{trace}").json()
        send(trace, span_id)
        after = a_api.get(f"/api/v1/traces/{trace}")
        assert after.json()["spans"] == before["spans"]
        assert "b-event-ask" not in after.text and "b-reply" not in after.text
        # The positive control: a span of B's own takes B's events.
        own_trace, own_span = new_trace_id(), new_span_id()
        send(own_trace, own_span)
        api.post(
            "/v1/traces",
            content=request([span(own_trace, own_span, name="b-chat")]).SerializeToString(),
            headers={"Content-Type": "application/x-protobuf"},
        )
        (mine,) = api.get(f"/api/v1/traces/{own_trace}").json()["spans"]
        assert mine["input"] == [{"role": "user", "content": "b-event-ask"}]
        assert "b-event-ask" not in a_api.get(f"/api/v1/traces/{trace}").text

    def score_into_b(path: str = "/api/v1/scores") -> None:
        # A's score id and session id, written with B's key: a score of B's. Langfuse's
        # routes take the key as the Basic password and the score in their own shape.
        name = "b-score" + path.replace("/", "-")  # which route wrote B's score
        body: object = {"id": a.score_id, "name": name, "value": 9, "session_id": session}
        langfuse = {"id": a.score_id, "name": name, "value": 9, "sessionId": session}
        headers = {"Authorization": "Basic " + base64.b64encode(f"pk:{b_key}".encode()).decode()}
        if path == "/api/public/scores":
            body, answered = [langfuse], 202
        elif path == "/api/public/ingestion":
            event = {"id": "e", "type": "score-create", "body": langfuse}
            body, answered = {"batch": [event]}, 207
        else:
            headers, answered = {}, 200
        response = api.post(path, json=body, headers=headers)
        assert response.status_code == answered, response.text
        assert "errors" not in response.json() or response.json()["errors"] == []
        assert a_api.get(f"/api/v1/scores/{a.score_id}").json()["value"] == 3
        assert a_api.get(f"/api/v1/sessions/{session}").json()["scores"][a.config_name] == {
            "count": 1,
            "average": 3.0,
            "label": None,
        }
        assert api.get(f"/api/v1/scores/{a.score_id}").json()["name"] == name

    def config_into_b() -> None:
        config = {"name": a.config_name, "data_type": "boolean"}
        response = api.put(f"/api/v1/score-configs/{a.config_name}", json=config)
        assert response.status_code == 200, response.text
        mine = a_api.get("/api/v1/score-configs").json()["items"]
        assert [c["data_type"] for c in mine if c["name"] == a.config_name] == ["numeric"]

    def inference_off_in_b() -> None:
        # B's key turns inference off in B; A's project keeps its own choice.
        path = "/api/v1/settings/session-inference"
        response = api.put(path, json={"enabled": False})
        assert response.status_code == 200 and response.json() == {"enabled": False}
        assert a_api.get(path).json() == {"enabled": True}
        hidden(api.put(path, json={"enabled": True}), 200)

    def note_into_b() -> None:
        response = api.post("/api/v1/notes", json={"session_id": session, "body": "b note"})
        assert response.status_code == 201, response.text
        notes = a_api.get("/api/v1/notes", params={"session_id": session}).json()["items"]
        assert [n["body"] for n in notes] == [f"note {a.marker}"]

    def evaluator_into_b(method: str) -> None:
        # A's evaluator name, written with B's key: an evaluator of B's.
        body = _evaluator(a.evaluator, prompt="b prompt")
        if method == "POST":
            response = api.post("/api/v1/evaluators", json=body)
            assert response.status_code == 201, response.text
        else:
            response = api.put(f"/api/v1/evaluators/{a.evaluator}", json=body)
            assert response.status_code == 200, response.text
        assert a_api.get(f"/api/v1/evaluators/{a.evaluator}").json()["prompt"] == "Was it resolved?"

    def runs_into_b() -> None:
        # B cannot run A's evaluator, nor its own on A's session.
        # The answer names the evaluator B asked for (in its body), as for any unknown name.
        asked = api.post("/api/v1/evaluation-runs", json={"evaluator": a.evaluator})
        unknown = api.post("/api/v1/evaluation-runs", json={"evaluator": "no-such-name"})
        assert asked.status_code == 404 and unknown.status_code == 404
        assert asked.text.replace(a.evaluator, "?") == unknown.text.replace("no-such-name", "?")
        assert api.put("/api/v1/evaluators/b-own", json=_evaluator("b-own")).status_code == 200
        asked = api.post(
            "/api/v1/evaluation-runs", json={"evaluator": "b-own", "session_id": session}
        )
        unknown = api.post(
            "/api/v1/evaluation-runs", json={"evaluator": "b-own", "session_id": "no-such-id"}
        )
        assert asked.status_code == 404 and unknown.status_code == 404
        assert asked.text.replace(session, "?") == unknown.text.replace("no-such-id", "?")
        assert a_api.get("/api/v1/evaluation-runs").json()["items"][0]["id"] == a.run_id

    def evaluate_form() -> None:
        # The answer names the evaluator B's form asked for, as for any unknown name.
        def post(name: str) -> httpx.Response:
            return web.post(
                "/evaluate",
                content=f"session_id={session}&evaluator={name}".encode(),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )

        asked, unknown = post(a.evaluator), post("no-such-name")
        assert asked.status_code == 404 and unknown.status_code == 404
        assert asked.text.replace(a.evaluator, "?") == unknown.text.replace("no-such-name", "?")
        a_sees(a_api.get("/api/v1/evaluation-runs", params={"session_id": session}))

    def evaluator_form() -> None:
        form = "&".join(
            [
                "name=b-form",
                "prompt=b",
                "base_url=http://127.0.0.1:9/v1",
                "model=m",
                "score_type=boolean",
            ]
        )
        response = web.post(
            "/evaluators",
            content=form.encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 303, response.text
        hidden(web.get("/evaluators"), 200)
        assert api.get("/api/v1/evaluators/b-form").status_code == 200
        assert a_api.get("/api/v1/evaluators/b-form").status_code == 404

    def delete_evaluator_form() -> None:
        # The answer names the evaluator B asked to delete, as for any unknown name.
        def post(name: str) -> httpx.Response:
            return web.post(
                "/evaluators/delete",
                content=f"name={name}".encode(),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )

        asked, unknown = post(a.evaluator), post("no-such-name")
        assert asked.status_code == 404 and unknown.status_code == 404
        assert asked.text.replace(a.evaluator, "?") == unknown.text.replace("no-such-name", "?")
        a_sees(a_api.get(f"/api/v1/evaluators/{a.evaluator}"))

    def bulk_delete_in_b() -> None:
        # B's filters naming A's user or text match nothing; B deleting every session it
        # has deletes none of A's.
        path = "/api/v1/sessions/delete"
        for params in ({"user_id": a.user_id}, {"q": a.marker}, {"tag": "a-only"}):
            hidden(api.post(path, params=params, json={"dry_run": True}), 200)
            assert api.post(path, params=params, json={"dry_run": True}).json()["matched"] == 0
        mine = api.post(path, json={"dry_run": True}).json()["matched"]
        hidden(api.post(path, json={"confirm_count": mine}), 200)
        assert a_api.get(f"/api/v1/sessions/{session}").json()["trace_count"] == 3

    def exports(client: httpx.Client, path: str) -> None:
        # Every format, with filters naming A's data and with none: nothing of A's.
        for params in (
            {"format": "csv"},
            {"format": "jsonl"},
            {"format": "jsonl", "include": "spans"},
            {"format": "jsonl", "include": "spans", "user_id": a.user_id},
            {"format": "csv", "q": a.marker},
            {"format": "jsonl", "tag": "a-only"},
        ):
            hidden(client.get(path, params=params), 200)
        a_client = a_api if client is api else a_web
        a_sees(a_client.get(path, params={"format": "jsonl", "include": "spans"}))

    def a_share() -> dict:
        response = a_api.post("/api/v1/shares", json={"kind": "session", "target_id": session})
        assert response.status_code == 201, response.text
        return response.json()

    def project_rules(setting: str, a_value: dict, b_value: dict) -> Callable[[], None]:
        # A's data rules (naming A's marker) are neither shown to B nor changed by B's.
        path = f"/api/v1/settings/{setting}"

        def check() -> None:
            assert a_api.put(path, json=a_value).status_code == 200
            hidden(api.get(path), 200)
            hidden(api.put(path, json=b_value), 200)
            assert a_api.get(path).json() == {**a_api.get(path).json(), **a_value}
            if setting == "redaction":
                a_sees(a_api.get(path))

        return check

    def settings_form(setting: str, form: dict[str, str], a_value: dict) -> Callable[[], None]:
        # The Settings page's form, with B's cookie, sets B's rule; A's (naming A's
        # marker) is neither shown on B's page nor changed.
        path = f"/api/v1/settings/{setting}"

        def check() -> None:
            assert a_api.put(path, json=a_value).status_code == 200
            response = web.post(f"/settings/{setting}", data=form, headers={"Origin": base})
            assert response.status_code == 303, response.text
            hidden(web.get("/settings"), 200)
            assert a_api.get(path).json() == {**a_api.get(path).json(), **a_value}

        return check

    a_redaction = {"detectors": [], "patterns": [{"name": "a-rule", "regex": f"zz-{a.marker}-zz"}]}
    b_redaction = {"detectors": ["email"], "patterns": [{"name": "b-rule", "regex": "zz-b-zz"}]}

    def share_into_b() -> None:
        # B cannot share A's session or trace (not found, as any unknown id); a link of
        # B's own shows B's data only.
        for kind, target in [("session", session), *(("trace", t) for t in a.trace_ids)]:
            asked = api.post("/api/v1/shares", json={"kind": kind, "target_id": target})
            assert asked.status_code == 404, asked.text
            _assert_hidden(a, asked.text.replace(target, "?"), "POST /api/v1/shares")
        own = request(
            [
                span(
                    new_trace_id(),
                    new_span_id(),
                    name="b-shared",
                    attributes={"threadline.session.id": "b-shared"},
                )
            ]
        )
        sent = api.post(
            "/v1/traces",
            content=own.SerializeToString(),
            headers={"Content-Type": "application/x-protobuf"},
        )
        assert sent.status_code == 200
        mine = api.post("/api/v1/shares", json={"kind": "session", "target_id": "b-shared"})
        assert mine.status_code == 201, mine.text
        hidden(httpx.get(base + mine.json()["path"]), 200)

    def shared_page() -> None:
        # A's live link shows A's session to anyone (that is what it is for), and
        # nothing else of A's: no trace id of another session, no user, no link.
        link = a_share()
        page = httpx.get(base + link["path"])
        assert page.status_code == 200 and session in page.text
        assert a.user_id not in page.text
        # B's cookie or key changes nothing: the page reads no credentials.
        assert web.get(link["path"]).text == page.text
        # Guessed: a plain not found.
        hidden(httpx.get(base + "/shared/tls_" + "x" * 43), 404)

    def revoke_share_as_b(via_form: bool) -> None:
        link = a_share()
        if via_form:
            response = web.post("/shares/revoke", data={"id": link["id"]}, headers={"Origin": base})
        else:
            response = api.delete(f"/api/v1/shares/{link['id']}")
        assert response.status_code == 404, response.text
        _assert_hidden(a, response.text.replace(link["id"], "?"), "revoke A's link as B")
        assert httpx.get(base + link["path"]).status_code == 200

    def share_form_into_b() -> None:
        form = {"kind": "session", "target_id": session}
        asked = web.post("/shares/new", data=form, headers={"Origin": base})
        assert asked.status_code == 404, asked.text
        _assert_hidden(a, asked.text.replace(session, "?"), "POST /shares/new")

    def delete_form(kind: str, ids: list[str]) -> None:
        for target in ids:
            response = web.post(
                f"/delete/{kind}", data={f"{kind}_id": target}, headers={"Origin": base}
            )
            # The 404 page names the id B sent (in the form), as for any unknown id.
            assert response.status_code == 404, (kind, response.status_code, response.text)
            _assert_hidden(a, response.text.replace(target, "?"), f"POST /delete/{kind}")
        a_sees(a_api.get(f"/api/v1/sessions/{session}"))
        assert a_api.get(f"/api/v1/sessions/{session}").json()["trace_count"] == 3

    def form(path: str, fields: dict[str, str]) -> httpx.Response:
        # A signed-in browser's htmx form post, from the server's own origin.
        return web.post(
            path,
            data=fields,
            headers={"Origin": base, "HX-Request": "true"},
        )

    def a_scores() -> list[tuple[str, object]]:
        items = a_api.get("/api/v1/scores", params={"limit": 500}).json()["items"]
        return sorted((s["id"], s["value"]) for s in items)

    def a_notes() -> list[str]:
        items = a_api.get("/api/v1/notes", params={"session_id": session}).json()["items"]
        return [n["id"] for n in items]

    def ui_score_into_a() -> None:
        before = a_scores()
        for fields in (
            {"session_id": session, "name": "b-score", "value": "1"},
            {"session_id": session, "id": a.score_id, "name": a.config_name, "value": "9"},
            {"trace_id": trace, "span_id": span_id, "name": "b-score", "value": "1"},
            # B's own session, A's score id: changes nothing of A's.
            {"session_id": "b-session", "id": a.score_id, "name": a.config_name, "value": "9"},
        ):
            hidden(form("/ui/scores", fields), 404)
        assert a_scores() == before

    def ui_delete_a_score() -> None:
        before = a_scores()
        for fields in (
            {"session_id": "b-session", "id": a.score_id},
            {"session_id": session, "id": a.score_id},
        ):
            hidden(form("/ui/scores/delete", fields), 404)
        assert a_scores() == before

    def ui_note_into_a() -> None:
        hidden(form("/ui/notes", {"session_id": session, "body": "b note"}), 404)
        assert a_notes() == [a.note_id]

    def ui_delete_a_note() -> None:
        for fields in (
            {"session_id": "b-session", "id": a.note_id},
            {"session_id": session, "id": a.note_id},
        ):
            hidden(form("/ui/notes/delete", fields), 404)
        assert a_notes() == [a.note_id]

    def discarded(path: str) -> Callable[[], None]:
        def check() -> None:
            response = api.post(path, content=b"", headers={"Content-Type": "application/json"})
            hidden(response, 200)

        return check

    def login_as_b() -> None:
        response = httpx.post(
            base + "/login",
            content=f"key={b_key}&next=/traces".encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 303 and response.cookies.get(COOKIE) == b_key
        hidden(web.get(response.headers["location"]), 200)

    def login_form() -> None:
        hidden(httpx.get(base + "/login", params={"next": f"/traces/{trace}"}), 200)

    def logout() -> None:
        response = web.post("/logout")
        assert response.status_code == 303
        assert f"{COOKIE}=" in response.headers.get("set-cookie", "")

    def live(path: str, **params: str) -> Callable[[], None]:
        def check() -> None:
            query = urlencode({**params, "after": 0})
            text = _read_stream(base, f"{path}?{query}", {COOKIE: b_key}, seconds=2.5)
            assert "event: ready" in text
            _assert_hidden(a, text, path)

        return check

    walk: dict[tuple[str, str], Callable[[], None]] = {
        # OTLP ingest: B's key writes into B only.
        ("POST", "/v1/traces"): ingest_into_b,
        # Langfuse's path, its Basic auth carrying B's key as the secret key.
        ("POST", "/api/public/otel/v1/traces"): lambda: ingest_into_b(
            "/api/public/otel/v1/traces",
            Authorization="Basic " + base64.b64encode(f"pk-lf-b:{b_key}".encode()).decode(),
        ),
        ("POST", "/v1/logs"): events_into_b,
        ("POST", "/v1/metrics"): discarded("/v1/metrics"),
        # JSON API.
        ("GET", "/api/v1/sessions"): lambda: (
            empty_list(api.get("/api/v1/sessions", params={"user_id": a.user_id})),
            hidden(api.get("/api/v1/sessions"), 200),
            empty_list(api.get("/api/v1/sessions", params={"q": a.marker})),
            empty_list(api.get("/api/v1/sessions", params={"tag": "a-only"})),
        ),
        ("GET", "/api/v1/sessions/{session_id:path}"): lambda: hidden(
            api.get(f"/api/v1/sessions/{session}"), 404
        ),
        # Search inside a session: B's key finds nothing in A's session, by its words.
        ("GET", "/api/v1/session-search"): lambda: (
            hidden(
                api.get("/api/v1/session-search", params={"session_id": session, "q": a.marker}),
                200,
            ),
            assert_no_matches(
                api.get("/api/v1/session-search", params={"session_id": session, "q": a.marker})
            ),
            a_sees(
                a_api.get("/api/v1/session-search", params={"session_id": session, "q": a.marker})
            ),
        ),
        ("GET", "/api/v1/traces"): lambda: (
            empty_list(api.get("/api/v1/traces", params={"q": a.marker})),
            empty_list(
                api.get("/api/v1/traces", params={"session_id": session, "status": "error"})
            ),
            empty_list(api.get("/api/v1/traces", params={"metadata": f"owner={a.marker}"})),
            hidden(api.get("/api/v1/traces", params={"limit": 500}), 200),
        ),
        ("GET", "/api/v1/traces/{trace_id}"): lambda: [
            hidden(api.get(f"/api/v1/traces/{t}"), 404) for t in a.trace_ids
        ],
        # Deletion: B's key and cookie delete nothing of A's, by id or by filter.
        ("DELETE", "/api/v1/sessions/{session_id:path}"): lambda: (
            hidden(api.delete(f"/api/v1/sessions/{session}"), 404),
            a_sees(a_api.get(f"/api/v1/sessions/{session}")),
        ),
        ("DELETE", "/api/v1/traces/{trace_id}"): lambda: [
            (
                hidden(api.delete(f"/api/v1/traces/{t}"), 404),
                a_sees(a_api.get(f"/api/v1/traces/{t}")),
            )
            for t in a.trace_ids
        ],
        ("POST", "/api/v1/sessions/delete"): bulk_delete_in_b,
        # Share links: B can neither make, list nor revoke A's; A's page shows A's one
        # session to anyone holding its link, and reads no cookie.
        # A project's data rules: B's key reads and sets B's only.
        ("GET", "/api/v1/settings/retention"): project_rules(
            "retention", {"days": 36_499}, {"days": 36_500}
        ),
        ("PUT", "/api/v1/settings/retention"): project_rules(
            "retention", {"days": 36_498}, {"days": 36_500}
        ),
        ("GET", "/api/v1/settings/redaction"): project_rules("redaction", a_redaction, b_redaction),
        ("PUT", "/api/v1/settings/redaction"): project_rules("redaction", a_redaction, b_redaction),
        ("POST", "/api/v1/shares"): share_into_b,
        # Session inference: each key reads and sets its own project's choice.
        ("GET", "/api/v1/settings/session-inference"): lambda: hidden(
            api.get("/api/v1/settings/session-inference"), 200
        ),
        ("PUT", "/api/v1/settings/session-inference"): inference_off_in_b,
        ("GET", "/api/v1/shares"): lambda: (
            a_share(),
            hidden(api.get("/api/v1/shares"), 200),
            a_sees(a_api.get("/api/v1/shares")),
        ),
        ("DELETE", "/api/v1/shares/{share_id}"): lambda: revoke_share_as_b(via_form=False),
        ("GET", "/shares"): lambda: (a_share(), hidden(web.get("/shares"), 200)),
        ("POST", "/shares/new"): share_form_into_b,
        ("POST", "/shares/revoke"): lambda: revoke_share_as_b(via_form=True),
        ("GET", "/shared/{token}"): shared_page,
        # Bulk export: B's key and cookie export only B's rows.
        ("GET", "/api/v1/export/sessions"): lambda: exports(api, "/api/v1/export/sessions"),
        ("GET", "/api/v1/export/traces"): lambda: exports(api, "/api/v1/export/traces"),
        ("GET", "/export/sessions"): lambda: exports(web, "/export/sessions"),
        ("GET", "/export/traces"): lambda: exports(web, "/export/traces"),
        ("POST", "/delete/session"): lambda: delete_form("session", [session]),
        ("POST", "/delete/trace"): lambda: delete_form("trace", a.trace_ids),
        # Scores, score configurations and notes: B's key writes into B, finds none of
        # A's, and deletes nothing of A's by guessing ids.
        ("POST", "/api/v1/scores"): score_into_b,
        ("POST", "/api/public/scores"): lambda: score_into_b("/api/public/scores"),
        ("POST", "/api/public/ingestion"): lambda: score_into_b("/api/public/ingestion"),
        ("OPTIONS", "/api/v1/scores"): lambda: hidden(
            api.options("/api/v1/scores", headers={"Origin": "https://b.example"}), 204
        ),
        ("GET", "/api/v1/scores"): lambda: (
            empty_list(api.get("/api/v1/scores", params={"session_id": session})),
            empty_list(api.get("/api/v1/scores", params={"trace_id": trace})),
            empty_list(api.get("/api/v1/scores", params={"name": a.config_name})),
            hidden(api.get("/api/v1/scores"), 200),
        ),
        ("GET", "/api/v1/scores/{score_id}"): lambda: hidden(
            api.get(f"/api/v1/scores/{a.score_id}"), 404
        ),
        ("DELETE", "/api/v1/scores/{score_id}"): lambda: (
            hidden(api.delete(f"/api/v1/scores/{a.score_id}"), 404),
            a_sees(a_api.get(f"/api/v1/scores/{a.score_id}")),
        ),
        ("GET", "/api/v1/score-configs"): lambda: hidden(api.get("/api/v1/score-configs"), 200),
        ("PUT", "/api/v1/score-configs/{name}"): config_into_b,
        ("DELETE", "/api/v1/score-configs/{name}"): lambda: (
            hidden(api.delete(f"/api/v1/score-configs/{a.config_name}"), 404),
            a_sees(a_api.get("/api/v1/score-configs")),
        ),
        ("GET", "/api/v1/notes"): lambda: empty_list(
            api.get("/api/v1/notes", params={"session_id": session})
        ),
        ("POST", "/api/v1/notes"): note_into_b,
        ("DELETE", "/api/v1/notes/{note_id}"): lambda: (
            hidden(api.delete(f"/api/v1/notes/{a.note_id}"), 404),
            a_sees(a_api.get("/api/v1/notes", params={"session_id": session})),
        ),
        # Evaluators and their runs.
        ("GET", "/api/v1/evaluators"): lambda: hidden(api.get("/api/v1/evaluators"), 200),
        ("POST", "/api/v1/evaluators"): lambda: evaluator_into_b("POST"),
        ("GET", "/api/v1/evaluators/{name}"): lambda: hidden(
            api.get(f"/api/v1/evaluators/{a.evaluator}"), 404
        ),
        ("PUT", "/api/v1/evaluators/{name}"): lambda: evaluator_into_b("PUT"),
        ("DELETE", "/api/v1/evaluators/{name}"): lambda: (
            hidden(api.delete(f"/api/v1/evaluators/{a.evaluator}"), 404),
            a_sees(a_api.get(f"/api/v1/evaluators/{a.evaluator}")),
        ),
        ("GET", "/api/v1/evaluation-runs"): lambda: (
            empty_list(api.get("/api/v1/evaluation-runs", params={"session_id": session})),
            empty_list(api.get("/api/v1/evaluation-runs", params={"evaluator": a.evaluator})),
            hidden(api.get("/api/v1/evaluation-runs"), 200),
        ),
        ("GET", "/api/v1/evaluation-runs/{run_id}"): lambda: (
            hidden(api.get(f"/api/v1/evaluation-runs/{a.run_id}"), 404),
            a_sees(a_api.get(f"/api/v1/evaluation-runs/{a.run_id}")),
        ),
        ("POST", "/api/v1/evaluation-runs"): runs_into_b,
        ("GET", "/api/v1/users"): lambda: (
            hidden(api.get("/api/v1/users"), 200),
            empty_list(api.get("/api/v1/users", params={"q": a.user_id})),
        ),
        ("GET", "/api/v1/metrics"): lambda: (
            # Grouped by A's metadata key and filtered by A's user: B's figures hold
            # neither A's values nor A's counts.
            hidden(
                api.get("/api/v1/metrics", params={**around_a, "group_by": "metadata:owner"}), 200
            ),
            hidden(api.get("/api/v1/metrics", params={**around_a, "user_id": a.user_id}), 200),
            metrics_count_nothing(
                api.get("/api/v1/metrics", params={**around_a, "user_id": a.user_id})
            ),
            a_sees(a_api.get("/api/v1/metrics", params={**around_a, "group_by": "metadata:owner"})),
        ),
        # Documents and health: no project data at all.
        ("GET", "/healthz"): lambda: hidden(api.get("/healthz"), 200),
        ("GET", "/openapi.json"): lambda: hidden(api.get("/openapi.json"), 200),
        ("GET", "/docs"): lambda: hidden(api.get("/docs"), 200),
        ("MOUNT", "/docs/assets"): lambda: hidden(web.get("/docs/assets/swagger-ui.css"), 200),
        ("MOUNT", "/static"): lambda: hidden(web.get("/static/app.js"), 200),
        # Sign-in.
        ("GET", "/login"): login_form,
        ("POST", "/login"): login_as_b,
        ("POST", "/logout"): logout,
        # Pages and fragments, with B's cookie.
        ("GET", "/"): lambda: hidden(web.get("/", follow_redirects=True), 200),
        ("GET", "/traces"): lambda: (
            hidden(web.get("/traces"), 200),
            hidden(web.get("/traces", params={"q": a.marker, "range": "all"}), 200),
            hidden(web.get("/traces", params={"session_id": session}), 200),
            hidden(web.get("/traces", params={"missing_score": "nothing"}), 200),
        ),
        ("GET", "/sessions"): lambda: (
            hidden(web.get("/sessions"), 200),
            hidden(web.get("/sessions", params={"sort": "cost", "status": "error"}), 200),
            # Score filters and columns read B's score rollups only.
            hidden(web.get("/sessions", params={"missing_score": "nothing"}), 200),
            hidden(web.get("/sessions", params={"score": "b-score >= 0"}), 200),
        ),
        ("GET", "/users"): lambda: hidden(web.get("/users"), 200),
        ("GET", "/dashboard"): lambda: (
            hidden(web.get("/dashboard", params={"range": "custom", **around_a}), 200),
            hidden(
                web.get(
                    "/dashboard",
                    params={"range": "custom", "group_by": "metadata:owner", **around_a},
                ),
                200,
            ),
            a_sees(
                a_web.get(
                    "/dashboard",
                    params={"range": "custom", "group_by": "metadata:owner", **around_a},
                )
            ),
        ),
        ("GET", "/sessions/{session_id:path}"): lambda: hidden(
            web.get(f"/sessions/{session}"), 404
        ),
        ("GET", "/traces/{trace_id}"): lambda: [
            hidden(web.get(f"/traces/{t}", params={"span": span_id}), 404) for t in a.trace_ids
        ],
        ("GET", "/fragments/span"): lambda: hidden(
            web.get(
                "/fragments/span", params={"trace_id": a.trace_ids[1], "span_id": a.span_ids[2]}
            ),
            404,
        ),
        ("GET", "/fragments/span-rows"): lambda: hidden(
            web.get("/fragments/span-rows", params={"trace_id": a.trace_ids[1]}), 404
        ),
        ("GET", "/fragments/session-traces"): lambda: hidden(
            web.get("/fragments/session-traces", params={"session_id": session}), 200
        ),
        ("GET", "/export/session.json"): lambda: hidden(
            web.get("/export/session.json", params={"session_id": session}), 404
        ),
        ("POST", "/evaluate"): evaluate_form,
        ("GET", "/evaluators"): lambda: hidden(web.get("/evaluators"), 200),
        ("POST", "/evaluators"): evaluator_form,
        ("POST", "/evaluators/delete"): delete_evaluator_form,
        ("GET", "/settings"): lambda: (
            a_api.put("/api/v1/settings/redaction", json=a_redaction),
            hidden(web.get("/settings"), 200),
            a_sees(a_web.get("/settings")),
        ),
        ("POST", "/settings/retention"): settings_form(
            "retention", {"days": "36497"}, {"days": 36_496}
        ),
        ("POST", "/settings/redaction"): settings_form(
            "redaction", {"detector_email": "on", "patterns": "b-rule = zz-b-zz"}, a_redaction
        ),
        ("GET", "/fragments/evaluation-runs"): lambda: hidden(
            web.get("/fragments/evaluation-runs", params={"session_id": session}), 200
        ),
        # Score and note forms, with B's cookie: A's targets and ids are not found.
        ("POST", "/ui/scores"): ui_score_into_a,
        ("POST", "/ui/scores/delete"): ui_delete_a_score,
        ("POST", "/ui/notes"): ui_note_into_a,
        ("POST", "/ui/notes/delete"): ui_delete_a_note,
        ("GET", "/live/traces"): live("/live/traces"),
        ("GET", "/live/sessions"): live("/live/sessions"),
        # A's session named outright: B's stream still says nothing of its turns.
        ("GET", "/live/session"): live("/live/session", session_id=session),
    }

    # Every route of the app is walked, and nothing is walked that the app lacks.
    missing = app_routes - set(walk)
    assert not missing, f"routes not covered by the isolation walk: {sorted(missing)}"
    assert not set(walk) - app_routes, sorted(set(walk) - app_routes)
    openapi_paths = set(api.get("/openapi.json").json()["paths"])
    # OpenAPI writes "{session_id:path}" as "{session_id}".
    assert openapi_paths <= {re.sub(r":\w+}", "}", path) for _, path in app_routes}

    # The positive control, before B writes: A's own credentials see A's data.
    for response in (
        a_api.get(f"/api/v1/traces/{trace}"),
        a_api.get("/api/v1/sessions"),
        a_web.get(f"/traces/{a.trace_ids[1]}"),
        a_web.get(f"/sessions/{session}"),
        a_api.get("/api/v1/users"),
        a_web.get("/fragments/span", params={"trace_id": a.trace_ids[1], "span_id": a.span_ids[2]}),
    ):
        a_sees(response)

    # B has data of its own (ids of its own), so that its lists and streams are not
    # trivially empty; writing with A's ids comes last, as it puts them in B's project.
    own = request(
        [
            span(
                new_trace_id(),
                new_span_id(),
                name="b-own",
                attributes={
                    "threadline.session.id": "b-session",
                    "threadline.user.id": "b-user",
                    "threadline.span.input": "b question",
                },
            )
        ]
    )
    assert (
        api.post(
            "/v1/traces",
            content=own.SerializeToString(),
            headers={"Content-Type": "application/x-protobuf"},
        ).status_code
        == 200
    )
    last = [
        ("POST", "/v1/traces"),
        ("POST", "/api/public/otel/v1/traces"),
        ("POST", "/api/v1/scores"),
        ("POST", "/api/public/scores"),
        ("POST", "/api/public/ingestion"),
        ("PUT", "/api/v1/score-configs/{name}"),
        ("POST", "/api/v1/notes"),
        ("POST", "/api/v1/evaluators"),
        ("PUT", "/api/v1/evaluators/{name}"),
        ("POST", "/logout"),
    ]
    for route in sorted(set(walk) - set(last)) + last:
        walk[route]()
    print(f"isolation walk: {len(walk)} routes")
    assert len(walk) == len(app_routes)
    assert "Traceback" not in threadline_process.log()
