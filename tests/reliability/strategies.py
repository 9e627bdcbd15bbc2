"""Hypothesis strategies for OTLP export requests, odd ones included.

Every ``AnyValue`` type (odd unicode strings, int64 extremes, doubles with nan and
inf, bools, bytes, arrays and kvlists nested several levels), odd ids (empty, short,
long, zero), times 0 / past int64 / end before start, and the attribute keys the
conventions read, so that odd values reach the fields normalisation derives.
``Case`` keeps what the tests need to predict the answer (which spans are valid, how
deep values nest) next to the protobuf message.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from tests.otlp import BASE_NS, to_json
from threadline.server.ingest import conventions as cv

INT64_MIN, INT64_MAX, UINT64_MAX = -(2**63), 2**63 - 1, 2**64 - 1

# Unicode a protobuf string can hold (no lone surrogates), biased to the odd corners:
# NUL and controls, combining marks, right-to-left, noncharacters, astral planes.
odd_chars = st.one_of(
    st.characters(exclude_categories=("Cs",)),
    st.sampled_from(
        [
            "\0",
            "\x1b",
            "\u202e",
            "\u0301",
            "\ufeff",
            "\uffff",
            "\ufffe",
            "\U0010ffff",
            "\U0001f600",
            "<",
            "&",
            '"',
            "'",
            "\\",
            "\n",
            "\r",
        ]
    ),
)
odd_text = st.text(odd_chars, max_size=40)
int64 = st.one_of(
    st.sampled_from([0, 1, -1, INT64_MIN, INT64_MAX, 2**53 + 1]), st.integers(INT64_MIN, INT64_MAX)
)
doubles = st.one_of(
    st.sampled_from(
        [float("nan"), float("inf"), float("-inf"), -0.0, 5e-324, 1.7976931348623157e308]
    ),
    st.floats(),
)

# Keys the conventions read first, so odd values reach session, tokens, cost, tags...
KNOWN_KEYS = sorted(
    {
        *cv.SESSION_ID,
        *cv.USER_ID,
        *cv.INPUT,
        *cv.OUTPUT,
        *cv.MODEL,
        *cv.PROVIDER,
        *cv.INPUT_TOKENS,
        *cv.OUTPUT_TOKENS,
        *cv.TOTAL_TOKENS,
        *cv.CACHE_READ_TOKENS,
        *cv.CACHE_WRITE_TOKENS,
        *cv.COST,
        *cv.INPUT_COST,
        *cv.OUTPUT_COST,
        *cv.METADATA_JSON,
        *cv.TAGS,
        *(key for key, _ in cv.SPAN_TYPE),
        *(p + "k" for p in cv.METADATA_PREFIXES),
        *(p + "0.role" for p in cv.INPUT_MESSAGE_PREFIXES + cv.OUTPUT_MESSAGE_PREFIXES),
        *(p + "0.content" for p in cv.INPUT_MESSAGE_PREFIXES + cv.OUTPUT_MESSAGE_PREFIXES),
    }
)
attribute_keys = st.one_of(st.sampled_from(KNOWN_KEYS), odd_text)


def nested_json(depth: int, kind: str) -> str:
    """JSON text nested ``depth`` levels: ``[[[...]]]`` or ``{"a": {"a": ...}}``."""
    if kind == "array":
        return "[" * depth + "]" * depth
    return '{"a": ' * depth + "1" + "}" * depth


def json_strings(max_depth: int, surrogates: bool = False) -> st.SearchStrategy[str]:
    """Strings the conventions parse as JSON (inputs, metadata, tags), some deep, some
    with escaped lone surrogates (valid JSON text that parses to unencodable str)."""
    odd = [
        '{"a": 1',
        "[1, ",
        '{"a": NaN}',
        "[1e999]",
        "{}",
        "[]",
        '"x"',
        "null",
        '{"k": [1, {"x": null}]}',
        "[[[]]]",
        '["\\ud83d\\ude00"]',
    ]
    if surrogates:
        odd += [
            '{"\\ud800": 1}',
            '["x\\udfff"]',
            '{"messages": [{"role": "user", "content": "\\ud800"}]}',
        ]
    return st.one_of(
        st.builds(nested_json, st.integers(1, max_depth), st.sampled_from(["array", "object"])),
        st.sampled_from(odd),
    )


def _leaf() -> st.SearchStrategy[AnyValue]:
    return st.one_of(
        odd_text.map(lambda v: AnyValue(string_value=v)),
        json_strings(60).map(lambda v: AnyValue(string_value=v)),
        int64.map(lambda v: AnyValue(int_value=v)),
        doubles.map(lambda v: AnyValue(double_value=v)),
        st.booleans().map(lambda v: AnyValue(bool_value=v)),
        st.binary(max_size=40).map(lambda v: AnyValue(bytes_value=v)),
        st.just(AnyValue()),  # no value set at all
    )


def _array(values: list[AnyValue]) -> AnyValue:
    result = AnyValue()
    result.array_value.values.extend(values)
    return result


def _kvlist(items: list[tuple[str, AnyValue]]) -> AnyValue:
    result = AnyValue()
    result.kvlist_value.values.extend(KeyValue(key=k, value=v) for k, v in items)
    return result


def deep_value(depth: int) -> AnyValue:
    """A value nested ``depth`` levels, alternating arrays and kvlists."""
    value = AnyValue(int_value=depth)
    for level in range(depth):
        value = _array([value]) if level % 2 else _kvlist([("k", value)])
    return value


any_values = st.one_of(
    st.recursive(
        _leaf(),
        lambda inner: st.one_of(
            st.lists(inner, max_size=4).map(_array),
            st.lists(st.tuples(attribute_keys, inner), max_size=4).map(_kvlist),
        ),
        max_leaves=12,
    ),
    st.integers(1, 12).map(deep_value),
)


def value_depth(value: AnyValue) -> int:
    which = value.WhichOneof("value")
    if which == "array_value":
        return 1 + max((value_depth(v) for v in value.array_value.values), default=0)
    if which == "kvlist_value":
        return 1 + max((value_depth(kv.value) for kv in value.kvlist_value.values), default=0)
    return 0


def _nonzero(size: int) -> st.SearchStrategy[bytes]:
    return st.binary(min_size=size, max_size=size).filter(any)


def ids(size: int) -> st.SearchStrategy[bytes]:
    """Mostly valid ids; otherwise empty, zero, short or long ones."""
    return st.one_of(
        _nonzero(size),
        _nonzero(size),
        _nonzero(size),
        st.sampled_from([b"", bytes(size), b"\x01"]),
        st.binary(max_size=24),
    )


times = st.one_of(
    st.sampled_from([0, 1, INT64_MAX, INT64_MAX + 1, UINT64_MAX]),
    st.integers(BASE_NS - 10**12, BASE_NS + 10**12),
    st.integers(0, UINT64_MAX),
)


@st.composite
def spans(draw: st.DrawFn, input_depth: int = 3000, input_surrogates: bool = True) -> Span:
    start = draw(times)
    end = draw(
        st.one_of(
            times,
            st.integers(0, 10**10).map(lambda d: max(start - d, 0)),
            st.integers(0, 10**10).map(lambda d: min(start + d, UINT64_MAX)),
        )
    )
    result = Span(
        trace_id=draw(ids(16)),
        span_id=draw(ids(8)),
        parent_span_id=draw(st.one_of(st.just(b""), ids(8))),
        name=draw(odd_text),
        kind=draw(st.integers(0, 9)),
        start_time_unix_nano=start,
        end_time_unix_nano=end,
    )
    for key, value in draw(st.lists(st.tuples(attribute_keys, any_values), max_size=8)):
        result.attributes.add(key=key, value=value)
    for key in draw(st.lists(st.sampled_from([*cv.METADATA_JSON, *cv.TAGS]), max_size=2)):
        result.attributes.add(key=key, value=AnyValue(string_value=draw(json_strings(3000, True))))
    for key in draw(st.lists(st.sampled_from([*cv.INPUT[:1], *cv.OUTPUT[:1]]), max_size=2)):
        text = draw(json_strings(input_depth, input_surrogates))
        result.attributes.add(key=key, value=AnyValue(string_value=text))
    for _ in range(draw(st.integers(0, 2))):
        event = result.events.add(
            name=draw(st.one_of(st.just("exception"), odd_text)), time_unix_nano=draw(times)
        )
        for key, value in draw(st.lists(st.tuples(attribute_keys, any_values), max_size=3)):
            event.attributes.add(key=key, value=value)
    result.status.CopyFrom(Status(code=draw(st.integers(0, 3)), message=draw(odd_text)))
    return result


@st.composite
def export_requests(draw: st.DrawFn, **span_options: Any) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    for _ in range(draw(st.integers(0, 2))):
        resource_spans = ResourceSpans()
        for key, value in draw(st.lists(st.tuples(attribute_keys, any_values), max_size=3)):
            resource_spans.resource.attributes.add(key=key, value=value)
        for _ in range(draw(st.integers(0, 2))):
            scope = ScopeSpans(spans=draw(st.lists(spans(**span_options), max_size=4)))
            scope.scope.name = draw(odd_text)
            resource_spans.scope_spans.append(scope)
        request.resource_spans.append(resource_spans)
    return request


# --- what the server should answer -------------------------------------------------


def span_is_valid(span: Span) -> bool:
    """docs/api.md: 16-byte non-zero trace id, 8-byte non-zero span id, parent empty or
    8 bytes, times within int64 nanoseconds. Anything else is rejected, counted."""
    return (
        len(span.trace_id) == 16
        and any(span.trace_id)
        and len(span.span_id) == 8
        and any(span.span_id)
        and len(span.parent_span_id) in (0, 8)
        and span.start_time_unix_nano <= INT64_MAX
        and span.end_time_unix_nano <= INT64_MAX
    )


def all_spans(request: ExportTraceServiceRequest) -> list[Span]:
    return [s for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans]


def max_depth(request: ExportTraceServiceRequest) -> int:
    """How deep attribute values nest anywhere in the request."""
    lists = [rs.resource.attributes for rs in request.resource_spans]
    for span in all_spans(request):
        lists.append(span.attributes)
        lists.extend(event.attributes for event in span.events)
    return max((value_depth(kv.value) for kvs in lists for kv in kvs), default=0)


# --- bodies ------------------------------------------------------------------------


def _ld(number: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field, encoded by hand."""

    def varint(n: int) -> bytes:
        out = bytearray()
        while True:
            out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
            n >>= 7
            if not n:
                return bytes(out)

    return varint(number << 3 | 2) + varint(len(payload)) + payload


def invalid_utf8_span(trace_id: bytes, span_id: bytes, raw: bytes) -> bytes:
    """An ``ExportTraceServiceRequest`` whose span name and string attribute are the raw
    (invalid UTF-8) bytes ``raw``: the protobuf classes cannot build one."""
    attribute = _ld(1, b"k") + _ld(2, _ld(1, raw))  # KeyValue{key, AnyValue{string_value}}
    span = _ld(1, trace_id) + _ld(2, span_id) + _ld(5, raw) + _ld(9, attribute)
    return _ld(1, _ld(2, _ld(2, span)))  # resource_spans.scope_spans.spans


invalid_utf8 = st.one_of(
    st.sampled_from([b"\xff", b"\xc0\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"a\x80b"]),
    st.binary(min_size=1, max_size=12).filter(lambda b: not _is_utf8(b)),
)


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


ENCODINGS = ("protobuf", "json", "protobuf+gzip", "json+gzip")


@dataclass
class Body:
    content: bytes
    content_type: str
    content_encoding: str | None
    # Whether the server may refuse the whole request with a 400 (invalid UTF-8, or
    # values nested past the decoders' recursion limits); otherwise it must answer 200.
    may_be_refused: bool = False
    request: ExportTraceServiceRequest = field(default_factory=ExportTraceServiceRequest)


def encode(request: ExportTraceServiceRequest, encoding: str, extra: bytes = b"") -> Body:
    """``request`` as a POST body; ``extra`` is raw protobuf appended (protobuf only)."""
    if encoding.startswith("json"):
        content, content_type = to_json(request), "application/json"
    else:
        content, content_type = request.SerializeToString() + extra, "application/x-protobuf"
    gzipped = encoding.endswith("+gzip")
    return Body(
        gzip.compress(content, mtime=0) if gzipped else content,
        content_type,
        "gzip" if gzipped else None,
        bool(extra) or max_depth(request) > 20,
        request,
    )


@st.composite
def bodies(draw: st.DrawFn, **span_options: Any) -> Body:
    """POST bodies; ``span_options`` (``input_depth``, ``input_surrogates``) bound the
    JSON text of inputs and outputs, which reads parse (see test_properties.py)."""
    request = draw(export_requests(**span_options))
    encoding = draw(st.sampled_from(ENCODINGS))
    extra = b""
    if encoding.startswith("protobuf") and draw(st.integers(0, 9)) == 0:
        extra = invalid_utf8_span(draw(_nonzero(16)), draw(_nonzero(8)), draw(invalid_utf8))
    return encode(request, encoding, extra)


def json_document(request: ExportTraceServiceRequest) -> dict:
    return json.loads(to_json(request))
