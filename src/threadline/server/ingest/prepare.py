"""An export's CPU work, done in an ingest worker process (``workers.py``): inflate,
decode, check the bounds, normalise, redact (the project's rules, given with the job),
and what the store does before its transaction (``Store.span_preparer``: for SQLite the
rows, payloads packed, fresh rollups and search documents).

These are the only steps between the bytes a receiver got and the records the writer
commits, for every export whatever the load: each rule (the bounds of ``bounds.py``, a
span's validity in ``normalize.py``) has one implementation, applied once.

An export of more than ``PIECE_SPANS`` spans is not normalised in one go: it comes back
cut into pieces (each a smaller ``ExportTraceServiceRequest``, serialised), which the
pipeline normalises and commits one at a time, so that other exports take turns with it
in the workers and in the writer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from threadline.server.ingest.body import Body, joined
from threadline.server.ingest.bounds import check_export, count_wire_spans
from threadline.server.ingest.decode import (
    PROTOBUF,
    decode_logs_request,
    decode_request,
    decompress,
)
from threadline.server.ingest.log_events import (
    SpanKey,
    Waiting,
    add_event_messages,
    check_logs_export,
    genai_events,
)
from threadline.server.ingest.normalize import Normalized, normalize_request
from threadline.server.ingest.writer_records import drop_what_rows_hold
from threadline.server.model import GenAIEvent, SpanRecord
from threadline.server.redaction.redactor import redact_spans
from threadline.server.redaction.rules import RedactionRules
from threadline.server.settings import Settings

StorePreparer = Callable[[int, Sequence[SpanRecord]], object]


@dataclass
class Prepared:
    """An export (or a piece of one) ready to commit: its records, the store's own
    preparation of them (None: the store makes it in ``write_spans``), and what was
    rejected."""

    normalized: Normalized
    for_store: object | None
    # How many of the GenAI events waiting for each span it took (``log_events.py``).
    joined: dict[SpanKey, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Job:
    """What a worker is given besides the bytes: how to check, redact and prepare."""

    settings: Settings
    project_id: int
    rules: RedactionRules
    store_preparer: StorePreparer | None
    # The GenAI log events of the project waiting for their span (None: none wait).
    waiting: Waiting | None = None


# Spans normalised and committed in one go: a larger export is handled in pieces of
# this many (~0.3 s of work a piece), other exports taking turns in between.
PIECE_SPANS = 5_000


def prepare_export(
    job: Job, body: Body, kind: str, content_encoding: str | None
) -> Prepared | list[bytes]:
    """The records of the export in ``body`` (whole, or the pieces it arrived in), or,
    past ``PIECE_SPANS`` spans, its pieces.

    ``kind`` is a media type of ``decode`` (protobuf or OTLP/JSON). Raises the
    ``ThreadlineError`` of a bad body, or of one past the bounds of ``bounds.py``.
    """
    settings = job.settings
    with joined(body) as whole:
        inflated = decompress(whole, content_encoding, settings.max_decoded_bytes)
        if kind == PROTOBUF:  # too many spans are refused before they take memory
            count_wire_spans(inflated, settings.max_spans_per_export)
        request = decode_request(inflated, kind)
    if check_export(request, settings) > PIECE_SPANS:
        return cut_into_pieces(request, PIECE_SPANS)
    return _prepared(job, request)


def prepare_piece(job: Job, piece: bytes) -> Prepared:
    """One piece made by ``cut_into_pieces`` (already checked whole), prepared."""
    return _prepared(job, ExportTraceServiceRequest.FromString(piece))


def prepare_log_export(
    job: Job, body: Body, kind: str, content_encoding: str | None
) -> list[GenAIEvent]:
    """The GenAI events of the OTLP logs export in ``body``, redacted (``log_events.py``);
    its other records are discarded. Bounded as a traces export is."""
    settings = job.settings
    with joined(body) as whole:
        inflated = decompress(whole, content_encoding, settings.max_decoded_bytes)
        if kind == PROTOBUF:  # the same field numbers as spans: counted on the wire too
            count_wire_spans(inflated, settings.max_spans_per_export)
        request = decode_logs_request(inflated, kind)
    check_logs_export(request, settings)
    return genai_events(request, job.rules)


def warm_up(job: Job) -> None:
    """Take an empty export through every step, so that what the first real one needs
    (modules, the store's preparation) is loaded before the server says it is ready."""
    _prepared(job, ExportTraceServiceRequest())
    if job.store_preparer is not None:
        job.store_preparer(job.project_id, [])


def _prepared(job: Job, request: ExportTraceServiceRequest) -> Prepared:
    # Before normalising: a span takes the messages of its waiting events as if its
    # SDK had sent them as attributes.
    taken = add_event_messages(request, job.waiting) if job.waiting else {}
    result = normalize_request(request)
    # Before anything is stored: the project's rules, as plain data.
    redact_spans(result.spans, job.rules)
    for_store = None
    if job.store_preparer is not None and result.spans:
        for_store = job.store_preparer(job.project_id, result.spans)
        if for_store is not None:
            # The rows hold the attributes, inputs and outputs now: the writer reads
            # them there, if at all.
            drop_what_rows_hold(result.spans)
    return Prepared(result, for_store, taken)


def cut_into_pieces(request: ExportTraceServiceRequest, size: int) -> list[bytes]:
    """``request`` as serialised requests of at most ``size`` spans each, every span
    with its own resource and scope."""
    pieces: list[bytes] = []
    piece = ExportTraceServiceRequest()
    count = 0
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            spans = scope_spans.spans
            start = 0
            while start < len(spans):
                if count == size:
                    pieces.append(piece.SerializeToString())
                    piece, count = ExportTraceServiceRequest(), 0
                taken = spans[start : start + size - count]
                target = piece.resource_spans.add()
                target.resource.CopyFrom(resource_spans.resource)
                target.schema_url = resource_spans.schema_url
                scope = target.scope_spans.add()
                scope.scope.CopyFrom(scope_spans.scope)
                scope.schema_url = scope_spans.schema_url
                scope.spans.extend(taken)
                count += len(taken)
                start += len(taken)
    if count:
        pieces.append(piece.SerializeToString())
    return pieces
