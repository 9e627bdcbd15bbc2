"""Redaction on the server, end to end: a project's rules set through the API (and the
CLI) are applied to spans from OpenTelemetry's own OTLP exporter and from the
Threadline SDK before they are stored, so nothing the rules name reaches a read, a
list, a search or another project's view."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from typing import Any

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from threadline import Threadline, observe

EMAIL = "jane.doe@example.com"
PHONE = "+1 415 555 0134"
CARD = "4111 1111 1111 1111"
SECRET = "sk-proj-" + "Z" * 30
TICKET = "TCK-48213"
PRIVATE = [EMAIL, PHONE, CARD, SECRET, TICKET]
TEXT = f"mail {EMAIL}, call {PHONE}, card {CARD}, key {SECRET}, about {TICKET}"
REDACTED = "mail [email], call [phone], card [card], key [secret], about [ticket]"
ALL_RULES = {
    "detectors": ["email", "phone", "card", "secret"],
    "patterns": [{"name": "ticket", "regex": r"TCK-\d+"}],
}


def _set_rules(server: Any, rules: dict[str, Any]) -> dict[str, Any]:
    response = server.http.put("/api/v1/settings/redaction", json=rules)
    assert response.status_code == 200, response.text
    return response.json()


def _assert_clean(server: Any, trace_id: str, session_id: str) -> dict[str, Any]:
    """Nothing private in any read of the trace and its session; the trace returned."""
    trace = server.get(f"/api/v1/traces/{trace_id}")
    listed = server.get("/api/v1/sessions", q=session_id)
    assert [item["session_id"] for item in listed["items"]] == [session_id]
    reads = [
        trace,
        server.get(f"/api/v1/sessions/{session_id}"),
        listed,
        server.get("/api/v1/traces", session_id=session_id),
    ]
    text = json.dumps(reads)
    for private in PRIVATE:
        assert private not in text, private
    for private in (EMAIL, TICKET):  # text search finds none of it either
        assert server.get("/api/v1/traces", q=private)["items"] == []
    return trace


def test_rules_through_the_api_redact_an_otel_exporters_spans(server) -> None:
    assert server.get("/api/v1/settings/redaction")["detectors"] == []
    shown = _set_rules(server, ALL_RULES)
    assert shown["detectors"] == ALL_RULES["detectors"]
    assert shown["patterns"] == ALL_RULES["patterns"]
    assert set(shown["available_detectors"]) == {"email", "phone", "card", "secret"}

    session = f"redact-{uuid.uuid4().hex[:8]}"
    provider = TracerProvider(resource=Resource.create({"service.name": "app", "owner": EMAIL}))
    exporter = OTLPSpanExporter(
        endpoint=server.base_url + "/v1/traces",
        headers={"Authorization": f"Bearer {server.api_key}"},
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("turn") as root:
        root.set_attribute("threadline.session.id", session)
        root.set_attribute("threadline.span.input", json.dumps({"message": TEXT}))
        root.set_attribute("threadline.span.output", TEXT)
        root.set_attribute("note", TEXT)
        root.set_attribute("threadline.metadata.contact", EMAIL)
        root.add_event("said", {"text": TEXT})
        with tracer.start_as_current_span("llm") as child:
            child.set_attribute("gen_ai.prompt.0.content", TEXT)
            child.set_attribute("gen_ai.prompt.0.role", "user")
    provider.shutdown()
    trace_id = format(root.get_span_context().trace_id, "032x")

    trace = _assert_clean(server, trace_id, session)
    by_name = {s["name"]: s for s in trace["spans"]}
    turn = by_name["turn"]
    assert turn["input"] == {"message": REDACTED} and turn["output"] == REDACTED
    assert turn["attributes"]["note"] == REDACTED
    assert turn["events"][0]["attributes"]["text"] == REDACTED
    assert turn["resource"]["owner"] == "[email]"
    assert trace["metadata"]["contact"] == "[email]"
    assert REDACTED in json.dumps(by_name["llm"]["input"])
    assert trace["session_id"] == session  # ids are kept


@observe()
def _answer(question: str) -> str:
    Threadline.set_trace_session_id(_answer.session)  # type: ignore[attr-defined]
    return f"I wrote to {EMAIL} about {TICKET}"


def test_rules_redact_the_threadline_sdks_spans(server) -> None:
    _set_rules(server, ALL_RULES)
    _answer.session = f"sdk-{uuid.uuid4().hex[:8]}"  # type: ignore[attr-defined]
    Threadline._reset_for_tests()
    Threadline.initialize(
        project_api_key=server.api_key, base_url=server.base_url, instrument=False
    )
    try:
        _answer(TEXT)
        assert Threadline.flush() is True
    finally:
        Threadline._reset_for_tests()
    session = server.get(f"/api/v1/sessions/{_answer.session}")  # type: ignore[attr-defined]
    trace = _assert_clean(server, session["traces"][0]["trace_id"], session["session_id"])
    assert REDACTED in json.dumps(trace["spans"][0]["input"])
    assert trace["spans"][0]["output"] == "I wrote to [email] about [ticket]"


def test_without_rules_nothing_is_redacted_and_rules_apply_per_project(server) -> None:
    # This project has no rules (each test gets its own project).
    session = f"plain-{uuid.uuid4().hex[:8]}"
    provider = TracerProvider()
    provider.add_span_processor(
        SimpleSpanProcessor(
            OTLPSpanExporter(
                endpoint=server.base_url + "/v1/traces",
                headers={"Authorization": f"Bearer {server.api_key}"},
            )
        )
    )
    with provider.get_tracer("t").start_as_current_span("turn") as root:
        root.set_attribute("threadline.session.id", session)
        root.set_attribute("threadline.span.output", TEXT)
    provider.shutdown()
    trace = server.get(f"/api/v1/traces/{format(root.get_span_context().trace_id, '032x')}")
    assert trace["spans"][0]["output"] == TEXT


def test_bad_rules_get_a_clear_400(server) -> None:
    for rules, says in (
        ({"detectors": ["emails"]}, "unknown detector"),
        ({"patterns": [{"name": "t", "regex": r"(a)\1"}]}, "not an RE2 regular expression"),
        ({"patterns": [{"name": "t", "regex": ".*"}]}, "matches the empty text"),
        ({"patterns": [{"name": "A B", "regex": "x"}]}, "pattern name"),
    ):
        response = server.http.put("/api/v1/settings/redaction", json=rules)
        assert response.status_code == 400, response.text
        assert says in response.json()["error"]
    response = server.http.put("/api/v1/settings/redaction", json={"patterns": "x"})
    assert response.status_code == 422 and "error" in response.json()
    # Nothing was changed by the refused rules.
    assert server.get("/api/v1/settings/redaction")["patterns"] == []


def test_the_cli_sets_and_shows_rules(server) -> None:
    data_dir = str(server.process.data_dir)
    project = server.get("/api/v1/settings/retention")  # the key's project exists
    assert project["effective_days"] == 0
    name = _project_name(server)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "threadline.server",
                "projects",
                "redaction",
                *args,
                "--data-dir",
                data_dir,
                "--project",
                name,
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )

    done = cli("--detector", "email", "--pattern", r"ticket=TCK-\d+")
    assert done.returncode == 0, done.stderr
    assert "[email], [ticket] = TCK-\\d+" in done.stdout
    assert server.get("/api/v1/settings/redaction")["detectors"] == ["email"]
    refused = cli("--pattern", r"bad=(a)\1")
    assert refused.returncode != 0 and "not an RE2 regular expression" in refused.stderr
    assert "redacts: nothing" in cli("--off").stdout


def _project_name(server: Any) -> str:
    from threadline.server.store.sqlite import SQLiteStore

    store = SQLiteStore(server.process.data_dir / "threadline.db")
    try:
        access = store.access_for_key(server.api_key)
        assert access is not None
        return access.project.name
    finally:
        store.close()
