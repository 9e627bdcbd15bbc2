"""The page a browser gets for a path or method the server does not serve.

API clients, htmx requests and OTLP exporters keep the JSON ``{"error": ...}`` every
error has; a browser navigating to a page (it asks for ``text/html``) gets the app's
layout with a way back instead of raw JSON. Signed out, the page shows no project.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from threadline.server.web.auth import project_from_cookie
from threadline.server.web.render import render

# The statuses a page request reaches by its path or method alone (an unknown path, a
# GET on a form's POST route); every other error is answered by the route that knows it.
PAGE_STATUSES = {404: "Page not found", 405: "Not a page"}
_MACHINE_PREFIXES = ("/api/", "/v1/")  # the JSON API and OTLP ingest


def wants_page(request: Request, status: int) -> bool:
    return (
        status in PAGE_STATUSES
        and request.method in ("GET", "HEAD")
        and "text/html" in request.headers.get("accept", "")
        and not request.headers.get("HX-Request")
        and not request.url.path.startswith(_MACHINE_PREFIXES)
    )


async def error_page(request: Request, status: int, headers: dict[str, str] | None) -> Response:
    project = await run_in_threadpool(project_from_cookie, request)  # a store read
    context = {"project": project, "status": status, "title": PAGE_STATUSES[status]}
    response = render(request, "error.html", context, status_code=status)
    if headers:  # e.g. the Allow of a 405
        response.headers.update(headers)
    return response
