"""Turn an OTLP/HTTP request body into an ``ExportTraceServiceRequest`` (or, for
``/v1/logs``, an ``ExportLogsServiceRequest``).

Protobuf and OTLP/JSON are both decoded by OpenTelemetry's own generated classes.
OTLP/JSON differs from the canonical protobuf JSON mapping in one way that matters:
trace and span ids are hex, not base64
(https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding), so ids are
re-encoded before ``ParseDict``.
"""

from __future__ import annotations

import base64
import json
import zlib
from typing import Any

from google.protobuf.json_format import ParseDict, ParseError
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from threadline.server.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

PROTOBUF = "application/x-protobuf"
JSON = "application/json"


def media_type(content_type: str | None) -> str:
    """The media type of a Content-Type header, or 415 if it is not one OTLP uses."""
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    if kind in (PROTOBUF, "application/protobuf"):
        return PROTOBUF
    if kind == JSON:
        return JSON
    raise UnsupportedMediaType(
        f"Content-Type {content_type or '(none)'!r} is not OTLP: send {PROTOBUF} or {JSON}"
    )


_INFLATE_STEP = 1 << 20
# Input is handed to zlib this much at a time, so what it leaves over after a member's
# end (`unused_data`, a copy) is at most this long: taking the whole rest of the body
# after every member cost time quadratic in the number of members (a 15 MiB body of
# 786,432 empty members kept a worker busy for minutes).
_FEED_STEP = 1 << 16


def decompress(
    body: bytes | memoryview, content_encoding: str | None, limit: int
) -> bytes | memoryview:
    encoding = (content_encoding or "identity").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding != "gzip":
        raise UnsupportedMediaType(f"Content-Encoding {encoding!r} is not supported: use gzip")
    # Decompress at most `limit` bytes: a small bomb must not become gigabytes in memory.
    # A gzip stream may hold several members one after another (RFC 1952 2.2; what
    # `cat a.gz b.gz` makes): every one is inflated, within the one limit, so that no
    # acknowledged export silently loses the members after the first.
    # Inflated a mebibyte at a time into one growing buffer: zlib's own output buffer
    # doubles as it grows, which briefly took twice the limit.
    out = bytearray()
    view = memoryview(body)
    position = 0  # where the next byte to inflate is in `view`
    while True:
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            while not inflater.eof and position < len(view):
                pending: bytes | memoryview = view[position : position + _FEED_STEP]
                position += len(pending)
                while pending and not inflater.eof:
                    out += inflater.decompress(pending, _INFLATE_STEP)
                    if len(out) > limit:
                        raise PayloadTooLarge(f"gzip body inflates past the limit of {limit} bytes")
                    pending = inflater.unconsumed_tail
        except zlib.error as exc:
            raise BadRequest(f"body is not valid gzip: {exc}") from None
        if not inflater.eof:
            raise BadRequest("gzip body is truncated")
        position -= len(inflater.unused_data)  # the next member starts there
        # Trailing zero padding is allowed after the last member. A member starts with
        # 0x1f, so the rest is read whole only when it starts with a zero.
        if position == len(view) or (
            view[position] == 0 and not view[position:].tobytes().strip(b"\x00")
        ):
            return out  # type: ignore[return-value]  # bytes-like: every reader takes it


def decode_request(body: bytes | memoryview, kind: str) -> ExportTraceServiceRequest:
    return _decode(body, kind, ExportTraceServiceRequest(), _hex_ids_to_base64)


def decode_logs_request(body: bytes | memoryview, kind: str) -> ExportLogsServiceRequest:
    return _decode(body, kind, ExportLogsServiceRequest(), _hex_log_ids_to_base64)


def _decode(body: bytes | memoryview, kind: str, request: Any, convert_ids: Any) -> Any:
    name = type(request).__name__
    if kind == PROTOBUF:
        try:
            request.ParseFromString(body)
        except DecodeError as exc:
            raise BadRequest(f"body is not an OTLP {name}: {exc}") from None
        return request
    if isinstance(body, memoryview):
        body = body.tobytes()  # the parser reads bytes or text only
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        # RecursionError: arrays or objects nested deeper than the parser's stack.
        raise BadRequest(f"body is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise BadRequest(f"OTLP/JSON body must be an object (an {name})")
    try:
        convert_ids(document)
        return ParseDict(document, request, ignore_unknown_fields=True)
    except (ParseError, ValueError, TypeError, AttributeError, RecursionError) as exc:
        raise BadRequest(f"body is not an OTLP/JSON {name}: {exc}") from None
    except SystemError as exc:
        # protobuf's upb looks field names up in C: a name with an escaped lone
        # surrogate ("\ud800") fails to encode there and surfaces as a SystemError.
        if not isinstance(exc.__cause__ or exc.__context__, UnicodeError):
            raise
        raise BadRequest("body is not OTLP/JSON: a field name is not valid Unicode") from None


def encode_response(response: ExportTraceServiceResponse, kind: str) -> bytes:
    if kind == PROTOBUF:
        return response.SerializeToString()
    body: dict[str, Any] = {}
    if response.HasField("partial_success"):
        body["partialSuccess"] = {
            "rejectedSpans": str(response.partial_success.rejected_spans),
            "errorMessage": response.partial_success.error_message,
        }
    return json.dumps(body).encode()


_ID_KEYS = ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id")


def _hex_ids_to_base64(document: dict[str, Any]) -> None:
    for resource_spans in _list(document, "resourceSpans", "resource_spans"):
        for scope_spans in _list(resource_spans, "scopeSpans", "scope_spans"):
            for span in _list(scope_spans, "spans"):
                _convert_ids(span)
                for link in _list(span, "links"):
                    _convert_ids(link)


def _hex_log_ids_to_base64(document: dict[str, Any]) -> None:
    for resource_logs in _list(document, "resourceLogs", "resource_logs"):
        for scope_logs in _list(resource_logs, "scopeLogs", "scope_logs"):
            for record in _list(scope_logs, "logRecords", "log_records"):
                _convert_ids(record)


def _list(obj: Any, *keys: str) -> list[Any]:
    if not isinstance(obj, dict):
        raise ValueError("expected an object")
    for key in keys:
        value = obj.get(key)
        if value is not None:
            if not isinstance(value, list):
                raise ValueError(f"'{key}' must be a list")
            return value
    return []


def _convert_ids(obj: Any) -> None:
    if not isinstance(obj, dict):
        raise ValueError("a span or log record must be an object")
    for key in _ID_KEYS:
        value = obj.get(key)
        if isinstance(value, str) and value:
            try:
                obj[key] = base64.b64encode(bytes.fromhex(value)).decode()
            except ValueError:
                raise ValueError(f"{key} {value!r} is not hex") from None
