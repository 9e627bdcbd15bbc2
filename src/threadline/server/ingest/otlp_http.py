"""OTLP/HTTP receiver: ``POST /v1/traces`` (and success for logs and metrics).

The answer is sent only after the spans are committed: a 2xx means durable
(https://opentelemetry.io/docs/specs/otlp/#otlphttp-response). Invalid spans are
reported through ``partial_success`` while the valid ones in the same request are kept.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceResponse,
)
from starlette.concurrency import run_in_threadpool

from threadline.server.auth import CurrentProject
from threadline.server.errors import PayloadTooLarge
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
async def export_traces(request: Request, project: CurrentProject) -> Response:
    settings: Settings = request.app.state.settings
    kind = media_type(request.headers.get("content-type"))
    body = await _read_body(request, settings.max_body_bytes)
    payload = await run_in_threadpool(
        _ingest,
        request.app.state.store,
        settings,
        project,
        body,
        kind,
        request.headers.get("content-encoding"),
    )
    return Response(payload, media_type=kind)


@router.post("/v1/logs", summary="Accepted and discarded", response_class=Response)
@router.post("/v1/metrics", summary="Accepted and discarded", response_class=Response)
async def export_discarded(request: Request, project: CurrentProject) -> Response:
    # Exporters configured for all signals must not retry forever against us: an
    # empty Export*ServiceResponse is the same bytes for every signal.
    kind = media_type(request.headers.get("content-type"))
    return Response(b"" if kind != "application/json" else b"{}", media_type=kind)
