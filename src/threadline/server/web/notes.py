"""Notes on a session page: free text that teammates leave for each other (what went
wrong, what was fixed), listed oldest first, added and deleted by form posts that must
come from this server's own pages.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from threadline.server import project_rules
from threadline.server.errors import BadRequest, NotFound
from threadline.server.model import NoteIn, Project
from threadline.server.redaction.annotations import redact_note
from threadline.server.redaction.rules import RedactionRules
from threadline.server.store import Store
from threadline.server.store.session_turns import TurnPage
from threadline.server.web.auth import PageProject
from threadline.server.web.forms import read_form
from threadline.server.web.origin import SameOrigin
from threadline.server.web.render import render, session_url

router = APIRouter(include_in_schema=False)


def _store(request: Request) -> Store:
    return request.app.state.store


def _session_id(store: Store, project: Project, form: dict[str, str]) -> str:
    session_id = form.get("session_id", "")
    if not session_id:
        raise BadRequest("the form names no session")
    if store.get_session(project.id, session_id, TurnPage(limit=0)) is None:
        raise NotFound(f"no session {session_id!r} in project {project.name!r}")
    return session_id


def _add(store: Store, project: Project, form: dict[str, str], rules: RedactionRules) -> str:
    session_id = _session_id(store, project, form)
    if not form.get("body"):
        raise BadRequest("a note needs some text")
    try:
        note = NoteIn(session_id=session_id, body=form["body"], author=form.get("author"))
    except ValidationError as error:
        raise BadRequest(
            "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        ) from None
    store.add_note(project.id, redact_note(note, rules))
    return session_id


def _delete(store: Store, project: Project, form: dict[str, str]) -> str:
    session_id = _session_id(store, project, form)
    note_id = form.get("id", "")
    if not note_id:
        raise BadRequest("the form names no note to delete")
    if not store.delete_note(project.id, note_id):
        raise NotFound(f"no note {note_id!r} in project {project.name!r}")
    return session_id


def _answer(request: Request, project: Project, session_id: str) -> Response:
    if not request.headers.get("HX-Request"):
        return RedirectResponse(session_url(session_id), status_code=303)
    notes = _store(request).list_notes(project.id, session_id)
    return render(request, "_notes_panel.html", {"session_id": session_id, "notes": notes})


@router.post("/ui/notes")
async def add_note(request: Request, project: PageProject, _: SameOrigin) -> Response:
    form = await read_form(request)
    rules = project_rules.redaction_rules(request.app.state, project.id)
    session_id = await run_in_threadpool(_add, _store(request), project, form, rules)
    return await run_in_threadpool(_answer, request, project, session_id)


@router.post("/ui/notes/delete")
async def delete_note(request: Request, project: PageProject, _: SameOrigin) -> Response:
    form = await read_form(request)
    session_id = await run_in_threadpool(_delete, _store(request), project, form)
    return await run_in_threadpool(_answer, request, project, session_id)
