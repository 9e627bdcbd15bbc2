"""The web UI: server-rendered pages served by the same process as the API.

``install`` adds the page routes and the /static mount to the app. Nothing is loaded
from elsewhere: htmx is vendored in ``static/``, so the UI works air-gapped.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles

from threadline.server.http.query_names import DECLARED_QUERY_ONLY
from threadline.server.web import (
    auth,
    dashboard,
    deletion,
    detail,
    evaluations,
    evaluators,
    export,
    lists,
    live,
    notes,
    scores,
    settings,
    shares,
)
from threadline.server.web.render import STATIC_DIR

router = APIRouter(include_in_schema=False)
for _module in (
    auth,
    lists,
    dashboard,
    detail,
    deletion,
    export,
    evaluations,
    evaluators,
    live,
    scores,
    notes,
    shares,
    settings,
):
    router.include_router(_module.router)


def install(app: FastAPI) -> None:
    # A query parameter a page does not take is a 400 (the error page), as on the API.
    app.include_router(router, dependencies=[DECLARED_QUERY_ONLY])
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")


__all__ = ["install", "router"]
