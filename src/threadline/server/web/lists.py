"""The Traces page and its tabs: Traces | Sessions | Users, plus the row fragments.

Each handler builds its query with ``Filters`` and calls the store method its JSON
twin calls (``/api/v1/traces``, ``/api/v1/sessions``, ``/api/v1/users``), so a page
and the API always agree. Handlers are plain ``def``: store reads block.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from threadline.server import numeric_filters
from threadline.server.http.query_names import reads
from threadline.server.model import Project
from threadline.server.score_types import filter_types, written_types
from threadline.server.store import Store
from threadline.server.store.session_turns import TurnPage
from threadline.server.web.auth import PageProject
from threadline.server.web.filters import (
    ALL_TIME_NOTE,
    PRESETS,
    SORTS,
    TAB_PARAMETERS,
    TRACE_SORTS,
    Filters,
)
from threadline.server.web.render import render
from threadline.server.web.score_columns import columns_query, score_columns, written_types_of

router = APIRouter(include_in_schema=False)

# A session row expanded shows its first traces; its page shows the rest, a page at a time.
EXPANDED_TRACES = 100


def _store(request: Request) -> Store:
    return request.app.state.store


def _position(request: Request, project: Project) -> str:
    """The live-mode position to start from, opaque (``live_position.py``)."""
    position = _store(request).live_watermark(project.id)
    return request.app.state.live_positions.seal(project.id, position)


def _context(request: Request, project: Project, tab: str, filters: Filters) -> dict:
    return {
        "project": project,
        "tab": tab,
        "filters": filters,
        "presets": PRESETS,
        "all_time_note": ALL_TIME_NOTE,
        "sorts": SORTS,
        "trace_sorts": TRACE_SORTS,
        "number_fields": numeric_filters.SESSION_FIELDS
        if tab == "sessions"
        else numeric_filters.TRACE_FIELDS,
        "base_url": str(request.base_url).rstrip("/"),
        "score_configs": _store(request).list_score_configs(project.id),
    }


def _older_only(request: Request, project: Project, filters: Filters, empty: bool) -> bool:
    """An unfiltered list empty in its default window, of a project that has traces (its
    feed of trace writes has a position): they are older, and the page says so rather
    than how to send a first trace. Read only then: one lookup of the latest write."""
    if not empty or filters.active():
        return False
    return _store(request).live_watermark(project.id) > 0


def _with_columns(
    request: Request, context: dict, rows: list[Any], kind: str | None = None
) -> dict:
    """A column per score name on the page's rows, typed by its configuration or, else,
    by a score of it: of the row for a ``kind`` of row that is a score target
    ("session", "trace"), else (users) the name's latest."""
    known = written_types(request.app.state)
    written_type = written_types_of(_store(request), context["project"].id, known, kind)
    targets = ((getattr(row, f"{kind}_id", "") if kind else "", row.scores) for row in rows)
    columns = score_columns(context["score_configs"], targets, written_type)
    return context | {"score_columns": columns, "columns_query": columns_query(columns)}


@router.get("/")
def home() -> Response:
    # Sessions first: the landing tab of a sessions-first tool.
    return RedirectResponse("/sessions", status_code=307)


@router.get("/traces", dependencies=[reads(*TAB_PARAMETERS["traces"])])
def traces_tab(request: Request, project: PageProject) -> Response:
    filters = Filters.from_params(request.query_params, "traces")
    # The watermark is read before the list: live mode then starts from it and
    # cannot miss a trace written while this page was being built.
    watermark = _position(request, project)
    page = _store(request).list_traces(
        project.id,
        filters.trace_query(filter_types(request.app.state, _store(request), project.id)),
    )
    context = _context(request, project, "traces", filters) | {
        "page": page,
        "watermark": watermark,
        "older": _older_only(request, project, filters, not page.items),
    }
    context = _with_columns(request, context, page.items, "trace")
    return render(request, "traces.html", context)


@router.get("/sessions", dependencies=[reads(*TAB_PARAMETERS["sessions"])])
def sessions_tab(request: Request, project: PageProject) -> Response:
    filters = Filters.from_params(request.query_params, "sessions")
    # The watermark is read before the list: live mode then starts from it and
    # cannot miss a trace written while this page was being built.
    watermark = _position(request, project)
    page = _store(request).list_sessions(
        project.id,
        filters.session_query(filter_types(request.app.state, _store(request), project.id)),
    )
    context = _context(request, project, "sessions", filters) | {
        "page": page,
        "watermark": watermark,
        "older": _older_only(request, project, filters, not page.items),
    }
    context = _with_columns(request, context, page.items, "session")
    return render(request, "sessions.html", context)


@router.get("/users", dependencies=[reads(*TAB_PARAMETERS["users"])])
def users_tab(request: Request, project: PageProject) -> Response:
    filters = Filters.from_params(request.query_params, "users")
    page = _store(request).list_users(
        project.id, filters.user_query(filter_types(request.app.state, _store(request), project.id))
    )
    context = _context(request, project, "users", filters) | {
        "page": page,
        "older": _older_only(request, project, filters, not page.items),
    }
    context = _with_columns(request, context, page.items)
    return render(request, "users.html", context)


@router.get("/fragments/session-traces")
def session_traces(request: Request, project: PageProject, session_id: str) -> Response:
    """A session row's expansion: its first traces, from the same query as its API twin
    (the session page pages through the rest)."""
    session = _store(request).get_session(project.id, session_id, TurnPage(limit=EXPANDED_TRACES))
    return render(request, "_session_traces.html", {"session": session})
