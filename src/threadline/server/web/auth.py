"""Sign-in for the web UI: a project key in exchange for a session cookie.

The cookie holds the project key itself, HttpOnly (page scripts cannot read it) and
SameSite=Lax (other sites cannot post with it); signing in and out, like every
state-changing form, also checks that the form came from this server
(``origin.py``). Every request resolves it through
``store.access_for_key``, like the API's bearer header, so revoking a key signs its
browsers out at once and several servers need no shared session state.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.responses import RedirectResponse, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from threadline.server.model import Project
from threadline.server.web.origin import SameOrigin
from threadline.server.web.render import render
from threadline.server.web.session_cookie import SESSION_COOKIE

COOKIE = SESSION_COOKIE
_MAX_AGE = 30 * 24 * 3600  # seconds: a month, then sign in again
_MAX_FORM_BYTES = 4096

router = APIRouter(include_in_schema=False)


def project_from_cookie(request: Request) -> Project | None:
    key = request.cookies.get(COOKIE)
    if not key:
        return None
    access = request.app.state.store.access_for_key(key)
    return access.project if access is not None and access.can_read else None


def page_project(request: Request) -> Project:
    """The signed-in project, or a redirect to /login (401 + HX-Redirect for htmx and
    event-stream requests, which cannot follow a redirect to an HTML page)."""
    project = project_from_cookie(request)
    if project is not None:
        return project
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    login = "/login?next=" + quote(target, safe="")
    if request.headers.get("HX-Request") or "text/event-stream" in request.headers.get(
        "accept", ""
    ):
        raise HTTPException(401, "sign in again", headers={"HX-Redirect": login})
    # The app's error handler keeps the Location header, so the browser follows it.
    raise HTTPException(303, "sign in first", headers={"Location": login})


PageProject = Annotated[Project, Depends(page_project)]


def _needs_sign_in(route: APIRoute) -> bool:
    waiting: list[Dependant] = [route.dependant]
    while waiting:
        dependant = waiting.pop()
        if dependant.call is page_project:
            return True
        waiting.extend(dependant.dependencies)
    return False


async def sign_in_first(request: Request) -> HTTPException | None:
    """A signed-out request's answer from a page that needs sign-in (a redirect to it),
    else None. A page's address is read before its sign-in is checked (unknown
    parameters, each filter): refused, a signed-out browser is still sent to sign in,
    whatever the parameters, as from every page, and learns nothing from the refusal."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not _needs_sign_in(route):
        return None
    try:
        await run_in_threadpool(page_project, request)  # a store read
    except HTTPException as answer:
        return answer
    return None


def _safe_next(target: str | None) -> str:
    """Only local paths: never let ?next= send a signed-in user to another site."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/sessions"


@router.get("/login")
def login_form(request: Request, next: str | None = None) -> Response:
    return render(request, "login.html", {"next": _safe_next(next), "error": None})


@router.post("/login")
async def login(request: Request, _: SameOrigin) -> Response:
    # A urlencoded form parsed by hand: python-multipart is not a dependency.
    body = (await request.body())[:_MAX_FORM_BYTES].decode("utf-8", "replace")
    form = {k: v[0] for k, v in parse_qs(body).items()}
    key = form.get("key", "").strip()
    target = _safe_next(form.get("next"))
    # A store read: off the event loop, like every other one.
    access = await run_in_threadpool(request.app.state.store.access_for_key, key) if key else None
    if access is None or not access.can_read:
        error = (
            "That key can only send spans: sign in with a full key."
            if access is not None
            else "That key is unknown or revoked."
        )
        return render(request, "login.html", {"next": target, "error": error}, status_code=401)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        COOKIE,
        key,
        max_age=_MAX_AGE,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@router.post("/logout")
def logout(_: SameOrigin) -> Response:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response
