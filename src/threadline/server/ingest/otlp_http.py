"""OTLP/HTTP receiver: ``POST /v1/traces`` (and success for logs and metrics).

The answer is sent only after the spans are committed: a 2xx means durable
(https://opentelemetry.io/docs/specs/otlp/#otlphttp-response). Invalid spans are
reported through ``partial_success`` while the valid ones in the same request are kept.

Exports are decoded, normalised and written one at a time, on the app's single ingest
thread: the work is Python under the GIL, so more threads add no speed, and they slow
the writer down, since each of its SQLite calls gives up the GIL and must then wait to
win it back from threads busy normalising (measured in docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import APIRouter, Request, Response
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceResponse,
)

from threadline.server.auth import IngestProject
from threadline.server.errors import Overloaded, PayloadTooLarge
from threadline.server.ingest.decode import (
    decode_request,
    decompress,
    encode_response,
    media_type,
)
from threadline.server.ingest.normalize import normalize_request
from threadline.server.model import Project
from threadline.server.settings import Settings
from threadline.server.store import Store

router = APIRouter(tags=["ingest"])


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body of {declared} bytes exceeds the limit of {limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _ingest(
    store: Store, settings: Settings, project: Project, body: bytes, kind: str, encoding: str | None
) -> bytes:
    """Inflate, decode, normalise and commit: CPU and disk work, run off the event loop."""
    body = decompress(body, encoding, settings.max_decoded_bytes)
    result = normalize_request(decode_request(body, kind))
    store.write_spans(project.id, result.spans)
    response = ExportTraceServiceResponse()
    if result.rejected:
        response.partial_success.rejected_spans = result.rejected
        response.partial_success.error_message = "; ".join(result.errors)
    return encode_response(response, kind)


@router.post(
    "/v1/traces",
    summary="OTLP/HTTP trace export (protobuf or JSON, optionally gzip)",
    response_class=Response,
)
async def export_traces(request: Request, project: IngestProject) -> Response:
    settings: Settings = request.app.state.settings
    kind = media_type(request.headers.get("content-type"))
    with _admission(request.app.state, settings.max_pending_exports):
        body = await _read_body(request, settings.max_body_bytes)
        payload = await asyncio.get_running_loop().run_in_executor(
            request.app.state.ingest_thread,
            _ingest,
            request.app.state.store,
            settings,
            project,
            body,
            kind,
            request.headers.get("content-encoding"),
        )
    return Response(payload, media_type=kind)


@contextmanager
def _admission(state: Any, limit: int) -> Iterator[None]:
    """Refuse an export, rather than queue it, when ``limit`` are already in flight.

    Queueing without bound would grow memory with every body waiting for the single
    writer; a 503 with Retry-After makes the OTLP exporters back off and retry, and
    nothing acknowledged is lost. Runs on the event loop only, so a plain counter is
    race-free.
    """
    pending = getattr(state, "pending_exports", 0)
    if pending >= limit:
        raise Overloaded(f"{pending} exports in flight: retry later")
    state.pending_exports = pending + 1
    try:
        yield
    finally:
        state.pending_exports -= 1


@router.post("/v1/logs", summary="Accepted and discarded", response_class=Response)
@router.post("/v1/metrics", summary="Accepted and discarded", response_class=Response)
async def export_discarded(request: Request, project: IngestProject) -> Response:
    # Exporters configured for all signals must not retry forever against us: an
    # empty Export*ServiceResponse is the same bytes for every signal.
    kind = media_type(request.headers.get("content-type"))
    return Response(b"" if kind != "application/json" else b"{}", media_type=kind)
