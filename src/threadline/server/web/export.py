"""The lists' Export menu: the Sessions or Traces tab, with its filters, as CSV or JSON
Lines (``export.py``). JSON twins: ``GET /api/v1/export/sessions`` and ``/traces``."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import Response

from threadline.server import downloads, export
from threadline.server.http.query_names import reads
from threadline.server.score_types import filter_types
from threadline.server.web.auth import PageProject
from threadline.server.web.filters import TAB_PARAMETERS, Filters

router = APIRouter(include_in_schema=False)


def _takes(tab: str) -> Any:
    """The tab's filters (the whole list: no cursor, not the page the menu was on)."""
    return reads(*(name for name in TAB_PARAMETERS[tab] if name != "cursor"))


@router.get("/export/sessions", dependencies=[_takes("sessions")])
def export_sessions(
    request: Request,
    project: PageProject,
    format: export.ExportFormat = "csv",
    include: Literal["spans"] | None = None,
) -> Response:
    types = filter_types(request.app.state, request.app.state.store, project.id)
    query = Filters.from_params(request.query_params, "sessions").session_query(types)
    chunks = export.sessions(
        request.app.state.store,
        project.id,
        query,
        format,
        include_spans=include == "spans",
        idle_seconds=request.app.state.settings.session_idle_seconds,
    )
    return downloads.streamed(chunks, format, "sessions")


@router.get("/export/traces", dependencies=[_takes("traces")])
def export_traces(
    request: Request,
    project: PageProject,
    format: export.ExportFormat = "csv",
    include: Literal["spans"] | None = None,
) -> Response:
    types = filter_types(request.app.state, request.app.state.store, project.id)
    query = Filters.from_params(request.query_params, "traces").trace_query(types)
    chunks = export.traces(
        request.app.state.store, project.id, query, format, include_spans=include == "spans"
    )
    return downloads.streamed(chunks, format, "traces")
