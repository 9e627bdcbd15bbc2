"""The previews' text (``*_text``) through the real server: the JSON API's lists and
details, the exports (CSV, JSON Lines, with spans) and OpenAPI give what the web UI's
lists show, not the stored JSON text."""

from __future__ import annotations

import csv
import io
import json
import time
import uuid

import httpx

from tests.otlp import new_span_id, new_trace_id, span

# Long enough that the output preview (its first 2,000 characters) is cut JSON.
ANSWER = 'Your invoice had a "late fee" of 12 € that should not be there. ' * 60


def _send_conversation(server, session_id: str) -> tuple[str, str]:
    """Two turns: a model call with chat messages and a long answer, then a function
    with named arguments replying ``{"reply": ...}`` that holds an escaped lone
    surrogate. Their trace ids."""
    now = time.time_ns()
    first, second = new_trace_id(), new_trace_id()
    server.send(
        [
            span(
                first,
                new_span_id(),
                name="chat",
                start_ns=now - 2_000_000_000,
                attributes={
                    "gen_ai.conversation.id": session_id,
                    "gen_ai.input.messages": json.dumps(
                        [
                            {"role": "system", "parts": [{"type": "text", "content": "Be kind"}]},
                            {
                                "role": "user",
                                "parts": [{"type": "text", "content": "My invoice is wrong"}],
                            },
                        ]
                    ),
                    "gen_ai.output.messages": json.dumps(
                        [{"role": "assistant", "parts": [{"type": "text", "content": ANSWER}]}]
                    ),
                },
            ),
            span(
                second,
                new_span_id(),
                name="turn",
                start_ns=now - 1_000_000_000,
                attributes={
                    "threadline.session.id": session_id,
                    "threadline.span.input": json.dumps(
                        {"conversation_id": session_id, "message": "Merci, à Montréal"},
                        ensure_ascii=True,
                    ),
                    "threadline.span.output": '{"reply": "Thanks \\ud800 bye"}',
                },
            ),
        ]
    )
    return first, second


def _check_cut_answer(text: str) -> None:
    # The cut JSON read as its message's text, ended by "…": no quotes, keys or escapes.
    assert text.endswith("…") and ANSWER.startswith(text[:-1])
    assert len(text) > 1000 and '"role"' not in text and "\\" not in text


def test_lists_details_and_exports_give_the_previews_text(server_on_each_store) -> None:
    server = server_on_each_store
    session_id = f"texts-{uuid.uuid4().hex[:8]}"
    first, second = _send_conversation(server, session_id)

    (session,) = server.get("/api/v1/sessions")["items"]
    assert session["session_id"] == session_id
    # The stored previews are unchanged: JSON text, as before.
    assert json.loads(session["first_input"]) == [
        {"role": "user", "content": "My invoice is wrong"}
    ]
    assert session["last_output"] == '{"reply": "Thanks \\ud800 bye"}'
    assert session["first_input_text"] == "My invoice is wrong"
    assert session["last_output_text"] == "Thanks \ufffd bye"  # a lone surrogate: U+FFFD

    traces = {
        t["trace_id"]: t for t in server.get("/api/v1/traces", session_id=session_id)["items"]
    }
    assert traces[first]["input_preview_text"] == "My invoice is wrong"
    _check_cut_answer(traces[first]["output_preview_text"])
    assert traces[second]["input_preview_text"] == "Merci, à Montréal"
    assert traces[second]["output_preview_text"] == "Thanks \ufffd bye"

    detail = server.get(f"/api/v1/sessions/{session_id}")
    assert detail["first_input_text"] == session["first_input_text"]
    assert [t["input_preview_text"] for t in detail["traces"]] == [
        "My invoice is wrong",
        "Merci, à Montréal",
    ]
    assert (
        server.get(f"/api/v1/traces/{first}")["output_preview_text"]
        == (traces[first]["output_preview_text"])
    )

    # CSV: the texts are the last columns, after every column there was before.
    sessions_csv = server.http.get(
        "/api/v1/export/sessions", params={"format": "csv", "window": "all"}
    )
    rows = list(csv.reader(io.StringIO(sessions_csv.text)))
    assert rows[0][-2:] == ["first_input_text", "last_output_text"]
    assert rows[1][-2:] == ["My invoice is wrong", "Thanks \ufffd bye"]
    traces_csv = server.http.get("/api/v1/export/traces", params={"format": "csv", "window": "all"})
    by_id = {row["trace_id"]: row for row in csv.DictReader(io.StringIO(traces_csv.text))}
    _check_cut_answer(by_id[first]["output_preview_text"])

    # JSON Lines, with spans and without: the same fields as the API's answers.
    lines = server.http.get(
        "/api/v1/export/sessions", params={"format": "jsonl", "include": "spans", "window": "all"}
    ).text.splitlines()
    (line,) = [json.loads(text) for text in lines]
    assert line["session"]["last_output_text"] == "Thanks \ufffd bye"
    exported = {t["trace_id"]: t for t in line["traces"]}
    for trace_id in (first, second):
        shown = server.get(f"/api/v1/traces/{trace_id}")
        for field in ("input_preview_text", "output_preview_text"):
            assert exported[trace_id][field] == shown[field], (trace_id, field)
    plain = server.http.get("/api/v1/export/traces", params={"format": "jsonl", "window": "all"})
    assert {
        json.loads(t)["trace_id"]: json.loads(t)["input_preview_text"]
        for t in plain.text.splitlines()
    } == {
        first: "My invoice is wrong",
        second: "Merci, à Montréal",
    }


def test_openapi_documents_the_previews_text(server) -> None:
    schemas = httpx.get(server.base_url + "/openapi.json").json()["components"]["schemas"]
    session = next(
        v
        for k, v in schemas.items()
        if k.startswith("Session") and "first_input" in v.get("properties", {})
    )
    trace = next(
        v
        for k, v in schemas.items()
        if k.startswith("Trace") and "input_preview" in v.get("properties", {})
    )
    for schema, fields in (
        (session, ("first_input_text", "last_output_text")),
        (trace, ("input_preview_text", "output_preview_text")),
    ):
        for field in fields:
            assert "as text" in schema["properties"][field]["description"], field
