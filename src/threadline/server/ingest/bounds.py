"""The work one export may ask for, checked right after decoding and before any of it
is normalised or queued: how many spans, and how many attributes, events and links a
span (or resource, or event) carries. Past a bound the whole export is refused with
413 naming the setting, so nothing of it is half stored; the body's own size is
bounded before this (``max_body_bytes``, ``max_decoded_bytes``).
"""

from __future__ import annotations

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


def _too_many(holder: str, what: str, limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"{holder} has more than {limit} {what} (max_span_attributes)")
