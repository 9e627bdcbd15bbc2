"""The OpenAPI document says what the query API answers: every field of a session, a
trace and a user is in every answer (null when unknown, as the `*_text` previews of a
trace with no input are), so the document marks each one required and nullable where it
may be null; real answers hold to it, checked by schemathesis's conformance check."""

from __future__ import annotations

from typing import Any

import schemathesis
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.conftest import ProjectClient

_OBJECTS = ("Session", "SessionDetail", "Trace", "TraceDetail", "UserSummary", "SpanEvent")
_NULLABLE_TEXTS = {
    "Session": ("first_input_text", "last_output_text"),
    "Trace": ("input_preview_text", "output_preview_text"),
}


def _document(server: ProjectClient) -> dict[str, Any]:
    return server.http.get("/openapi.json").json()


def test_every_field_answered_is_required_and_the_texts_may_be_null(
    server: ProjectClient,
) -> None:
    schemas = _document(server)["components"]["schemas"]
    for name in _OBJECTS:
        schema = schemas[name]
        assert set(schema["required"]) == set(schema["properties"]), name
    for page in ("Page_Session_", "Page_Trace_", "Page_UserSummary_"):
        assert set(schemas[page]["required"]) == {"items", "next_cursor"}, page
    for name, fields in _NULLABLE_TEXTS.items():
        for field in fields:
            types = {kind.get("type") for kind in schemas[name]["properties"][field]["anyOf"]}
            assert types == {"string", "null"}, (name, field)


def test_answers_hold_to_the_document(server: ProjectClient) -> None:
    """A session with a preview and a trace without one (its texts are null), a user,
    each list and detail."""
    said = server.send_span(
        {
            "session.id": "s-shapes",
            "user.id": "u-shapes",
            "threadline.span.input": '"Where is my order?"',
            "threadline.span.output": '"On its way."',
        }
    )
    silent = server.send_span({"session.id": "s-shapes"})
    assert server.get(f"/api/v1/traces/{silent}")["input_preview_text"] is None
    schema = schemathesis.openapi.from_url(server.base_url + "/openapi.json")
    auth = {"Authorization": f"Bearer {server.api_key}"}
    asked = [
        ("/api/v1/sessions", {}, {}),
        ("/api/v1/sessions/{session_id}", {"session_id": "s-shapes"}, {}),
        ("/api/v1/traces", {}, {}),
        ("/api/v1/traces/{trace_id}", {"trace_id": said}, {}),
        ("/api/v1/traces/{trace_id}", {"trace_id": silent}, {}),
        ("/api/v1/users", {}, {}),
        ("/api/v1/sessions", {}, {"q": "order"}),
    ]
    for path, path_parameters, query in asked:
        operation = schema[path]["GET"]
        case = operation.Case(path_parameters=path_parameters, query=query)
        response = case.call(base_url=server.base_url, headers=auth, timeout=30)
        assert response.status_code == 200, (path, response.text)
        assert response.json(), path
        case.validate_response(response, checks=[response_schema_conformance], headers=auth)


def test_each_text_field_says_what_it_holds(server: ProjectClient) -> None:
    schemas = _document(server)["components"]["schemas"]
    said = {
        field: schemas[name]["properties"][field]["description"]
        for name, fields in _NULLABLE_TEXTS.items()
        for field in fields
    }
    assert len(set(said.values())) == 4
    for field, description in said.items():
        assert description.startswith(f"`{field.removesuffix('_text')}` as text:"), field
    # An output is an answer, not what a user asked.
    for field in ("output_preview_text", "last_output_text"):
        assert "answer" in said[field] and "last user message (else" not in said[field]
