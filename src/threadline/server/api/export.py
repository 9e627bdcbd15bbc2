"""Bulk export of the Sessions and Traces lists (full key): ``GET
/api/v1/export/sessions`` and ``GET /api/v1/export/traces`` take the lists' filters and
stream every matching row as CSV or JSON Lines (``export.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from threadline.server import export
from threadline.server.api.routes import CurrentStore, SessionFilters, TraceFilters
from threadline.server.auth import CurrentProject

router = APIRouter(prefix="/api/v1/export", tags=["export"])

Format = Annotated[export.ExportFormat, Query(description="`csv` or `jsonl` (JSON Lines).")]
Include = Annotated[
    Literal["spans"] | None,
    Query(description="`spans` (JSONL only): each row carries its traces with all their spans."),
]


def streamed(chunks: Iterator[bytes], fmt: str, name: str) -> StreamingResponse:
    return StreamingResponse(
        chunks,
        media_type=export.MEDIA_TYPES[fmt],
        headers={
            "Content-Disposition": f'attachment; filename="{name}.{fmt}"',
            # Rows are written as they are read: nothing in between should hold them.
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",
        },
    )


@router.get("/sessions", summary="Every session the list's filters match, as CSV or JSONL")
def export_sessions(
    request: Request,
    project: CurrentProject,
    store: CurrentStore,
    filters: SessionFilters,
    format: Format = "jsonl",
    include: Include = None,
) -> StreamingResponse:
    chunks = export.sessions(
        store,
        project.id,
        filters,
        format,
        include_spans=include == "spans",
        idle_seconds=request.app.state.settings.session_idle_seconds,
    )
    return streamed(chunks, format, "sessions")


@router.get("/traces", summary="Every trace the list's filters match, as CSV or JSONL")
def export_traces(
    project: CurrentProject,
    store: CurrentStore,
    filters: TraceFilters,
    format: Format = "jsonl",
    include: Include = None,
) -> StreamingResponse:
    chunks = export.traces(store, project.id, filters, format, include_spans=include == "spans")
    return streamed(chunks, format, "traces")
