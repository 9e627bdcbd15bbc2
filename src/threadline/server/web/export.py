"""The lists' Export menu: the Sessions or Traces tab, with its filters, as CSV or JSON
Lines (``export.py``). JSON twins: ``GET /api/v1/export/sessions`` and ``/traces``."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import Response

from threadline.server import downloads, export
from threadline.server.errors import BadRequest
from threadline.server.web.auth import PageProject
from threadline.server.web.filters import Filters

router = APIRouter(include_in_schema=False)


def _filters(request: Request) -> Filters:
    filters = Filters.from_params(request.query_params)
    filters.cursor = None  # the whole list, not the page the menu was opened on
    return filters


def _checked(filters: Filters) -> None:
    if filters.errors:
        raise BadRequest("; ".join(filters.errors))


@router.get("/export/sessions")
def export_sessions(
    request: Request,
    project: PageProject,
    format: export.ExportFormat = "csv",
    include: Literal["spans"] | None = None,
) -> Response:
    filters = _filters(request)
    query = filters.session_query()
    _checked(filters)
    chunks = export.sessions(
        request.app.state.store,
        project.id,
        query,
        format,
        include_spans=include == "spans",
        idle_seconds=request.app.state.settings.session_idle_seconds,
    )
    return downloads.streamed(chunks, format, "sessions")


@router.get("/export/traces")
def export_traces(
    request: Request,
    project: PageProject,
    format: export.ExportFormat = "csv",
    include: Literal["spans"] | None = None,
) -> Response:
    filters = _filters(request)
    query = filters.trace_query()
    _checked(filters)
    chunks = export.traces(
        request.app.state.store, project.id, query, format, include_spans=include == "spans"
    )
    return downloads.streamed(chunks, format, "traces")
