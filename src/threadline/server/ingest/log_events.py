"""GenAI log events: the chat messages an instrumentation sends as OTLP logs, kept and
joined to their span.

OpenTelemetry's GenAI instrumentations (the OpenAI one, ``opentelemetry-instrumentation-
openai-v2``) put a call's model, tokens and operation on its span but its messages only
in log events: ``gen_ai.<role>.message`` for each message sent, ``gen_ai.choice`` for
each answer, each with the trace and span id of the call. Of an OTLP logs export only
those are kept (the record's ``event_name``, or the ``event.name`` attribute older SDKs
set), and only with a trace and a span id; every other record is discarded.

Logs and spans are exported apart, in either order (the SDKs' defaults: logs every
second, spans every five, so events usually come first). ``add_event_messages`` writes
the events waiting for a span onto it as ``gen_ai.input.messages`` /
``gen_ai.output.messages`` before it is normalised, so the span is stored exactly as if
the application's SDK had put them there (``sdk/genai_events.py`` does that on the
client): its input and output, the trace's previews, the session's first input and last
output, search and inferred sessions all follow. Events that come after their span is
stored are kept beside it; a model call lacking an input or output takes them as it
would have (``fill_with_late_events``), written again over its stored copy
(``Store.replace_spans``), so everything but inferred sessions follows
(``store/genai_events.py``).
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Mapping, Sequence

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from threadline.genai.events import event_message
from threadline.server.errors import PayloadTooLarge
from threadline.server.ingest import messages
from threadline.server.ingest.normalize import any_value
from threadline.server.model import GenAIEvent, SpanRecord
from threadline.server.redaction.redactor import redactor
from threadline.server.redaction.rules import RedactionRules
from threadline.server.settings import Settings
from threadline.server.store.genai_events import in_order, messages_text

INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
_EVENT_NAME_ATTRIBUTE = "event.name"
_ZERO_TRACE = bytes(16)
_ZERO_SPAN = bytes(8)

# A span, by (trace id, span id) in hex.
SpanKey = tuple[str, str]
# The events waiting for one span as the span takes them (``span_messages``): the JSON
# text of its input messages and of its output messages (None: no such event), and how
# many events that was. Texts, not the events: a project's waiting spans travel with
# each of its span exports to a worker, and three strings pickle and load some thirty
# times faster than the events they were made of (docs/benchmarks.md).
SpanMessages = tuple[str | None, str | None, int]
Waiting = Mapping[SpanKey, SpanMessages]

_encode = json.JSONEncoder(ensure_ascii=False, default=str).encode


def check_logs_export(request: ExportLogsServiceRequest, settings: Settings) -> int:
    """The number of log records in ``request``, or ``PayloadTooLarge`` past the bounds
    spans have (a record counts as a span: ``max_spans_per_export``, and its attributes
    as a span's: ``max_span_attributes``)."""
    max_records = settings.max_spans_per_export
    max_attributes = settings.max_span_attributes
    count = 0
    for resource_logs in request.resource_logs:
        if len(resource_logs.resource.attributes) > max_attributes:
            raise _too_many("a resource", max_attributes)
        for scope_logs in resource_logs.scope_logs:
            records = scope_logs.log_records
            count += len(records)
            if count > max_records:
                raise PayloadTooLarge(
                    f"the export holds more than {max_records} log records "
                    "(max_spans_per_export): send smaller batches"
                )
            for record in records[:]:
                if len(record.attributes) > max_attributes:
                    raise _too_many("a log record", max_attributes)
    return count


def _too_many(holder: str, limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"{holder} has more than {limit} attributes (max_span_attributes)")


def genai_events(request: ExportLogsServiceRequest, rules: RedactionRules) -> list[GenAIEvent]:
    """The GenAI events of ``request`` that name their span, in the order sent, each
    message redacted by the project's ``rules``."""
    received_ns = time.time_ns()
    redact = redactor(rules).value if rules.active else None
    events: list[GenAIEvent] = []
    for resource_logs in request.resource_logs:
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records[:]:
                name = record.event_name or _event_name(record.attributes)
                if not name.startswith("gen_ai."):
                    continue
                trace_id, span_id = record.trace_id, record.span_id
                if len(trace_id) != 16 or trace_id == _ZERO_TRACE:
                    continue
                if len(span_id) != 8 or span_id == _ZERO_SPAN:
                    continue
                body = any_value(record.body) if record.HasField("body") else None
                found = event_message(name, body)
                if found is None:
                    continue
                is_output, message = found
                if redact is not None:
                    message = redact(message)
                events.append(
                    GenAIEvent(
                        trace_id=trace_id.hex(),
                        span_id=span_id.hex(),
                        time_ns=record.time_unix_nano or record.observed_time_unix_nano,
                        received_ns=received_ns,
                        seq=len(events),
                        is_output=is_output,
                        message=_encode(message),
                        event_id=secrets.randbits(63),
                    )
                )
    return events


def _event_name(attributes: Sequence[KeyValue]) -> str:
    for kv in attributes[:]:
        if kv.key == _EVENT_NAME_ATTRIBUTE:
            return kv.value.string_value
    return ""


def fill_with_late_events(span: SpanRecord, events: Sequence[GenAIEvent]) -> bool:
    """Give the stored ``span`` (a model call lacking an input or output) the messages
    of its late ``events``, as it would have had them had they come first: the GenAI
    conventions' message attributes, and its input and output made of them as ingest
    makes them, where it has none of its own. Whether it took any."""
    sent, said, _ = span_messages(events)
    attributes = dict(span.attributes)
    took = False
    for text, is_output, attribute in (
        (sent, False, INPUT_MESSAGES),
        (said, True, OUTPUT_MESSAGES),
    ):
        own = span.output if is_output else span.input
        if text is None or own is not None or attribute in attributes:
            continue
        attributes[attribute] = text
        keys = messages.key_text(attributes)
        stored = (messages.stored_output if is_output else messages.stored_input)(attributes, keys)
        if stored is None:
            del attributes[attribute]
            continue
        took = True
        if is_output:
            span.output, span.output_source, span.output_messages = stored
        else:
            span.input, span.input_source, span.input_messages = stored
    span.attributes = attributes
    return took


def span_messages(events: Sequence[GenAIEvent]) -> SpanMessages:
    """The events waiting for one span as it takes them, in the order emitted."""
    ordered = in_order(events)
    sent = [e for e in ordered if not e.is_output]
    said = [e for e in ordered if e.is_output]
    return (
        messages_text(sent) if sent else None,
        messages_text(said) if said else None,
        len(events),
    )


def add_event_messages(request: ExportTraceServiceRequest, waiting: Waiting) -> dict[SpanKey, int]:
    """Write the events waiting for a span of ``request`` onto it, as the GenAI
    conventions' message attributes, where the span has none of its own; returns how
    many events each span took."""
    taken: dict[SpanKey, int] = {}
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans[:]:
                key = (span.trace_id.hex(), span.span_id.hex())
                found = waiting.get(key)
                if found is None:
                    continue
                present = {kv.key for kv in span.attributes[:]}
                for text, attribute in ((found[0], INPUT_MESSAGES), (found[1], OUTPUT_MESSAGES)):
                    if text is not None and attribute not in present:
                        span.attributes.append(
                            KeyValue(key=attribute, value=AnyValue(string_value=text))
                        )
                taken[key] = found[2]
    return taken
