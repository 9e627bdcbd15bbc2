"""The session page (a transcript), the trace view (tree + waterfall + span detail)
and the session export. JSON twins: ``/api/v1/sessions/{id}``, ``/api/v1/traces/{id}``.

What a client sends has no size bound a page could follow (a trace of 100,000 spans, a
span of a million attributes), so every page is bounded instead: a session's turns and
a trace's span rows come in pages, a span's detail shows its first attributes and
events (present.py), and the export streams one trace at a time.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse

from threadline.server.context_growth import context_growth
from threadline.server.errors import BadRequest
from threadline.server.http.path_values import controls_in_path
from threadline.server.model import MAX_SEARCH_CHARS, Project, SessionDetail, Trace, TraceDetail
from threadline.server.session_activity import mark_activity
from threadline.server.store import Store
from threadline.server.store.session_turns import TurnPage
from threadline.server.web import context_chart, session_find
from threadline.server.web.auth import PageProject
from threadline.server.web.evaluations import runs_context
from threadline.server.web.render import render
from threadline.server.web.scores import (
    Target,
    configs_of,
    form_context,
    scores_of,
    session_scores,
    turn_scores,
)
from threadline.server.web.transcript import build_turns
from threadline.server.web.waterfall import SpanRow, span_rows

router = APIRouter(include_in_schema=False)

# A transcript reads every turn's spans: a page shows this many turns, and links to the
# pages before and after it.
TURNS_PER_PAGE = 50
# Rows of a trace's span tree sent at once; a button loads the next ones.
ROWS_PER_PAGE = 500
# Bounds the page number a client can ask for (a larger one is a 422, not a 500).
_MAX_OFFSET = 10**9


def _store(request: Request) -> Store:
    return request.app.state.store


def _not_found(request: Request, project: Project, what: str) -> Response:
    malformed = controls_in_path(request)
    if malformed is not None:
        raise BadRequest(malformed)
    return render(request, "not_found.html", {"project": project, "what": what}, status_code=404)


@router.get("/sessions/{session_id:path}")
def session_page(
    request: Request,
    project: PageProject,
    session_id: str,
    id: str | None = None,
    turn: Annotated[int | None, Query(ge=1, le=_MAX_OFFSET, description="First turn shown")] = None,
    find: Annotated[str, Query(max_length=MAX_SEARCH_CHARS)] = "",
    match: Annotated[int, Query(ge=1, le=session_find.MAX_MATCHES)] = 1,
) -> Response:
    # "/sessions/?id=.." names the sessions whose id a browser cannot keep in a path.
    session_id = session_id or id or ""
    store = _store(request)
    found = None
    if find.strip():
        matches = store.find_in_session(project.id, session_id, find)
        found = session_find.find(matches, find, match)
        # Without a page of turns asked for, the one that shows the match.
        turn = turn or found.first_turn(TURNS_PER_PAGE)
    turn = turn or 1
    # Read before the session: the page's live stream starts from it and cannot miss a
    # turn written while the page was being built. Opaque, as every live position.
    watermark = request.app.state.live_positions.seal(project.id, store.live_watermark(project.id))
    session = turns_page(store, project.id, session_id, turn)
    if session is None:
        return _not_found(request, project, f"session {session_id!r}")
    before, shown = split_turn_before(session, turn)
    details = [store.get_trace(project.id, t.trace_id) for t in shown]
    # The turn before the page, whose messages the first shown turn may continue.
    previous = store.get_trace(project.id, before.trace_id) if before else None
    turns = build_turns(
        session,
        [d for d in details if d is not None],
        first_index=turn,
        previous_end=before.end_time if before else None,
    )
    target = Target(session_id=session_id)
    configs = configs_of(store, project.id)
    context = {
        "project": project,
        "tab": "sessions",
        "session": session,
        "turns": turns,
        "earlier_turn": max(turn - TURNS_PER_PAGE, 1) if turn > 1 else None,
        "later_turn": turn + TURNS_PER_PAGE if session.next_cursor else None,
        "context_chart": context_chart.layout(
            context_growth([d for d in details if d is not None], turn, previous)
        ),
        "turns_per_page": TURNS_PER_PAGE,
        "live_stream": "/live/session?" + urlencode({"session_id": session_id}),
        "watermark": watermark,
        "target": target,
        "scores": scores_of(store, project.id, target),
        "turn_scores": turn_scores(store, project.id, [t.trace.trace_id for t in turns]),
        "configs": {c.name: c for c in configs},
        "notes": store.list_notes(project.id, session_id),
        "found": found,
        "found_links": found.neighbours(session_id, TURNS_PER_PAGE) if found else None,
        **form_context(configs),
    }
    context |= runs_context(store, project, session.session_id)
    context["evaluators"] = store.list_evaluators(project.id)
    return render(request, "session.html", context)


def turns_page(store: Store, project_id: int, session_id: str, turn: int) -> SessionDetail | None:
    """The session with the page of turns from ``turn``, and the turn before it (its
    end and messages lead into the page): the page's turns read, not the session's."""
    first = max(turn - 1, 1)
    return store.get_session(
        project_id, session_id, TurnPage(limit=TURNS_PER_PAGE + turn - first, turn=first)
    )


def split_turn_before(session: SessionDetail, turn: int) -> tuple[Trace | None, list[Trace]]:
    """The turn before the page (None on the first page) and the page's turns."""
    if turn > 1 and session.traces:
        return session.traces[0], session.traces[1:]
    return None, session.traces


def _selected(trace: TraceDetail, span_id: str | None):
    rows = span_rows(trace)
    chosen = next((r.span for r in rows if r.span.span_id == span_id), None)
    return rows, chosen or (rows[0].span if rows else None)


@router.get("/traces/{trace_id}")
def trace_page(
    request: Request, project: PageProject, trace_id: str, span: str | None = None
) -> Response:
    store = _store(request)
    trace = store.get_trace(project.id, trace_id.lower())
    if trace is None:
        return _not_found(request, project, f"trace {trace_id!r}")
    rows, selected = _selected(trace, span)
    configs = configs_of(store, project.id)
    target = Target(trace_id=trace.trace_id)
    context = {
        "project": project,
        "tab": "traces",
        "trace": trace,
        **_row_page(rows, 0),
        "selected": selected,
        "target": target,
        "scores": scores_of(store, project.id, target),
        "configs": {c.name: c for c in configs},
        **_span_scores(store, project.id, trace, selected),
        **form_context(configs),
    }
    return render(request, "trace.html", context)


@router.get("/fragments/span-rows")
def span_rows_fragment(
    request: Request,
    project: PageProject,
    trace_id: str,
    offset: Annotated[int, Query(ge=0, le=_MAX_OFFSET)] = 0,
    span: str | None = None,
) -> Response:
    """The next page of a trace's span tree, and the button for the page after it."""
    trace = _store(request).get_trace(project.id, trace_id.lower())
    if trace is None:
        return _not_found(request, project, f"trace {trace_id!r}")
    context = {"trace": trace, **_row_page(span_rows(trace), offset), "selected_id": span}
    return render(request, "_span_rows.html", context)


def _row_page(rows: list[SpanRow], offset: int) -> dict[str, object]:
    end = offset + ROWS_PER_PAGE
    return {
        "rows": rows[offset:end],
        "next_offset": end if end < len(rows) else None,
        "rows_left": max(len(rows) - end, 0),
        "rows_per_page": ROWS_PER_PAGE,
    }


def _span_scores(store: Store, project_id: int, trace: TraceDetail, span: Any) -> dict[str, Any]:
    if span is None:
        return {"span_target": None, "span_scores": []}
    target = Target(trace_id=trace.trace_id, span_id=span.span_id)
    return {"span_target": target, "span_scores": scores_of(store, project_id, target)}


@router.get("/fragments/span")
def span_fragment(request: Request, project: PageProject, trace_id: str, span_id: str) -> Response:
    store = _store(request)
    trace = store.get_trace(project.id, trace_id.lower())
    if trace is None:
        return _not_found(request, project, f"trace {trace_id!r}")
    _, selected = _selected(trace, span_id)
    context = {
        "trace": trace,
        "selected": selected,
        "configs": {c.name: c for c in configs_of(store, project.id)},
        **_span_scores(store, project.id, trace, selected),
    }
    return render(request, "_span_detail.html", context)


@router.get("/export/session.json")
def export_session(request: Request, project: PageProject, session_id: str) -> Response:
    """The whole session: its rollup, every trace with all spans, its scores and notes,
    as one JSON file streamed a trace at a time (a session may hold more than fits in
    memory at once)."""
    store = _store(request)
    session = store.get_session(project.id, session_id)
    if session is None:
        return _not_found(request, project, f"session {session_id!r}")
    mark_activity([session], request.app.state.settings.session_idle_seconds)
    safe_name = "".join(c if c.isalnum() or c in "-_." else "_" for c in session_id)[:80]
    return StreamingResponse(
        _session_json(store, project.id, session),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="session-{safe_name}.json"'},
    )


def _session_json(store: Store, project_id: int, session: SessionDetail) -> Iterator[bytes]:
    """``{"session": ..., "traces": [...], "scores": [...], "notes": [...]}``, one trace
    read and sent at a time (a sync iterator: Starlette runs it in its thread pool, off
    the event loop)."""

    def dumps(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False, indent=2)

    # The session's own fields (not a page's), and each trace once: in full, under "traces".
    fields = session.model_dump(mode="json", exclude={"traces", "first_turn", "next_cursor"})
    yield f'{{\n"session": {dumps(fields)},\n'.encode()
    yield b'"traces": [\n'
    separator = ""
    for summary in session.traces:
        trace = store.get_trace(project_id, summary.trace_id)
        if trace is None:
            continue
        yield (separator + dumps(trace.model_dump(mode="json"))).encode()
        separator = ",\n"
    scores = [s.model_dump(mode="json") for s in session_scores(store, project_id, session)]
    notes = [n.model_dump(mode="json") for n in store.list_notes(project_id, session.session_id)]
    yield f'\n],\n"scores": {dumps(scores)},\n"notes": {dumps(notes)}\n}}\n'.encode()
