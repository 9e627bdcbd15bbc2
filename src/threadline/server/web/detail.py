"""The session page (a transcript), the trace view (tree + waterfall + span detail)
and the session export. JSON twins: ``/api/v1/sessions/{id}``, ``/api/v1/traces/{id}``.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from threadline.server.model import Project, TraceDetail
from threadline.server.session_activity import mark_activity
from threadline.server.store import Store
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
from threadline.server.web.waterfall import span_rows

router = APIRouter(include_in_schema=False)

# A transcript reads every turn's spans; beyond this many turns the page links to the
# Traces tab for the rest instead of growing without bound.
MAX_TURNS = 300


def _store(request: Request) -> Store:
    return request.app.state.store


def _not_found(request: Request, project: Project, what: str) -> Response:
    return render(request, "not_found.html", {"project": project, "what": what}, status_code=404)


@router.get("/sessions/{session_id:path}")
def session_page(
    request: Request, project: PageProject, session_id: str, id: str | None = None
) -> Response:
    # "/sessions/?id=.." names the sessions whose id a browser cannot keep in a path.
    session_id = session_id or id or ""
    store = _store(request)
    # Read before the session: the page's live stream starts from it and cannot miss a
    # turn written while the page was being built. Opaque, as every live position.
    watermark = request.app.state.live_positions.seal(project.id, store.live_watermark(project.id))
    session = store.get_session(project.id, session_id)
    if session is None:
        return _not_found(request, project, f"session {session_id!r}")
    details = [store.get_trace(project.id, t.trace_id) for t in session.traces[:MAX_TURNS]]
    turns = build_turns(session, [d for d in details if d is not None])
    target = Target(session_id=session_id)
    configs = configs_of(store, project.id)
    context = {
        "project": project,
        "tab": "sessions",
        "session": session,
        "turns": turns,
        "truncated": len(session.traces) > MAX_TURNS,
        "max_turns": MAX_TURNS,
        "live_stream": "/live/session?" + urlencode({"session_id": session_id}),
        "watermark": watermark,
        "target": target,
        "scores": scores_of(store, project.id, target),
        "turn_scores": turn_scores(store, project.id, [t.trace.trace_id for t in turns]),
        "configs": {c.name: c for c in configs},
        "notes": store.list_notes(project.id, session_id),
        **form_context(configs),
    }
    context |= runs_context(store, project, session.session_id)
    context["evaluators"] = store.list_evaluators(project.id)
    return render(request, "session.html", context)


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
        "rows": rows,
        "selected": selected,
        "target": target,
        "scores": scores_of(store, project.id, target),
        "configs": {c.name: c for c in configs},
        **_span_scores(store, project.id, trace, selected),
        **form_context(configs),
    }
    return render(request, "trace.html", context)


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
    """The whole session: its rollup and every trace with all spans, as one JSON file."""
    store = _store(request)
    session = store.get_session(project.id, session_id)
    if session is None:
        return _not_found(request, project, f"session {session_id!r}")
    mark_activity([session], request.app.state.settings.session_idle_seconds)
    traces = [store.get_trace(project.id, t.trace_id) for t in session.traces]
    # The session's own fields, and each trace once: in full, under "traces".
    body = {
        "session": session.model_dump(mode="json", exclude={"traces"}),
        "traces": [t.model_dump(mode="json") for t in traces if t is not None],
        "scores": [s.model_dump(mode="json") for s in session_scores(store, project.id, session)],
        "notes": [n.model_dump(mode="json") for n in store.list_notes(project.id, session_id)],
    }
    safe_name = "".join(c if c.isalnum() or c in "-_." else "_" for c in session_id)[:80]
    return Response(
        json.dumps(body, ensure_ascii=False, indent=2),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="session-{safe_name}.json"'},
    )
