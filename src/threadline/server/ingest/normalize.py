"""From OTLP protobuf spans to storage-agnostic ``SpanRecord``s.

Small pure functions: no I/O, no storage. The field sources are in ``conventions``.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as OtlpSpan
from opentelemetry.proto.trace.v1.trace_pb2 import Status as OtlpStatus

from threadline.server import pricing
from threadline.server.chat_messages import Message
from threadline.server.errors import PayloadTooLarge
from threadline.server.ingest import conventions as cv
from threadline.server.ingest import messages
from threadline.server.ingest.session_signals import span_signals
from threadline.server.jsontext import loads_bounded
from threadline.server.model import SpanRecord, controls_replaced

_KIND_NAMES = {
    OtlpSpan.SPAN_KIND_UNSPECIFIED: "INTERNAL",
    OtlpSpan.SPAN_KIND_INTERNAL: "INTERNAL",
    OtlpSpan.SPAN_KIND_SERVER: "SERVER",
    OtlpSpan.SPAN_KIND_CLIENT: "CLIENT",
    OtlpSpan.SPAN_KIND_PRODUCER: "PRODUCER",
    OtlpSpan.SPAN_KIND_CONSUMER: "CONSUMER",
}
_ZERO_TRACE = bytes(16)
_ZERO_SPAN = bytes(8)
_ZERO_TRACE_HEX = _ZERO_TRACE.hex()
_ZERO_SPAN_HEX = _ZERO_SPAN.hex()
# OTLP times are uint64 nanoseconds; storage integers are int64 (until the year 2262).
_INT64_MAX = 2**63 - 1
# Bounds past any real token count or cost, so that sums over millions of spans stay
# within storage integers and finite floats. Beyond them a value is dropped, not stored.
_MAX_COUNT = 2**40
_MAX_COST = 1e12
# Items an attribute's array or map (or a log record's body) may hold, at each level of
# nesting. Reading a repeated field builds a wrapper per item, in time that grows faster
# than its length: one array of 1.6 million empty values (3.2 MB on the wire) took 8 s
# of CPU and 470 MB, 7 million (14 MB) several minutes; in arrays of 100,000 the same
# 1.6 million took 1.9 s (in arrays of 10,000, 1.6 s).
MAX_VALUE_ITEMS = 100_000


class TooManyValues(PayloadTooLarge):
    """An attribute value (or log body) holds an array or map past ``MAX_VALUE_ITEMS``."""


@dataclass
class Normalized:
    spans: list[SpanRecord] = field(default_factory=list)
    rejected: int = 0
    errors: list[str] = field(default_factory=list)


SpanItem = tuple[dict[str, Any], str | None, OtlpSpan]


def span_items(request: ExportTraceServiceRequest) -> list[SpanItem]:
    """Every span of the request with its resource and scope, so that a large export
    can be normalised and written a piece at a time."""
    items: list[SpanItem] = []
    for resource_spans in request.resource_spans:
        resource = attributes_to_dict(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope.name or None
            items.extend((resource, scope, span) for span in scope_spans.spans)
    return items


def normalize_request(request: ExportTraceServiceRequest) -> Normalized:
    """Every valid span of the request as a record; invalid ones are counted and
    explained, so the exporter learns of them through OTLP ``partial_success``."""
    return normalize_spans(span_items(request))


def normalize_spans(items: Sequence[SpanItem]) -> Normalized:
    result = Normalized()
    for resource, scope, span in items:
        # Checked on the record rather than on the span: each read of a protobuf
        # field builds a new object, and invalid spans are rare.
        record: SpanRecord | None = None
        try:
            record = normalize_span(span, resource, scope)
        except TooManyValues as exc:
            problem: str | None = f"span {span.name!r}: {exc.message}"
        else:
            problem = _invalid(record)
        if record is None or problem:
            result.rejected += 1
            if problem and len(result.errors) < 5:
                result.errors.append(problem)
            continue
        result.spans.append(record)
    # What ties a trace without a session id to its conversation (inferred sessions):
    # not looked for in the traces a span of this export gives a session id, which is
    # most traces, and whose chat inputs it would parse again for nothing.
    explicit = {record.trace_id for record in result.spans if record.session_id is not None}
    for record in result.spans:
        if record.trace_id not in explicit:
            record.session_signals = span_signals(record)
    return result


def _invalid(record: SpanRecord) -> str | None:
    """What makes the span ``record`` was made from invalid, if anything (its ids are
    hex there: two characters a byte; an all-zero parent is no parent)."""
    if len(record.trace_id) != 32 or record.trace_id == _ZERO_TRACE_HEX:
        return f"span {record.name!r}: trace_id must be 16 non-zero bytes"
    if len(record.span_id) != 16 or record.span_id == _ZERO_SPAN_HEX:
        return f"span {record.name!r}: span_id must be 8 non-zero bytes"
    if record.parent_span_id is not None and len(record.parent_span_id) != 16:
        return f"span {record.name!r}: parent_span_id must be empty or 8 bytes"
    # end_ns is at least start_ns: it is past the bound if either time was.
    if record.end_ns > _INT64_MAX:
        return f"span {record.name!r}: start or end time is past the year 2262"
    return None


def normalize_span(span: OtlpSpan, resource: dict[str, Any], scope: str | None) -> SpanRecord:
    attrs = attributes_to_dict(span.attributes)
    otlp_events = span.events
    events = (
        [
            {
                "name": event.name,
                "time_ns": event.time_unix_nano,
                "attributes": attributes_to_dict(event.attributes),
            }
            for event in otlp_events[:]  # a slice: see attributes_to_dict
        ]
        if otlp_events
        else []
    )  # most spans have none
    is_error = span.status.code == OtlpStatus.STATUS_CODE_ERROR or (
        # Most spans have no events: no generator is made to scan none.
        bool(events) and any(event["name"] == "exception" for event in events)
    )
    status_message = (span.status.message or _exception_message(events)) if is_error else None
    start_ns = span.start_time_unix_nano
    end_ns = max(span.end_time_unix_nano, start_ns)

    fields = _pick_fields(attrs)
    _fields_from_objects(attrs, fields)
    model = _as_str(fields.get("model"))
    input_tokens = _as_int(fields.get("input_tokens"))
    output_tokens = _as_int(fields.get("output_tokens"))
    total_tokens = _as_int(fields.get("total_tokens"))
    if total_tokens is None and (input_tokens is not None or output_tokens is not None):
        total_tokens = (input_tokens or 0) + (output_tokens or 0)

    parent = span.parent_span_id
    keys = messages.key_text(attrs)  # for the prefix tests of messages and metadata
    input_text, input_source, input_messages = messages.stored_input(attrs, keys) or _payload(
        fields.get("input")
    )
    output_text, output_source, output_messages = messages.stored_output(attrs, keys) or _payload(
        fields.get("output")
    )
    # Last, what only older conventions send: messages without roles, GenAI's events.
    if input_text is None:
        input_text, input_source, input_messages = messages.roleless_input(
            attrs, keys
        ) or _event_payload(events, cv.INPUT_EVENT)
    if output_text is None:
        output_text, output_source, output_messages = messages.roleless_output(
            attrs, keys
        ) or _event_payload(events, cv.OUTPUT_EVENT)
    return SpanRecord(
        trace_id=span.trace_id.hex(),
        span_id=span.span_id.hex(),
        parent_span_id=parent.hex() if parent and parent != _ZERO_SPAN else None,
        name=span.name,
        kind=_KIND_NAMES.get(span.kind, "INTERNAL"),
        start_ns=start_ns,
        end_ns=end_ns,
        status="error" if is_error else "ok",
        status_message=status_message,
        span_type=_span_type(attrs, fields),
        input=input_text,
        output=output_text,
        input_source=input_source,
        output_source=output_source,
        model=model,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        total_tokens=total_tokens,
        cost_usd=_cost(fields, model, input_tokens, output_tokens),
        attributes=attrs,
        events=events,
        resource=resource,
        scope=scope,
        session_id=_as_name(fields.get("session_id")),
        user_id=_as_name(fields.get("user_id")),
        metadata=_metadata(attrs, keys),
        tags=_tags(attrs),
        input_messages=input_messages,
        output_messages=output_messages,
    )


# --- attribute values ----------------------------------------------------------------


def attributes_to_dict(attributes: Sequence[KeyValue] | Any) -> dict[str, Any]:
    result: dict[str, Any] = {}
    # A slice, not the field itself: upb's repeated fields have no __iter__, so a loop
    # over one indexes it until an IndexError, and building that error costs more
    # (~2 thousand instructions) than a slice copying the items out.
    for kv in attributes[:]:
        value = kv.value
        # Most attributes are strings: reading the field straight away costs half of
        # asking the oneof which field is set (a non-empty string can only be the one).
        text = value.string_value
        result[kv.key] = text if text else any_value(value)
    return result


def any_value(value: AnyValue) -> Any:
    which = value.WhichOneof("value")
    if which == "string_value":
        return value.string_value
    if which == "int_value":
        return value.int_value
    if which == "double_value":
        return value.double_value
    if which == "bool_value":
        return value.bool_value
    if which == "array_value":
        items = value.array_value.values
        _check_items(len(items), "an array")
        return [any_value(v) for v in items[:]]  # see attributes_to_dict
    if which == "kvlist_value":
        entries = value.kvlist_value.values
        _check_items(len(entries), "a map")
        return attributes_to_dict(entries)
    if which == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return None


def _check_items(count: int, what: str) -> None:
    if count > MAX_VALUE_ITEMS:
        raise TooManyValues(
            f"an attribute or log body holds {what} of {count} items, over {MAX_VALUE_ITEMS}"
        )


# --- fields ----------------------------------------------------------------------------


# The table of ``conventions`` compiled for a single pass over a span's attributes:
# attribute key -> (field, rank), where a lower rank is an earlier key of the table.
_FIELD_KEYS: dict[str, tuple[str, ...]] = {
    "session_id": cv.SESSION_ID,
    "user_id": cv.USER_ID,
    "input": cv.INPUT,
    "output": cv.OUTPUT,
    "model": cv.MODEL,
    "provider": cv.PROVIDER,
    "input_tokens": cv.INPUT_TOKENS,
    "output_tokens": cv.OUTPUT_TOKENS,
    "total_tokens": cv.TOTAL_TOKENS,
    "cache_read_tokens": cv.CACHE_READ_TOKENS,
    "cache_write_tokens": cv.CACHE_WRITE_TOKENS,
    "cost": cv.COST,
    "input_cost": cv.INPUT_COST,
    "output_cost": cv.OUTPUT_COST,
}
_KEY_INDEX: dict[str, tuple[str, int]] = {
    key: (name, rank) for name, keys in _FIELD_KEYS.items() for rank, key in enumerate(keys)
}


def _pick_fields(attrs: Mapping[str, Any]) -> dict[str, tuple[str, Any]]:
    """For each field, the (key, value) of its first present key in table order.

    One dict lookup per attribute the span has, rather than one per key the table
    knows: spans carry a handful of attributes, the table has dozens of keys.
    """
    picked: dict[str, tuple[str, Any]] = {}
    for key, value in attrs.items():
        hit = _KEY_INDEX.get(key)
        if hit is None or value is None or value == "":
            continue
        name, rank = hit
        # A field is rarely given by two keys of one span: only then is the rank of
        # the key held looked up, rather than kept for every field picked.
        if name not in picked or rank < _KEY_INDEX[picked[name][0]][1]:
            picked[name] = (key, value)
    return picked


_USAGE_OBJECT_KEYS = frozenset(attribute for attribute, _ in cv.USAGE_OBJECTS)


def _fields_from_objects(attrs: Mapping[str, Any], picked: dict[str, tuple[str, Any]]) -> None:
    """Fields no single key gave, from attributes holding a JSON object of several
    (``cv.USAGE_OBJECTS``); each found as ``(<attribute>.<key>, value)``."""
    if attrs.keys().isdisjoint(_USAGE_OBJECT_KEYS):
        return  # most spans: one check in C rather than a lookup per attribute named
    for attribute, sources in cv.USAGE_OBJECTS:
        raw = attrs.get(attribute)
        if not (isinstance(raw, str) and raw.startswith("{")):
            continue
        document = _json_within_depth(raw)
        if not isinstance(document, dict):
            continue
        for name, keys in sources.items():
            if name in picked:
                continue
            for key in keys:
                if document.get(key) is not None:
                    picked[name] = (f"{attribute}.{key}", document[key])
                    break


def _as_str(found: tuple[str, Any] | None) -> str | None:
    return None if found is None else str(found[1])


def _as_name(found: tuple[str, Any] | None) -> str | None:
    """A session or user id, its control characters replaced (see ``_name``)."""
    return None if found is None else _name(str(found[1]))


def _name(text: str) -> str:
    """An id or tag as sent, but a control character (NUL, newline, ESC, a bidi
    override...) is U+FFFD: the API refuses them in the ids and tags a client types
    (``model.Name``), and refusing the span for it would lose its data; the attribute
    itself keeps what was sent."""
    return controls_replaced(text)


def _as_int(found: tuple[str, Any] | None) -> int | None:
    """A count within bounds, or None: a bad token count is not worth a rejected span."""
    if found is None or isinstance(found[1], bool):
        return None
    try:
        value = int(found[1])
    except (TypeError, ValueError, OverflowError):
        return None
    return value if 0 <= value <= _MAX_COUNT else None


def _as_float(found: tuple[str, Any] | None) -> float | None:
    if found is None or isinstance(found[1], bool):
        return None
    try:
        value = float(found[1])
    except (TypeError, ValueError, OverflowError):
        return None
    return value if math.isfinite(value) and 0 <= value <= _MAX_COST else None


def _span_type(attrs: Mapping[str, Any], fields: Mapping[str, Any]) -> str:
    for key, mapping in cv.SPAN_TYPE:
        if key not in attrs:  # an operator, cheaper than a call of attrs.get
            continue
        value = attrs[key]
        if isinstance(value, str) and value:
            upper = value.upper()
            if mapping is None:
                return upper
            if upper in mapping:
                return mapping[upper]
            # A known key with a value that has no Threadline meaning (e.g. CHAIN).
            break
    if "model" in fields or "input_tokens" in fields or "output_tokens" in fields:
        return "LLM"
    return "DEFAULT"


def _payload(
    found: tuple[str, Any] | None,
) -> tuple[str | None, str | None, list[Message] | None]:
    """A payload attribute as text, the attribute holding exactly that text, if any, and
    the messages the text is the JSON of, if ingest made it from them. A payload that is
    itself a list of chat messages is put in the one message shape."""
    if found is None:
        return None, None, None
    key, value = found
    if isinstance(value, str):
        return messages.stored_payload(key, value) or (value, key, None)
    parsed = messages.from_value(value)
    return json.dumps(parsed if parsed else value), None, parsed or None


def _event_payload(
    events: list[dict[str, Any]], source: tuple[str, str]
) -> tuple[str | None, str | None, list[Message] | None]:
    """The payload of the first event named ``source[0]`` holding attribute ``source[1]``,
    as ``_payload`` gives it; no span attribute holds its text (source None)."""
    name, key = source
    for event in events:  # most spans have none
        if event["name"] == name:
            value = event["attributes"].get(key)
            if value is not None and value != "":
                text, _, chat = _payload((key, value))
                return text, None, chat
    return None, None, None


# Session and user keys that sit under a metadata prefix (Traceloop's association
# properties hold all three): they are the session and user, not metadata.
_ASSOCIATION_KEYS = frozenset(cv.SESSION_ID + cv.USER_ID)
_METADATA_JSON_KEYS = frozenset(cv.METADATA_JSON)
_METADATA_PREFIXES = messages.Prefixes(cv.METADATA_PREFIXES)


def _metadata(attrs: Mapping[str, Any], keys: str) -> dict[str, Any]:
    """The span's metadata (``keys`` is ``messages.key_text(attrs)``)."""
    metadata: dict[str, Any] = {}
    if not attrs.keys().isdisjoint(_METADATA_JSON_KEYS):
        for key in cv.METADATA_JSON:
            raw = attrs.get(key)
            if isinstance(raw, str) and raw.startswith("{"):
                parsed = _json_within_depth(raw)
                if isinstance(parsed, dict):
                    metadata.update(parsed)
    if not messages.may_have_key_starting_with(keys, _METADATA_PREFIXES):
        return metadata  # most spans: no key is tested one by one
    for key, value in attrs.items():
        if key.startswith(cv.METADATA_PREFIXES) and key not in _ASSOCIATION_KEYS:
            prefix = next(p for p in cv.METADATA_PREFIXES if key.startswith(p))
            if prefix in cv.METADATA_JSON_VALUE_PREFIXES and isinstance(value, str):
                parsed = _json_within_depth(value)
                value = value if parsed is None else parsed
            metadata[key[len(prefix) :]] = value
    return metadata


# Metadata and tags are stored parsed and rendered back by the API: JSON nested deeper
# than this is treated as text.
_MAX_JSON_DEPTH = 32


def _json_within_depth(text: str) -> Any:
    """``text`` parsed as JSON, or None if it is not JSON within bounds."""
    try:
        return loads_bounded(text, _MAX_JSON_DEPTH)
    except ValueError:
        return None


_TAG_KEYS = frozenset(cv.TAGS)


def _tags(attrs: Mapping[str, Any]) -> list[str]:
    tags: list[str] = []
    if attrs.keys().isdisjoint(_TAG_KEYS):
        return tags  # most spans: one check in C rather than a lookup per key
    for key in cv.TAGS:
        value = attrs.get(key)
        if isinstance(value, str):
            # Some SDKs send a JSON-encoded list in a string attribute.
            parsed = _json_within_depth(value) if value.startswith("[") else None
            value = parsed if isinstance(parsed, list) else [value]
        if isinstance(value, list):
            for tag in value:
                name = _name(str(tag))
                if name not in tags:
                    tags.append(name)
    return tags


def _cost(
    fields: Mapping[str, tuple[str, Any]],
    model: str | None,
    input_tokens: int | None,
    output_tokens: int | None,
) -> float | None:
    # Most spans carry no cost: the fields are looked for before any call is made.
    if "cost" in fields:
        given = _as_float(fields["cost"])
        if given is not None:
            return given
    if "input_cost" in fields or "output_cost" in fields:
        input_cost = _as_float(fields.get("input_cost"))
        output_cost = _as_float(fields.get("output_cost"))
        if input_cost is not None or output_cost is not None:
            return (input_cost or 0.0) + (output_cost or 0.0)
    if model is None:
        return None  # as pricing.cost_usd would: no price without a model (most spans)
    return pricing.cost_usd(
        model,
        _as_str(fields.get("provider")),
        input_tokens,
        output_tokens,
        _as_int(fields.get("cache_read_tokens")),
        _as_int(fields.get("cache_write_tokens")),
    )


def _exception_message(events: list[dict[str, Any]]) -> str | None:
    for event in events:
        if event["name"] == "exception":
            attributes = event["attributes"]
            kind = attributes.get("exception.type")
            message = attributes.get("exception.message")
            return ": ".join(str(part) for part in (kind, message) if part) or None
    return None
