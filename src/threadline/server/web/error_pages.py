"""The page a browser gets when a page load fails: an unknown path, a method the path
does not take, a query parameter the page cannot read, an error in the server; or when
a form it posted is refused (a 400, or a 409 such as the waiting-runs bound).

API clients, htmx requests and OTLP exporters keep the JSON ``{"error": ...}`` every
error has; a browser navigating to a page (it asks for ``text/html``) gets the app's
layout with a way back instead of raw JSON. Signed out, the page shows no project.

A signed-out browser learns which paths are pages (a page redirects to sign-in, an
unknown path is a 404): the routes are no secret (the source is open and
``/openapi.json`` public). What is behind them is: a page with an id in its path
(``/sessions/<id>``) redirects to sign-in whether or not the id exists.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import QueryParams

from threadline.server.errors import BadRequest, Fault
from threadline.server.web.auth import project_from_cookie
from threadline.server.web.dashboard import DashboardFilters
from threadline.server.web.filters import Filters
from threadline.server.web.render import render

PAGE_STATUSES = {
    400: "Cannot show this page as asked",
    404: "Page not found",
    405: "Not a page",
    409: "Not done",
    500: "Something went wrong",
}
_MACHINE_PREFIXES = ("/api/", "/v1/")  # the JSON API and OTLP ingest
# The way back from a page: to the list or dashboard whose address could not be read,
# with what its reader (each of them here) reads of that address, else to the Sessions
# list.
_WAYS_BACK: dict[str, tuple[str, Callable[[QueryParams], object]]] = {
    "/sessions": ("sessions", lambda params: Filters.from_params(params, "sessions")),
    "/traces": ("traces", lambda params: Filters.from_params(params, "traces")),
    "/users": ("users", lambda params: Filters.from_params(params, "users")),
    "/dashboard": ("the dashboard", DashboardFilters.from_params),
}

_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def wants_page(request: Request, status: int) -> bool:
    """A page load, or a form the page posted (its answer replaces the page, so a
    refusal such as the Evaluate button's 409 must read as a page, not raw JSON)."""
    posted_form = request.method == "POST" and request.headers.get("content-type", "").startswith(
        _FORM_TYPES
    )
    return (
        status in PAGE_STATUSES
        and (request.method in ("GET", "HEAD") or posted_form)
        and "text/html" in request.headers.get("accept", "")
        and not request.headers.get("HX-Request")
        and not request.url.path.startswith(_MACHINE_PREFIXES)
    )


async def error_page(
    request: Request,
    status: int,
    headers: dict[str, str] | None = None,
    message: str = "",
    faults: frozenset[Fault] = frozenset(),
) -> Response:
    """The page; ``message`` says what of the request could not be read (a 400's), and
    ``faults`` which parameters of it, if known. A 500's page reads nothing from the
    store, which may be what failed: it has no project."""
    project = None
    if status != 500:
        project = await run_in_threadpool(project_from_cookie, request)  # a store read
    context = {
        "project": project,
        "status": status,
        "title": PAGE_STATUSES[status],
        "message": message,
        "back_path": _way_back(request, faults),
        "back_name": _WAYS_BACK.get(request.url.path, ("sessions",))[0],
    }
    if request.method == "POST" and (page := _form_page(request)) is not None:
        context.update(back_path=page, back_name="the page")
    response = render(request, "error.html", context, status_code=status)
    if headers:  # e.g. the Allow of a 405
        response.headers.update(headers)
    return response


def _way_back(request: Request, faults: frozenset[Fault]) -> str:
    """The list or dashboard as asked but for the parameters at fault: the user's other
    filters kept. Each reader stops at its first kind of fault (the page's unknown
    parameters before its filters), so what is left is read again until it reads. Its
    first page (a cursor is bound to the filters it was made with); as its tab opens it
    when what is at fault is not known."""
    path = request.url.path
    if path not in _WAYS_BACK:
        return "/sessions"
    params = request.query_params
    read = _WAYS_BACK[path][1]
    while faults:
        kept = [
            (name, value)
            for name, value in params.multi_items()
            if name != "cursor" and (name, None) not in faults and (name, value) not in faults
        ]
        if len(kept) == len(params.multi_items()):  # a fault not in the address
            return path
        params = QueryParams(kept)
        try:
            read(params)
        except BadRequest as error:
            faults = error.faults  # none known: the bare path
            if not faults:
                return path
        else:
            return f"{path}?{params}" if params else path
    return path


def _form_page(request: Request) -> str | None:
    """The page of this server a posted form was on (its Referer, which pages send
    same-origin), as a path and query; None when it is not one of this server's."""
    referer = urlsplit(request.headers.get("referer", ""))
    here = urlsplit(str(request.base_url))
    if (referer.scheme, referer.netloc) != (here.scheme, here.netloc):
        return None
    if not referer.path.startswith("/") or referer.path.startswith(_MACHINE_PREFIXES):
        return None
    return referer.path + (f"?{referer.query}" if referer.query else "")
