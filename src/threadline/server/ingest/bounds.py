"""The work one export may ask for: how many spans, and how many attributes, events
and links a span (or resource, or event) carries. Past a bound the whole export is
refused with 413 naming the setting, so nothing of it is half stored; the body's own
size is bounded before this (``max_body_bytes``, ``max_decoded_bytes``).

Spans are counted twice. First on the protobuf wire, before decoding
(``count_wire_spans``): a decoded span takes several times its wire size, so 60 MB of
tiny spans would take hundreds of MB to decode only to be refused. Then, with the
attributes, on the decoded request (``check_export``), which covers OTLP/JSON too.
"""

from __future__ import annotations

from collections.abc import Iterator

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from threadline.server.errors import PayloadTooLarge
from threadline.server.settings import Settings


def check_export(request: ExportTraceServiceRequest, settings: Settings) -> int:
    """The number of spans in ``request``, or ``PayloadTooLarge`` if it asks for more
    work than the settings allow."""
    max_spans = settings.max_spans_per_export
    max_attributes = settings.max_span_attributes
    count = 0
    for resource_spans in request.resource_spans:
        if len(resource_spans.resource.attributes) > max_attributes:
            raise _too_many("a resource", "attributes", max_attributes)
        for scope_spans in resource_spans.scope_spans:
            count += len(scope_spans.spans)
            if count > max_spans:
                raise PayloadTooLarge(
                    f"the export holds more than {max_spans} spans (max_spans_per_export): "
                    "send smaller batches"
                )
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans[:]:  # a slice: one wrapper for the list
                if len(span.attributes) > max_attributes:
                    raise _too_many("a span", "attributes", max_attributes)
                if len(span.links) > max_attributes:
                    raise _too_many("a span", "links", max_attributes)
                events = span.events
                if len(events) > max_attributes:
                    raise _too_many("a span", "events", max_attributes)
                for event in events:
                    if len(event.attributes) > max_attributes:
                        raise _too_many("a span event", "attributes", max_attributes)
    return count


def count_wire_spans(body: bytes | memoryview, limit: int) -> int:
    """The spans of a protobuf ``ExportTraceServiceRequest``, counted on the wire
    (``PayloadTooLarge`` past ``limit``). Not a validation: on malformed bytes it stops
    and returns what it counted, and the decoder reports the error."""
    count = 0
    try:
        # ExportTraceServiceRequest.resource_spans = 1 -> ResourceSpans.scope_spans = 2
        # -> ScopeSpans.spans = 2.
        for start, end in _embedded(body, 0, len(body), 1):
            for scope_start, scope_end in _embedded(body, start, end, 2):
                count += sum(1 for _ in _embedded(body, scope_start, scope_end, 2))
                if count > limit:
                    raise PayloadTooLarge(
                        f"the export holds more than {limit} spans (max_spans_per_export): "
                        "send smaller batches"
                    )
    except (IndexError, ValueError):
        pass
    return count


def _embedded(
    data: bytes | memoryview, pos: int, end: int, wanted: int
) -> Iterator[tuple[int, int]]:
    """Where each length-delimited field numbered ``wanted`` lies in ``data[pos:end]``."""
    while pos < end:
        key, pos = _varint(data, pos)
        wire_type = key & 7
        if wire_type == 2:
            length, pos = _varint(data, pos)
            if key >> 3 == wanted:
                yield pos, pos + length
            pos += length
        elif wire_type == 0:
            _, pos = _varint(data, pos)
        elif wire_type == 1:
            pos += 8
        elif wire_type == 5:
            pos += 4
        else:
            raise ValueError("unsupported wire type")
    if pos != end:
        raise ValueError("field past its message")


def _varint(data: bytes | memoryview, pos: int) -> tuple[int, int]:
    byte = data[pos]
    if byte < 0x80:
        return byte, pos + 1
    value, shift = 0, 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _too_many(holder: str, what: str, limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"{holder} has more than {limit} {what} (max_span_attributes)")
