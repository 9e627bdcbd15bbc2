"""Property-based tests of ingest: whatever OTLP arrives, no crash, no 5xx, and every
span is either stored (and readable) or counted as rejected.

Generated requests (``strategies.py``) carry every AnyValue type with odd values, odd
ids and times, deep nesting and JSON strings where the conventions parse JSON. The
settings profile in ``conftest.py`` makes the runs deterministic.
"""

from __future__ import annotations

import base64
import gzip
import json

import pytest
from hypothesis import example, given, settings
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from tests.otlp import new_span_id, new_trace_id, request, span
from tests.reliability import strategies as gen
from threadline.server.errors import ThreadlineError
from threadline.server.ingest.decode import decode_request, decompress, media_type
from threadline.server.ingest.normalize import normalize_request

pytestmark = pytest.mark.slow

MB = 1024 * 1024


def _huge(encoding: str) -> gen.Body:
    """1 MB attributes of each payload kind (string, bytes, input), plus a valid span."""
    big = span(
        new_trace_id(),
        new_span_id(),
        attributes={
            "threadline.span.input": "é" * (MB // 2),  # 1 MB of UTF-8
            "blob": b"\xff" * MB,
            "many": list(range(20_000)),
        },
    )
    return gen.encode(request([big]), encoding)


HUGE = [_huge("protobuf"), _huge("json+gzip")]


def _process(body: gen.Body):
    """The ingest path of ``POST /v1/traces`` without HTTP and storage."""
    kind = media_type(body.content_type)
    data = decompress(body.content, body.content_encoding, 64 * MB)
    return normalize_request(decode_request(data, kind))


@settings(max_examples=150)
@given(body=gen.bodies())
@example(body=HUGE[0])
@example(body=HUGE[1])
def test_decode_and_normalize_raise_only_threadline_errors(body: gen.Body) -> None:
    try:
        result = _process(body)
    except ThreadlineError as error:
        # Refusing a whole request is only for what cannot be decoded at all.
        assert body.may_be_refused, error.message
        return
    spans = gen.all_spans(body.request)
    valid = [s for s in spans if gen.span_is_valid(s)]
    assert result.rejected == len(spans) - len(valid)
    assert [(r.trace_id, r.span_id) for r in result.spans] == [
        (s.trace_id.hex(), s.span_id.hex()) for s in valid
    ]
    for record in result.spans:
        # What the store writes must be encodable: the store serialises these as JSON.
        json.dumps(
            [record.attributes, record.events, record.resource, record.metadata, record.tags]
        )
        assert record.end_ns >= record.start_ns


def _answer(response, content_type: str) -> tuple[int, str]:
    if content_type == "application/json":
        partial = response.json().get("partialSuccess", {})
        return int(partial.get("rejectedSpans", 0)), partial.get("errorMessage", "")
    decoded = ExportTraceServiceResponse.FromString(response.content).partial_success
    return decoded.rejected_spans, decoded.error_message


@settings(max_examples=60)
@given(body=gen.bodies())
@example(body=HUGE[0])
@example(body=HUGE[1])
def test_export_never_5xx_and_accepted_spans_read_back(server, body: gen.Body) -> None:
    headers = {"Content-Encoding": body.content_encoding} if body.content_encoding else {}
    response = server.export(body.content, body.content_type, **headers)
    assert response.status_code < 500, (response.status_code, response.text)
    if response.status_code != 200:
        assert response.status_code == 400 and body.may_be_refused, response.text
        return
    spans = gen.all_spans(body.request)
    valid = [s for s in spans if gen.span_is_valid(s)]
    rejected, message = _answer(response, body.content_type)
    assert rejected == len(spans) - len(valid), message
    for trace_id in {s.trace_id.hex() for s in valid}:
        trace = server.http.get(f"/api/v1/traces/{trace_id}")
        assert trace.status_code == 200, (trace.status_code, trace.text)
        stored = {item["span_id"] for item in trace.json()["spans"]}
        assert {s.span_id.hex() for s in valid if s.trace_id.hex() == trace_id} <= stored


# --- regressions found by the properties above ----------------------------------------


@pytest.mark.parametrize(
    "nested", [b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 50_000 + b"1" + b"}" * 50_000]
)
def test_json_body_nested_past_the_parser_stack_is_a_400(server, nested):
    """It was a 500: json.loads raised RecursionError, which is not a ValueError."""
    response = server.export(nested, "application/json")
    assert response.status_code == 400, response.text
    gzipped = server.export(
        gzip.compress(nested), "application/json", **{"Content-Encoding": "gzip"}
    )
    assert gzipped.status_code == 400, gzipped.text


def test_deep_metadata_and_tags_json_is_ignored_not_a_500(server):
    """It was a 500 (RecursionError in normalize) for metadata or tags JSON nested past
    the parser's stack, and an unreadable trace for JSON nested past pydantic's limit."""
    trace_ids = []
    for depth in (40, 300, 5000):
        trace_id = new_trace_id()
        trace_ids.append(trace_id)
        attributes = {
            "metadata": gen.nested_json(depth, "object"),
            "threadline.tags": gen.nested_json(depth, "array"),
            "threadline.session.id": f"deep-{depth}",
        }
        response = server.export(
            request([span(trace_id, new_span_id(), attributes=attributes)]).SerializeToString()
        )
        assert response.status_code == 200, response.text
        trace = server.get(f"/api/v1/traces/{trace_id}")
        assert trace["metadata"] == {}
        assert server.get("/api/v1/traces", session_id=f"deep-{depth}")["items"]
        assert server.get("/api/v1/sessions/" + f"deep-{depth}")["trace_count"] == 1
    assert "Traceback" not in server.process.log()


def test_deep_json_inputs_within_the_limits_read_back(server):
    for depth in (1, 50, 200):
        trace_id = new_trace_id()
        attributes = {"threadline.span.input": gen.nested_json(depth, "array")}
        assert (
            server.export(
                request([span(trace_id, new_span_id(), attributes=attributes)]).SerializeToString()
            ).status_code
            == 200
        )
        assert server.get(f"/api/v1/traces/{trace_id}")["spans"][0]["input"] is not None


@pytest.mark.parametrize(
    "text",
    [
        gen.nested_json(300, "array"),
        gen.nested_json(5000, "array"),
        '{"\\ud800": 1}',
        '["x\\udfff"]',
    ],
    ids=["depth-300", "depth-5000", "surrogate-key", "surrogate-value"],
)
def test_odd_json_input_reads_back(server, text):
    """Inputs past the parser's stack or the serializer's depth, or holding a lone
    surrogate, read back as the text that was sent."""
    trace_id = new_trace_id()
    session = "odd-input-" + trace_id
    attributes = {"threadline.span.input": text, "threadline.session.id": session}
    assert (
        server.export(
            request([span(trace_id, new_span_id(), attributes=attributes)]).SerializeToString()
        ).status_code
        == 200
    )
    assert server.http.get(f"/api/v1/traces/{trace_id}").status_code == 200
    cookies = {"threadline_session": server.api_key}
    for path in (
        f"/traces/{trace_id}",
        f"/sessions/{session}",
        f"/export/session.json?session_id={session}",
    ):
        assert server.http.get(path, cookies=cookies).status_code == 200, path


def test_cursor_nested_past_the_parser_stack_is_a_400(server):
    cursor = base64.urlsafe_b64encode(b"[" * 5000).decode().rstrip("=")
    for path in ("/api/v1/traces", "/api/v1/sessions", "/api/v1/users"):
        response = server.http.get(path, params={"cursor": cursor})
        assert response.status_code == 400, (path, response.status_code)


def test_invalid_utf8_strings_are_a_400_not_a_5xx(server):
    for raw in (b"\xff", b"\xed\xa0\x80", b"a\x80b"):
        body = gen.invalid_utf8_span(
            bytes.fromhex(new_trace_id()), bytes.fromhex(new_span_id()), raw
        )
        assert server.export(body).status_code == 400
    lone_surrogate = json.dumps(
        {
            "resourceSpans": [
                {
                    "scopeSpans": [
                        {
                            "spans": [
                                {
                                    "traceId": new_trace_id(),
                                    "spanId": new_span_id(),
                                    "name": "\ud800",
                                }
                            ]
                        }
                    ]
                }
            ]
        }
    )
    assert server.export(lone_surrogate.encode(), "application/json").status_code == 400
    assert AnyValue  # the protobuf classes refuse to build such strings at all
