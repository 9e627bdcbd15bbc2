"""Share links in the UI: the Share form of the session and trace pages, the project's
links (``/shares``) with their Revoke buttons, and the shared page itself
(``/shared/<token>``), which needs no sign-in. JSON twins: ``/api/v1/shares``.

The shared page reads no cookie and sends nothing of the project but the one session
or trace, cut down by ``sharing.shown_*``; it links to nothing else. An unknown,
tampered, expired or revoked token gets one and the same plain "not found".
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BeforeValidator, ValidationError
from starlette.concurrency import run_in_threadpool

from threadline.server import sharing
from threadline.server.errors import BadRequest, NotFound
from threadline.server.http.query_names import SINGLE_VALUES_ONCE
from threadline.server.model import NewShareLink, Project, ShareIn
from threadline.server.store import Store
from threadline.server.store.base import StoredShare
from threadline.server.web import flash
from threadline.server.web.auth import PageProject
from threadline.server.web.detail import TURNS_PER_PAGE, split_turn_before, turns_page
from threadline.server.web.forms import read_form
from threadline.server.web.origin import SameOrigin
from threadline.server.web.render import render
from threadline.server.web.transcript import build_turns
from threadline.server.web.waterfall import span_rows

router = APIRouter(include_in_schema=False)

# The token is in the URL: no Referer carries it anywhere, and no search engine keeps it.
_SHARED_HEADERS = {"Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex, nofollow"}
# Anyone holding a link opens its page as often as they like, so it is bounded as the
# signed-in pages are: a session's turns come in pages of TURNS_PER_PAGE, and a trace's
# spans, each shown with its input and output (a payload cut at 100,000 characters), in
# pages of SPANS_PER_PAGE; each page links to the pages around it.
SPANS_PER_PAGE = 50
# The project's links come in pages of this many, newest first, each with *Older links*.
LINKS_PER_PAGE = 50
# Bounds the page a visitor can ask for (a larger one is a 422, not a 500).
_MAX_PAGE_START = 10**9
# A new link's token, carried from the form's POST to the page that shows it once (a
# redirect, so that a reload does not make another link), and cleared by that page.
_NEW_LINK_COOKIE = "threadline_new_share"


def _store(request: Request) -> Store:
    return request.app.state.store


def _new_link(request: Request, project: Project) -> NewShareLink | None:
    """The link just made, from the cookie its form's POST set: once, and only a live
    link of this project (a cookie is the browser's to change)."""
    token = request.cookies.get(_NEW_LINK_COOKIE)
    share = sharing.resolve(_store(request), token) if token else None
    if token is None or share is None or share.project_id != project.id:
        return None
    return NewShareLink(**sharing.link(share).model_dump(), token=token, path=f"/shared/{token}")


@router.get("/shares")
def shares_page(
    request: Request,
    project: PageProject,
    cursor: Annotated[str | None, Query(description="The page after this one's links")] = None,
) -> Response:
    links = sharing.page(_store(request), project.id, LINKS_PER_PAGE, cursor)
    context = {
        "project": project,
        "tab": "sessions",
        "links": links.items,
        "next_cursor": links.next_cursor,
        "cursor": cursor,
        "created": _new_link(request, project),
        "base_url": str(request.base_url).rstrip("/"),
    }
    response = render(request, "shares.html", context)
    if _NEW_LINK_COOKIE in request.cookies:
        response.delete_cookie(_NEW_LINK_COOKIE, path="/shares")
    return response


@router.post("/shares/new")
async def new_share(request: Request, project: PageProject, _: SameOrigin) -> Response:
    form = await read_form(request)
    try:
        wanted = ShareIn(
            kind=form.get("kind", ""),  # type: ignore[arg-type]
            target_id=form.get("target_id", ""),
            expires_in_days=float(form.get("expires_in_days", "7")),
            hide_io=form.get("hide_io") == "1",
            hide_metadata=[k.strip() for k in form.get("hide_metadata", "").split(",")],
        )
    except (ValidationError, ValueError) as error:
        raise BadRequest(f"the share form is not valid: {error}") from None
    created = await run_in_threadpool(sharing.make, _store(request), project, wanted)
    # Post/redirect/get: the link is shown by the page the browser is sent to.
    response = RedirectResponse("/shares", status_code=303)
    response.set_cookie(
        _NEW_LINK_COOKIE,
        created.token,
        max_age=60,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/shares",
    )
    return response


@router.post("/shares/revoke")
async def revoke_share(request: Request, project: PageProject, _: SameOrigin) -> Response:
    share_id = (await read_form(request)).get("id", "")
    if not await run_in_threadpool(_store(request).revoke_share, project.id, share_id):
        raise NotFound(f"no active share link {share_id!r} in project {project.name!r}")
    said = "Link revoked: whoever opens it now gets “not found”."
    return flash.say(request, RedirectResponse("/shares", status_code=303), said)


def _not_found(request: Request) -> Response:
    response = render(
        request, "shared_not_found.html", {"kind": "page", "expires_at": None}, status_code=404
    )
    response.headers.update(_SHARED_HEADERS)
    return response


def _shared_page(request: Request, share: StoredShare, turn: int, offset: int) -> Response | None:
    store = _store(request)
    context: dict[str, object] = {
        "kind": share.kind,
        "expires_at": sharing.link(share).expires_at,
        "hide_io": share.hide_io,
    }
    if share.kind == "session":
        session = turns_page(store, share.project_id, share.target_id, turn)
        if session is None:
            return None
        before, page = split_turn_before(session, turn)
        details = [store.get_trace(share.project_id, t.trace_id) for t in page]
        shown = sharing.shown_session(session, share)
        traces = [sharing.shown_trace(d, share) for d in details if d is not None]
        turns = build_turns(
            shown,
            traces,
            first_index=turn,
            previous_end=before.end_time if before else None,
        )
        context |= {
            "session": shown,
            "turns": turns,
            "earlier_turn": max(turn - TURNS_PER_PAGE, 1) if turn > 1 else None,
            "later_turn": turn + TURNS_PER_PAGE if session.next_cursor else None,
        }
        return render(request, "shared_session.html", context)
    trace = store.get_trace(share.project_id, share.target_id)
    if trace is None:
        return None
    shown_trace = sharing.shown_trace(trace, share)
    rows = span_rows(shown_trace)
    end = offset + SPANS_PER_PAGE
    context |= {
        "trace": shown_trace,
        "rows": rows[offset:end],
        "first_row": offset + 1,
        "row_count": len(rows),
        "earlier_offset": max(offset - SPANS_PER_PAGE, 0) if offset else None,
        "later_offset": end if end < len(rows) else None,
    }
    return render(request, "shared_trace.html", context)


def _digits(value: object) -> object:
    """A page start as the page's own links write it: ASCII digits alone (``1.0``,
    `` 1``, ``+1`` or other scripts' digits name no page of ours)."""
    if isinstance(value, str) and not (value.isascii() and value.isdigit()):
        raise ValueError("a page start is a whole number written in digits 0-9")
    return value


# Each parameter once: a repeated one was read as its last value.
@router.get("/shared/{token}", dependencies=[SINGLE_VALUES_ONCE])
def shared(
    request: Request,
    token: str,
    turn: Annotated[
        int,
        BeforeValidator(_digits),
        Query(ge=1, le=_MAX_PAGE_START, description="A shared session's first turn shown"),
    ] = 1,
    offset: Annotated[
        int,
        BeforeValidator(_digits),
        Query(ge=0, le=_MAX_PAGE_START, description="A shared trace's spans skipped"),
    ] = 0,
) -> Response:
    share = sharing.resolve(_store(request), token)
    page = _shared_page(request, share, turn, offset) if share is not None else None
    if page is None:
        return _not_found(request)
    page.headers.update(_SHARED_HEADERS)
    return page
