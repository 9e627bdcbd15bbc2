"""OTLP/HTTP receiver: ``POST /v1/traces`` and ``/v1/logs`` (and success for metrics).

The answer is sent once the spans are committed, and so queryable
(https://opentelemetry.io/docs/specs/otlp/#otlphttp-response; see ``pipeline.py``).
Invalid spans are reported through ``partial_success`` while the valid ones in the same
request are kept. Admission, decoding, normalising and the commit are the shared
``IngestPipeline``; this module only reads the body (bounded) and frames the answer.

Langfuse's SDK exports to ``/api/public/otel/v1/traces`` with HTTP Basic auth; that path
is the same handler, with the key taken from the Basic password (see ``auth.py``).

``/v1/logs`` keeps the GenAI events of an export (a model call's chat messages, for
its span: ``log_events.py``) and discards its other records; the same bounds, gates and
commit-before-answer as traces.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from starlette.requests import ClientDisconnect

from threadline.server.auth import IngestProject, LangfuseIngestProject
from threadline.server.errors import BadRequest
from threadline.server.ingest.decode import encode_response, media_type
from threadline.server.ingest.pipeline import IngestPipeline
from threadline.server.model import Project

router = APIRouter(tags=["ingest"])


async def _export(request: Request, project: Project) -> Response:
    pipeline: IngestPipeline = request.app.state.ingest
    kind = media_type(request.headers.get("content-type"))
    body = await _body(request, pipeline, project)
    with pipeline.pending.hold(project.id):
        response = await pipeline.export(
            project, body, kind, request.headers.get("content-encoding")
        )
    return Response(encode_response(response, kind), media_type=kind)


async def _export_logs(request: Request, project: Project) -> Response:
    pipeline: IngestPipeline = request.app.state.ingest
    kind = media_type(request.headers.get("content-type"))
    body = await _body(request, pipeline, project)
    with pipeline.pending.hold(project.id):
        await pipeline.export_logs(project, body, kind, request.headers.get("content-encoding"))
    # An empty ExportLogsServiceResponse: every record kept is committed.
    return Response(b"" if kind != "application/json" else b"{}", media_type=kind)


async def _body(request: Request, pipeline: IngestPipeline, project: Project) -> list[bytes]:
    # The body's size and time are bounded by RequestBounds (request_bounds.py) for
    # every route; a place of work is taken only once all of it has arrived.
    with pipeline.receiving.hold(project.id):
        try:
            # Kept in the pieces it arrived in: joined in the worker (body.py).
            return [piece async for piece in request.stream() if piece]
        except ClientDisconnect:
            raise BadRequest("the client closed the connection before sending its body") from None


@router.post(
    "/v1/traces",
    summary="OTLP/HTTP trace export (protobuf or JSON, optionally gzip)",
    response_class=Response,
)
async def export_traces(request: Request, project: IngestProject) -> Response:
    return await _export(request, project)


@router.post(
    "/api/public/otel/v1/traces",
    summary="Langfuse's OTLP path: /v1/traces with Basic auth (secret key = API key)",
    response_class=Response,
)
async def export_traces_langfuse(request: Request, project: LangfuseIngestProject) -> Response:
    return await _export(request, project)


@router.post(
    "/v1/logs",
    summary="OTLP/HTTP logs export: GenAI events kept for their spans, other records discarded",
    response_class=Response,
)
async def export_logs(request: Request, project: IngestProject) -> Response:
    return await _export_logs(request, project)


@router.post("/v1/metrics", summary="Accepted and discarded", response_class=Response)
async def export_discarded(request: Request, project: IngestProject) -> Response:
    # Exporters configured for all signals must not retry forever against us: an
    # empty Export*ServiceResponse is the same bytes for every signal.
    kind = media_type(request.headers.get("content-type"))
    return Response(b"" if kind != "application/json" else b"{}", media_type=kind)
