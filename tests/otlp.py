"""Hand-built OTLP requests for tests, with OpenTelemetry's own protobuf classes."""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

BASE_NS = 1_790_000_000_000_000_000  # 2026-09-21T...: a fixed, realistic epoch


def new_trace_id(rng: random.Random | None = None) -> str:
    return (rng or random).getrandbits(128).to_bytes(16, "big").hex()


def new_span_id(rng: random.Random | None = None) -> str:
    return ((rng or random).getrandbits(63) + 1).to_bytes(8, "big").hex()


def any_value(value: Any) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, bytes):
        return AnyValue(bytes_value=value)
    if isinstance(value, (list, tuple)):
        result = AnyValue()
        result.array_value.values.extend(any_value(v) for v in value)
        return result
    if isinstance(value, Mapping):
        result = AnyValue()
        result.kvlist_value.values.extend(key_values(value))
        return result
    return AnyValue(string_value=str(value))


def key_values(attributes: Mapping[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=k, value=any_value(v)) for k, v in attributes.items()]


def span(
    trace_id: str,
    span_id: str,
    *,
    parent: str | None = None,
    name: str = "span",
    start_ns: int = BASE_NS,
    end_ns: int | None = None,
    attributes: Mapping[str, Any] | None = None,
    error: bool | str = False,
    events: Iterable[tuple[str, int, Mapping[str, Any]]] = (),
) -> Span:
    """A span; ``error``: an ERROR status, with this message (``True``: "failed")."""
    result = Span(
        trace_id=bytes.fromhex(trace_id),
        span_id=bytes.fromhex(span_id),
        parent_span_id=bytes.fromhex(parent) if parent else b"",
        name=name,
        kind=Span.SPAN_KIND_INTERNAL,
        start_time_unix_nano=start_ns,
        end_time_unix_nano=end_ns if end_ns is not None else start_ns + 1_000_000,
    )
    result.attributes.extend(key_values(attributes or {}))
    for event_name, time_ns, event_attributes in events:
        event = result.events.add(name=event_name, time_unix_nano=time_ns)
        event.attributes.extend(key_values(event_attributes))
    if error is not False:
        message = "failed" if error is True else error
        result.status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR, message=message))
    return result


@dataclass
class SpanSpec:
    """A span described field by field, to be changed before it is sent (a parent set
    once both exist): ``proto`` builds it with ``span``."""

    name: str
    start_ns: int
    end_ns: int
    trace_id: str = ""
    span_id: str = field(default_factory=new_span_id)
    parent_span_id: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    error: str | None = None  # status message of an ERROR status
    events: list[tuple[str, int, dict[str, Any]]] = field(default_factory=list)

    def proto(self) -> Span:
        return span(
            self.trace_id,
            self.span_id,
            parent=self.parent_span_id,
            name=self.name,
            start_ns=self.start_ns,
            end_ns=self.end_ns,
            attributes=self.attributes,
            error=self.error if self.error is not None else False,
            events=self.events,
        )


def request(spans: Iterable[Span], service: str = "test-app") -> ExportTraceServiceRequest:
    scope = ScopeSpans(spans=list(spans))
    scope.scope.name = "tests"
    resource_spans = ResourceSpans(scope_spans=[scope])
    resource_spans.resource.attributes.extend(key_values({"service.name": service}))
    return ExportTraceServiceRequest(resource_spans=[resource_spans])


def large_traces(
    count: int, spans: int, attributes: Mapping[str, Any]
) -> list[tuple[str, ExportTraceServiceRequest]]:
    """``count`` exports of one new trace each, of ``spans`` spans that all carry
    ``attributes``: with a long input, heavy enough to keep a server busy a while."""
    traces = []
    for _ in range(count):
        trace_id = new_trace_id()
        traces.append(
            (
                trace_id,
                request(span(trace_id, new_span_id(), attributes=attributes) for _ in range(spans)),
            )
        )
    return traces


def to_json(message: ExportTraceServiceRequest) -> bytes:
    """OTLP/JSON: the protobuf JSON mapping with hex (not base64) trace and span ids."""
    document = MessageToDict(message)
    for resource_spans in document.get("resourceSpans", []):
        for scope_spans in resource_spans.get("scopeSpans", []):
            for item in scope_spans.get("spans", []):
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in item:
                        item[key] = base64.b64decode(item[key]).hex()
    return json.dumps(document).encode()
