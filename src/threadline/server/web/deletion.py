"""The delete buttons of the session and trace pages (JSON twins: ``DELETE
/api/v1/sessions/{id}`` and ``DELETE /api/v1/traces/{id}``).

Forms posted with the sign-in cookie: the origin is checked (``origin.py``), the page
asks for a confirmation before it posts (``data-confirm`` in ``static/app.js``), and
the answer is a redirect to where the deleted thing was listed.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from threadline.server.web.auth import PageProject
from threadline.server.web.origin import require_same_origin
from threadline.server.web.render import render, session_url

router = APIRouter(include_in_schema=False)

_MAX_FORM_BYTES = 4096


async def _form(request: Request) -> dict[str, str]:
    # A urlencoded form parsed by hand, as the sign-in form is.
    body = (await request.body())[:_MAX_FORM_BYTES].decode("utf-8", "replace")
    return {k: v[0] for k, v in parse_qs(body).items()}


def _gone(request: Request, project, what: str) -> Response:
    return render(request, "not_found.html", {"project": project, "what": what}, status_code=404)


@router.post("/delete/session")
async def delete_session(request: Request, project: PageProject) -> Response:
    require_same_origin(request)
    session_id = (await _form(request)).get("session_id", "")
    store = request.app.state.store
    if not await run_in_threadpool(store.delete_sessions, project.id, [session_id]):
        return _gone(request, project, f"session {session_id!r}")
    return RedirectResponse("/sessions", status_code=303)


@router.post("/delete/trace")
async def delete_trace(request: Request, project: PageProject) -> Response:
    require_same_origin(request)
    trace_id = (await _form(request)).get("trace_id", "").lower()
    store = request.app.state.store
    trace = await run_in_threadpool(store.get_trace, project.id, trace_id)
    if trace is None or not await run_in_threadpool(store.delete_traces, project.id, [trace_id]):
        return _gone(request, project, f"trace {trace_id!r}")
    # Back to the session it was in while the session lasts, else to the Traces list.
    if trace.session_id and await run_in_threadpool(
        store.get_session, project.id, trace.session_id
    ):
        return RedirectResponse(session_url(trace.session_id), status_code=303)
    return RedirectResponse("/traces", status_code=303)
