"""Bulk export of the Sessions and Traces lists (full key): ``GET
/api/v1/export/sessions`` and ``GET /api/v1/export/traces`` take the lists' filters and
stream every matching row as CSV or JSON Lines (``export.py``)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from threadline.server import downloads, export
from threadline.server.api.routes import (
    CurrentStore,
    WindowedSessionFilters,
    WindowedTraceFilters,
)
from threadline.server.auth import CurrentProject

router = APIRouter(prefix="/api/v1/export", tags=["export"])

Format = Annotated[export.ExportFormat, Query(description="`csv` or `jsonl` (JSON Lines).")]
Include = Annotated[
    Literal["spans"] | None,
    Query(description="`spans` (JSONL only): each row carries its traces with all their spans."),
]


@router.get("/sessions", summary="Every session the list's filters match, as CSV or JSONL")
def export_sessions(
    request: Request,
    project: CurrentProject,
    store: CurrentStore,
    filters: WindowedSessionFilters,
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
    return downloads.streamed(chunks, format, "sessions")


@router.get("/traces", summary="Every trace the list's filters match, as CSV or JSONL")
def export_traces(
    project: CurrentProject,
    store: CurrentStore,
    filters: WindowedTraceFilters,
    format: Format = "jsonl",
    include: Include = None,
) -> StreamingResponse:
    chunks = export.traces(store, project.id, filters, format, include_spans=include == "spans")
    return downloads.streamed(chunks, format, "traces")
