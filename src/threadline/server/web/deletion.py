"""The delete buttons of the session and trace pages (JSON twins: ``DELETE
/api/v1/sessions/{id}`` and ``DELETE /api/v1/traces/{id}``).

Forms posted with the sign-in cookie: the origin is checked (``origin.py``), the page
asks before it posts (the Delete button opens the question and the button that posts,
``confirm_form`` in ``_macros.html``), and the answer is a redirect to where the
deleted thing was listed, which says what was deleted (``flash.py``).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from threadline.server.model import Project
from threadline.server.web import flash
from threadline.server.web.auth import PageProject
from threadline.server.web.forms import read_form
from threadline.server.web.origin import require_same_origin
from threadline.server.web.render import render, session_url

router = APIRouter(include_in_schema=False)


def _short(name: str) -> str:
    """A name as a sentence can hold it (an id may be thousands of characters)."""
    return name if len(name) <= 80 else name[:80] + "…"


def _gone(request: Request, project: Project, what: str) -> Response:
    return render(request, "not_found.html", {"project": project, "what": what}, status_code=404)


@router.post("/delete/session")
async def delete_session(request: Request, project: PageProject) -> Response:
    require_same_origin(request)
    session_id = (await read_form(request)).get("session_id", "")
    store = request.app.state.store
    if not await run_in_threadpool(store.delete_sessions, project.id, [session_id]):
        return _gone(request, project, f"session {session_id!r}")
    said = f"Deleted session {_short(session_id)} with its traces, their spans, scores and notes."
    return flash.say(request, RedirectResponse("/sessions", status_code=303), said)


@router.post("/delete/trace")
async def delete_trace(request: Request, project: PageProject) -> Response:
    require_same_origin(request)
    trace_id = (await read_form(request)).get("trace_id", "").lower()
    store = request.app.state.store
    trace = await run_in_threadpool(store.get_trace, project.id, trace_id)
    if trace is None or not await run_in_threadpool(store.delete_traces, project.id, [trace_id]):
        return _gone(request, project, f"trace {trace_id!r}")
    spans = f"{trace.span_count} span" + ("" if trace.span_count == 1 else "s")
    said = f"Deleted trace {_short(trace.name)} ({trace_id[:12]}…) with its {spans}."
    # Back to the session it was in while the session lasts, else to the Traces list.
    if trace.session_id and await run_in_threadpool(
        store.get_session, project.id, trace.session_id
    ):
        return flash.say(
            request, RedirectResponse(session_url(trace.session_id), status_code=303), said
        )
    return flash.say(request, RedirectResponse("/traces", status_code=303), said)
