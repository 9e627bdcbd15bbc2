"""What the client got wrong gets a clear 4xx; nothing good is lost; no 5xx."""

from __future__ import annotations

import gzip
import random

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from tests.otlp import new_span_id, new_trace_id, request, span, to_json


def _assert_error(response: httpx.Response, status: int, words: str) -> None:
    assert response.status_code == status, response.text
    assert words in response.json()["error"]


def test_body_that_is_not_otlp(server):
    _assert_error(server.export(b"\xff\xfe not protobuf at all"), 400, "not an OTLP")
    _assert_error(server.export(b"{not json", "application/json"), 400, "not valid JSON")
    _assert_error(server.export(b"[1, 2]", "application/json"), 400, "OTLP/JSON")
    _assert_error(
        server.export(
            b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}',
            "application/json",
        ),
        400,
        "not hex",
    )


def test_wrong_content_type_and_encoding(server):
    body = request([span(new_trace_id(), new_span_id())]).SerializeToString()
    _assert_error(server.export(body, "text/plain"), 415, "not OTLP")
    _assert_error(server.export(body, **{"Content-Encoding": "br"}), 415, "not supported")
    _assert_error(server.export(b"not gzip", **{"Content-Encoding": "gzip"}), 400, "gzip")
    truncated = gzip.compress(body)[:-12]
    _assert_error(server.export(truncated, **{"Content-Encoding": "gzip"}), 400, "gzip")


def test_missing_or_wrong_key(server):
    body = request([span(new_trace_id(), new_span_id())]).SerializeToString()
    for headers in ({}, {"Authorization": "Bearer tl_not-a-key"}):
        response = httpx.post(
            server.base_url + "/v1/traces",
            content=body,
            headers={"Content-Type": "application/x-protobuf", **headers},
        )
        _assert_error(response, 401, "key")


def test_gzip_bomb_is_refused(server):
    bomb = gzip.compress(b"\0" * (80 * 1024 * 1024))  # 80 MiB inflated, ~80 KiB sent
    _assert_error(server.export(bomb, **{"Content-Encoding": "gzip"}), 413, "limit")


def test_invalid_spans_are_rejected_and_good_ones_kept(server):
    good_trace, good_span = new_trace_id(), new_span_id()
    good = span(good_trace, good_span, attributes={"threadline.session.id": "partial"})
    short_id = Span(trace_id=b"\x01" * 8, span_id=b"\x02" * 8, name="bad-trace-id")
    zero_span = Span(trace_id=b"\x01" * 16, span_id=b"\0" * 8, name="zero-span-id")
    response = server.export(request([short_id, good, zero_span]).SerializeToString())
    assert response.status_code == 200
    partial = ExportTraceServiceResponse.FromString(response.content).partial_success
    assert partial.rejected_spans == 2
    assert "trace_id" in partial.error_message and "span_id" in partial.error_message
    assert server.get(f"/api/v1/traces/{good_trace}")["span_count"] == 1


def test_end_before_start_is_stored_as_zero_length(server):
    trace_id = new_trace_id()
    backwards = span(trace_id, new_span_id(), start_ns=2_000_000_000, end_ns=1_000_000_000)
    assert server.export(request([backwards]).SerializeToString()).status_code == 200
    assert server.get(f"/api/v1/traces/{trace_id}")["duration_ms"] == 0


def test_server_keeps_serving_after_bad_input(server):
    for _ in range(3):
        server.export(b"garbage")
        server.export(b"garbage", "application/json")
    trace_id = new_trace_id()
    assert (
        server.export(request([span(trace_id, new_span_id())]).SerializeToString()).status_code
        == 200
    )
    assert server.get(f"/api/v1/traces/{trace_id}")["span_count"] == 1
    assert "Traceback" not in server.process.log()


def test_out_of_range_numbers_are_rejected_or_dropped_never_a_5xx(server):
    trace_id = new_trace_id()
    far_future = Span(
        trace_id=bytes.fromhex(new_trace_id()),
        span_id=b"\x01" * 8,
        name="year-2554",
        start_time_unix_nano=2**64 - 1,
        end_time_unix_nano=2**64 - 1,
    )
    odd = span(
        trace_id,
        new_span_id(),
        attributes={
            "threadline.session.id": "odd-numbers",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.usage.input_tokens": 2**62,
            "gen_ai.usage.cost": float("inf"),
            "nan": float("nan"),
        },
    )
    response = server.export(request([far_future, odd]).SerializeToString())
    assert response.status_code == 200
    partial = ExportTraceServiceResponse.FromString(response.content).partial_success
    assert partial.rejected_spans == 1 and "2262" in partial.error_message
    (stored,) = server.get(f"/api/v1/traces/{trace_id}")["spans"]
    assert stored["input_tokens"] is None and stored["cost_usd"] is None
    assert stored["attributes"]["nan"] is None  # JSON has no NaN
    assert server.get("/api/v1/sessions/odd-numbers")["trace_count"] == 1


def test_json_the_fast_parser_refuses_is_kept_exactly(server):
    # Ingest reads and writes JSON with orjson, which refuses integers past 64 bits
    # and NaN; those go through the standard library, and nothing is rounded or lost.
    trace_id = new_trace_id()
    big = 123456789012345678901234567890
    chat = '[{"role": "user", "content": "hi", "score": NaN}]'
    server.export(
        request(
            [
                span(
                    trace_id,
                    new_span_id(),
                    attributes={
                        "metadata": f'{{"order": {big}}}',
                        "gen_ai.input.messages": chat,
                    },
                )
            ]
        ).SerializeToString()
    )
    stored = server.get(f"/api/v1/traces/{trace_id}")
    assert stored["metadata"] == {"order": big}
    (read,) = stored["spans"]
    assert read["input"] == [{"role": "user", "content": "hi"}]
    assert read["attributes"]["gen_ai.input.messages"] == chat


def test_mutated_bodies_never_get_a_5xx(server):
    """A small seeded mutation fuzz of valid protobuf and JSON bodies."""
    rng = random.Random(2026)
    valid = request(
        [
            span(
                new_trace_id(),
                new_span_id(),
                attributes={
                    "threadline.session.id": "fuzz",
                    "threadline.span.input": '{"a": 1}',
                    "list": [1, 2.5, "x", [True]],
                    "map": {"k": "v"},
                },
            )
            for _ in range(5)
        ]
    )
    bodies = {
        "application/x-protobuf": valid.SerializeToString(),
        "application/json": to_json(valid),
    }
    for _ in range(300):
        content_type = rng.choice(list(bodies))
        body = bytearray(bodies[content_type])
        for _ in range(rng.randint(1, 8)):
            at = rng.randrange(len(body))
            choice = rng.random()
            if choice < 0.4:
                body[at] = rng.randrange(256)
            elif choice < 0.7:
                del body[at : at + rng.randint(1, 20)]
            else:
                body[at:at] = rng.randbytes(rng.randint(1, 10))
        response = server.export(bytes(body), content_type)
        assert response.status_code < 500, (response.status_code, response.text)
    assert "Traceback" not in server.process.log()


def test_invalid_utf8_in_a_protobuf_string_is_a_400(server):
    body = request([span(new_trace_id(), new_span_id(), name="ZZZZ")]).SerializeToString()
    _assert_error(server.export(body.replace(b"ZZZZ", b"\xff\xfe\xfd\xfc")), 400, "UTF-8")


def test_json_bodies_the_server_cannot_read_are_400s_saying_why(server):
    # JSON nested past the parser's recursion, not UTF-8, or holding an integer of more
    # digits than Python converts: each a 400 naming why ("There was an error parsing
    # the body" before), on every JSON route.
    for body, words in (
        (b"[" * 100_000 + b"]" * 100_000, "nested more deeply"),
        (b'{"name": "\xff", "value": 1, "session_id": "s"}', "not UTF-8"),
        (b'{"name": "n", "value": 1' + b"0" * 5_000 + b', "session_id": "s"}', "digits"),
    ):
        for method, path in (
            ("POST", "/api/v1/scores"),
            ("POST", "/api/v1/notes"),
            ("PUT", "/api/v1/settings/redaction"),
        ):
            response = server.http.request(
                method, path, content=body, headers={"Content-Type": "application/json"}
            )
            assert response.status_code == 400, (path, response.text)
            error = response.json()["error"]
            assert error.startswith("the JSON body cannot be read") and words in error, error
    assert server.get("/api/v1/scores")["items"] == []


def test_a_json_body_sent_as_a_form_is_told_to_say_it_is_json(server):
    # `curl -d '{...}'` without -H 'Content-Type: application/json' sends a form: the
    # body is the JSON the route wants, under a type that makes FastAPI not read it.
    body = b'{"name": "helpful", "value": 4, "session_id": "s-form"}'
    for method, path in (
        ("POST", "/api/v1/scores"),
        ("POST", "/api/v1/notes"),
        ("PUT", "/api/v1/settings/redaction"),
    ):
        for sent in ("application/x-www-form-urlencoded", "text/plain; charset=utf-8"):
            response = server.http.request(
                method, path, content=body, headers={"Content-Type": sent}
            )
            assert response.status_code == 422, (path, response.text)
            assert response.json()["error"] == (
                "invalid request: the body must be JSON, sent with 'Content-Type:"
                f" application/json' (this one came as '{sent.split(';')[0]}')"
            ), (path, sent)
    # The same body said to be JSON is a score; one whose fields are wrong still says which.
    stored = server.http.post(
        "/api/v1/scores", content=body, headers={"Content-Type": "application/json"}
    )
    assert stored.status_code == 200, stored.text
    wrong = server.http.post(
        "/api/v1/scores", json={"name": "helpful", "value": 4, "trace_id": "abc"}
    )
    assert wrong.status_code == 422 and "trace_id" in wrong.json()["error"], wrong.text


def _logs(*records: dict) -> bytes:
    from google.protobuf.json_format import ParseDict
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    document = {"resourceLogs": [{"scopeLogs": [{"logRecords": list(records)}]}]}
    return ParseDict(document, ExportLogsServiceRequest()).SerializeToString()


def _event(text: str = "hello", **fields) -> dict:
    return {
        "eventName": "gen_ai.user.message",
        "traceId": "AAAAAAAAAAAAAAAAAAAAAQ==",
        "spanId": "AAAAAAAAAAE=",
        "body": {"kvlistValue": {"values": [{"key": "content", "value": {"stringValue": text}}]}},
        **fields,
    }


def test_logs_bodies_the_server_cannot_read_are_4xx_saying_why(server):
    def post(body: bytes, content_type: str = "application/x-protobuf", **headers: str):
        return server.http.post(
            "/v1/logs", content=body, headers={"Content-Type": content_type, **headers}
        )

    _assert_error(post(b"\xff\xfe not protobuf"), 400, "not an OTLP ExportLogsServiceRequest")
    _assert_error(post(b"{not json", "application/json"), 400, "not valid JSON")
    _assert_error(post(b"[1, 2]", "application/json"), 400, "ExportLogsServiceRequest")
    _assert_error(
        post(
            b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"traceId": "zz"}]}]}]}',
            "application/json",
        ),
        400,
        "not hex",
    )
    _assert_error(
        post(b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [7]}]}]}', "application/json"),
        400,
        "must be an object",
    )
    body = _logs(_event())
    _assert_error(post(body, "text/plain"), 415, "not OTLP")
    _assert_error(post(body, **{"Content-Encoding": "br"}), 415, "not supported")
    _assert_error(post(b"not gzip", **{"Content-Encoding": "gzip"}), 400, "gzip")
    bomb = gzip.compress(b"\0" * (80 * 1024 * 1024))
    _assert_error(post(bomb, **{"Content-Encoding": "gzip"}), 413, "limit")
    _assert_error(
        post(body.replace(b"hello", b"\xff\xfe\xfd\xfc\xfb")), 400, "ExportLogsServiceRequest"
    )
    many = [{"key": f"k{i}", "value": {"intValue": "1"}} for i in range(10_001)]
    _assert_error(post(_logs(_event(attributes=many))), 413, "max_span_attributes")
    _assert_error(post(_logs(*[_event()] * 20_001)), 413, "max_spans_per_export")
    refused = httpx.post(
        server.base_url + "/v1/logs",
        content=body,
        headers={"Content-Type": "application/x-protobuf"},
    )
    _assert_error(refused, 401, "key")
    # Mutated bodies: a 4xx or a 200, never a 5xx.
    rng = random.Random(2026)
    valid = _logs(*[_event(f"text {n}") for n in range(5)])
    for _ in range(150):
        mutated = bytearray(valid)
        for _ in range(rng.randint(1, 6)):
            at = rng.randrange(len(mutated))
            if rng.random() < 0.5:
                mutated[at] = rng.randrange(256)
            else:
                del mutated[at : at + rng.randint(1, 10)]
        response = post(bytes(mutated))
        assert response.status_code < 500, (response.status_code, response.text)
    assert post(valid).status_code == 200
    assert "Traceback" not in server.process.log()
